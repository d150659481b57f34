"""The TFLite converter steps that run in the conversion child process: a batch-1 export of the
Keras model, the converter configured for full int8 with a representative dataset, and
converter errors turned into one line naming the layer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mcuq.common.console import Console
from mcuq.common.errors import ConversionError, ModelLoadError
from mcuq.frontend.loader import LoadedModel
from mcuq.frontend.options import QuantizeOptions
from mcuq.frontend.samples import InputSpec, SampleSet
from mcuq.frontend.tf import import_tensorflow, native_output_captured
from mcuq.model.info import parse_model


def _batch1_specs(tf: Any, inputs: list[InputSpec]) -> list[Any]:
    return [tf.TensorSpec([1, *spec.shape], tf.float32, name=spec.name) for spec in inputs]


def converter_for(loaded: LoadedModel, tmp: Path, console: Console) -> tuple[Callable[[], Any], list[InputSpec]]:
    """A factory of fresh converters (one for the float reference, one for int8) and the inputs."""
    tf = import_tensorflow()
    if loaded.kind == "keras3":
        export_dir = tmp / "saved_model"
        with console.step("exporting a batch-1 SavedModel"), native_output_captured(console.level < 2):
            _export_keras3(loaded, tf, export_dir)
        return lambda: tf.lite.TFLiteConverter.from_saved_model(str(export_dir)), loaded.inputs
    if loaded.kind == "tf_keras":
        specs = _batch1_specs(tf, loaded.inputs)
        model = loaded.model
        func = tf.function(lambda *xs: _named_outputs(model, model(list(xs) if len(xs) > 1 else xs[0], training=False)))
        concrete = func.get_concrete_function(*specs)
        holder = _variables_holder(tf, model)
        return lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder), loaded.inputs
    return _saved_model_converter(loaded, tf, console)


def _variables_holder(tf: Any, model: Any) -> Any:
    """The trackable the converter saves with the concrete function: only the model's variables.

    The converter writes ``trackable_obj`` to a temporary SavedModel before converting; handed the
    tf_keras model itself, it also traces and serialises every layer's call functions for Keras's
    own loader (half the conversion time of a recurrent model, twice per quantize). The function
    and the weights it reads are the same, so the .tflite is byte for byte the same."""
    holder = tf.Module()
    holder.weights = list(model.variables)
    return holder


def _output_layer_names(model: Any) -> list[str]:
    """Keras output names: ``output_names`` (functional) or the producing layers (Sequential)."""
    names = getattr(model, "output_names", None)
    if names:
        return list(names)
    try:
        return [t._keras_history[0].name for t in model.outputs]
    except (AttributeError, IndexError, TypeError):
        return []


def _named_outputs(model: Any, outputs: Any) -> dict[str, Any]:
    """The model's outputs keyed by the Keras output names (``output_<i>`` if they clash)."""
    if isinstance(outputs, dict):
        return dict(outputs)
    outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
    names = [str(n) for n in _output_layer_names(model)]
    if len(names) != len(outputs) or len(set(names)) != len(names):
        names = [f"output_{i}" for i in range(len(outputs))]
    return dict(zip(names, outputs))


def _export_keras3(loaded: LoadedModel, tf: Any, export_dir: Path) -> None:
    """A batch-1 SavedModel whose serving signature uses the Keras input and output names, so
    the .tflite (and everything generated from it) says ``energy`` instead of
    ``StatefulPartitionedCall_1:0`` and calibration dicts are keyed by the input names."""
    import keras

    model = loaded.model
    specs = _batch1_specs(tf, loaded.inputs)

    def serve(*xs: Any) -> dict[str, Any]:
        return _named_outputs(model, model(list(xs) if len(xs) > 1 else xs[0], training=False))

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", serve, input_signature=specs)
    archive.write_out(str(export_dir), verbose=False)


def _saved_model_converter(loaded: LoadedModel, tf: Any, console: Console) -> tuple[Callable[[], Any], list[InputSpec]]:
    """Fix a dynamic batch to 1 through the serving signature when the SavedModel restores."""
    if loaded.model is not None and loaded.inputs:
        fn = loaded.model.signatures["serving_default"]
        if any(d < 0 for spec in loaded.inputs for d in spec.shape):
            raise ModelLoadError(
                f"{loaded.path}: input shapes {[s.shape for s in loaded.inputs]} have undefined dimensions beyond the batch; export with fixed shapes"
            )
        specs = {s.name: tf.TensorSpec([1, *s.shape], tf.float32, name=s.name) for s in loaded.inputs}
        concrete = tf.function(lambda **kw: fn(**kw)).get_concrete_function(**specs)
        return lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], loaded.model), loaded.inputs
    # Old SavedModel: ask the converter itself for the input shapes via a float conversion.
    with console.step("reading input shapes from the SavedModel"), native_output_captured(console.level < 2):
        try:
            float_info = parse_model(tf.lite.TFLiteConverter.from_saved_model(str(loaded.path)).convert(), str(loaded.path))
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"{loaded.path}: the TFLite converter cannot read this SavedModel ({_first_line(exc)})") from None
    inputs = [InputSpec(t.name.split(":")[0].removeprefix("serving_default_"), t.shape[1:]) for t in float_info.input_tensors]
    return lambda: tf.lite.TFLiteConverter.from_saved_model(str(loaded.path)), inputs


def configure_full_int8(converter: Any, tf: Any, data: SampleSet, options: QuantizeOptions) -> None:
    def representative() -> Iterator[list[np.ndarray] | dict[str, np.ndarray]]:
        # Several inputs: a dict keyed by the signature's input names (a list in Keras order
        # is matched to the signature by position, which is alphabetical and fails).
        for i in range(data.count):
            yield data.sample_dict(i) if len(data.arrays) > 1 else data.sample(i)

    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    if options.activations == "int16":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
    else:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    io_type = {"int8": tf.int8, "uint8": tf.uint8, "float32": tf.float32}[options.io]
    if options.activations == "int16" and options.io == "int8":
        io_type = tf.int16
    converter.inference_input_type = io_type
    converter.inference_output_type = io_type
    if options.per_channel == "none":
        converter._experimental_disable_per_channel = True
    elif options.per_channel == "auto":
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True


def _first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "error:" in ln:
            return ln[ln.index("error:") + 6 :].strip()[:240]
    return (lines[0] if lines else type(exc).__name__)[:240]


def run_converter(converter: Any, loaded: LoadedModel, console: Console) -> bytes:
    try:
        with native_output_captured(console.level < 2):
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError and friends
        raise explain_conversion_error(exc, loaded) from None


def explain_conversion_error(exc: BaseException, loaded: LoadedModel) -> ConversionError:
    text = str(exc)
    layer = _layer_in_error(text)
    where = f" (Keras layer '{layer}')" if layer else ""
    if "TensorList" in text or "tensorlist" in text.lower():
        return ConversionError(
            f"{loaded.path}: a recurrent layer{where} (LSTM/GRU/RNN) cannot be converted to int8-only ops "
            "(TensorList ops); build it with unroll=True and a fixed sequence length, then retry"
        )
    ops = sorted(set(re.findall(r"'(tf\.[A-Za-z0-9_]+)' op", text)))
    if ops:
        return ConversionError(
            f"{loaded.path}: {', '.join(ops)}{where} has no int8 TFLite builtin kernel (it would need a Flex/float op); "
            "replace that layer with built-in Keras layers that TFLite quantizes"
        )
    return ConversionError(f"{loaded.path}: the TFLite converter failed: {_first_line(exc)}")


def _layer_in_error(text: str) -> str | None:
    match = re.search(r'loc\(.*?"([^"]+)"', text)
    if not match:
        return None
    from mcuq.model.info import keras_layer_name

    name = keras_layer_name(match.group(1).split("@")[0]).rstrip(":")
    return None if "PartitionedCall" in name else name
