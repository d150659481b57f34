"""Full-int8 post-training quantization with the TFLite converter.

Keras models are first exported with a batch-1 input signature (a SavedModel): converting
the Keras object directly keeps a dynamic batch, which costs SHAPE/STRIDED_SLICE/PACK ops
around every Flatten on the device. The converter then runs with a representative dataset,
TFLITE_BUILTINS_INT8 only, and the result is checked to be full int8 before anyone uses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mcuq import __version__
from mcuq.common import errors as errors_module
from mcuq.common.console import SILENT, Console
from mcuq.common.errors import ConversionError, MCUQError, ModelLoadError, NativeCrashError
from mcuq.common.isolation import ChildFailure, child_temp_dir, mark_stage, run_isolated_ex
from mcuq.frontend.calibration import DEFAULT_SAMPLES, InputSpec, SampleSet, load_samples
from mcuq.frontend.fullint8 import check_full_int8, detect_mode, dynamic_batch
from mcuq.frontend.loader import LoadedModel, detect_kind, load_model
from mcuq.frontend.tf import import_tensorflow, native_output_captured
from mcuq.model.dedupe import dedupe_buffers
from mcuq.model.info import ModelInfo, parse_model
from mcuq.model.state import state_mode

IO_TYPES = ("int8", "uint8", "float32")
ACTIVATION_TYPES = ("int8", "int16")
# Weight scales: "all" per-channel everywhere; "none" per-tensor everywhere; "auto" (the
# default) per-channel conv/depthwise, per-tensor Dense (TFLite Micro keeps two int32 per
# output channel of a per-channel FULLY_CONNECTED in the arena; deploy may switch Dense
# back to per-channel when validation data shows per-tensor costs accuracy).
PER_CHANNEL_MODES = ("auto", "all", "none")


@dataclass(frozen=True)
class QuantizeOptions:
    """How to quantize; recorded verbatim in every output so a build can be reproduced."""

    io: str = "int8"
    activations: str = "int8"
    per_channel: str = "auto"
    calibration_samples: int = DEFAULT_SAMPLES
    seed: int = 0
    image_scale: str = "0..1"

    def __post_init__(self) -> None:
        # Older configs and callers say per_channel = true/false.
        if isinstance(self.per_channel, bool):
            object.__setattr__(self, "per_channel", "all" if self.per_channel else "none")

    def validate(self) -> None:
        if self.per_channel not in PER_CHANNEL_MODES:
            raise ConversionError(f"--per-channel {self.per_channel}: choose one of {', '.join(PER_CHANNEL_MODES)}")
        if self.io not in IO_TYPES:
            raise ConversionError(f"--io {self.io}: choose one of {', '.join(IO_TYPES)}")
        if self.activations not in ACTIVATION_TYPES:
            raise ConversionError(f"--activations {self.activations}: choose int8 or int16")
        if self.activations == "int16" and self.io == "uint8":
            raise ConversionError("--io uint8 works with int8 activations only; use --io int8/float32 with --activations int16")
        if self.calibration_samples < 1:
            raise ConversionError("--calibration-samples must be at least 1")


@dataclass
class QuantizedModel:
    """The int8 model with everything needed to explain and reproduce it."""

    tflite: bytes
    info: ModelInfo
    source: Path
    source_kind: str
    options: QuantizeOptions
    calibration_source: str
    random_calibration: bool
    calibration: SampleSet | None
    float_tflite: bytes | None = None  # same graph in float, batch 1: the reference for validation
    notes: list[str] = field(default_factory=list)
    # --per-channel auto: the same model with per-channel Dense, for deploy to weigh against
    # the per-tensor Dense of ``tflite`` (None: not auto, or no Dense with several units).
    dense_per_channel_tflite: bytes | None = None
    # Recurrent layers mcuq rebuilt for TFLite Micro (mcuq.frontend.recurrent), one line each.
    rebuilt_layers: list[str] = field(default_factory=list)
    # The source means the model's state to carry across invokes (a stateful Keras layer, or a
    # .tflite with state: TFLite Micro's semantics); see mcuq.model.state.
    streaming: bool = False

    @property
    def state(self) -> str:
        """none | per_invoke | streaming (mcuq.model.state)."""
        return state_mode(self.info, self.streaming)

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "source_kind": self.source_kind,
            "io": self.options.io,
            "activations": self.options.activations,
            "per_channel": self.options.per_channel,
            "calibration": self.calibration_source,
            "calibration_samples": self.calibration.count if self.calibration else None,
            "calibration_seed": self.options.seed,
            "image_scale": self.options.image_scale,
            "random_calibration": self.random_calibration,
            "accuracy_unverified": self.random_calibration,
            "notes": self.notes,
            "rebuilt_layers": self.rebuilt_layers,
            "state": self.state,
        }


def quantize(
    model: str | Path,
    calibration: str | Path | None,
    output: str | Path | None = None,
    options: QuantizeOptions | None = None,
    console: Console = SILENT,
    force: bool = False,
) -> QuantizedModel:
    """Quantize ``model`` to full int8 (or check a .tflite that already is) and optionally write it."""
    options = options or QuantizeOptions()
    if isinstance(calibration, Path):  # the child process takes a spec string (file, folder, module:function)
        calibration = str(calibration)
    options.validate()
    if output is not None:
        _check_output(Path(output), force)
    if detect_kind(Path(model)) != "tflite" and calibration is None:
        raise ConversionError(
            f"{model}: no calibration data: full-int8 quantization needs representative inputs "
            "(--calibration data.npy|.npz|.csv|image folder|module:function); "
            "--calibration random works but leaves accuracy unverified"
        )
    if detect_kind(Path(model)) == "tflite":
        result = _pass_through_tflite(load_model(model, console), options)
        for note in result.notes:
            console.info(note)
    else:
        assert calibration is not None
        result = _convert_isolated(Path(model), calibration, options, console)
    if output is not None:
        _write_new_file(Path(output), result.tflite)
        record = {"mcuq_version": __version__, "model_sha256": hashlib.sha256(result.tflite).hexdigest(), **result.manifest_entry()}
        _write_new_file(record_path(Path(output)), (json.dumps(record, indent=2) + "\n").encode())
    return result


def record_path(output: Path) -> Path:
    """The provenance record mcuq writes next to a quantized model."""
    return Path(f"{output}.mcuq.json")


def _is_our_pair(path: Path, record: Path) -> bool:
    """Both files exist as regular files and the record names the model's exact bytes."""
    try:
        if path.is_symlink() or record.is_symlink() or not path.is_file() or not record.is_file():
            return False
        data = json.loads(record.read_text(encoding="utf-8"))
        return isinstance(data, dict) and data.get("model_sha256") == hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return False


def _check_output(path: Path, force: bool) -> None:
    """Refuse, before any work, an -o that cannot be written or would replace a foreign file.

    mcuq overwrites a model and its ``.mcuq.json`` record only as a pair it wrote itself (the
    record names the model's sha256); ``--force`` replaces regular files, never a folder."""
    record = record_path(path)
    for target in (path, record):
        if target.is_symlink():
            raise MCUQError(f"{target} is a symbolic link{'' if target.exists() else ' to nothing'}; give a plain file path as -o")
        if target.exists() and not target.is_file():
            raise MCUQError(f"{target} exists and is not a regular file; choose another -o")
    for anc in path.parents:
        if anc.exists() and not anc.is_dir():
            raise MCUQError(f"{path}: {anc} is a file, not a folder; choose another -o")
        if anc.exists():
            probe_writable(anc, f"{path}: cannot write in {anc}", "choose another -o")
            break
    if force or not (path.exists() or record.exists()):
        return
    if not _is_our_pair(path, record):
        foreign = path if path.exists() else record
        raise MCUQError(f"{foreign} exists and was not written by mcuq; choose another -o, or pass --force to replace it")


def probe_writable(folder: Path, what: str, fix: str) -> None:
    """Create and remove a scratch file: the only honest test that a folder takes files (root
    passes ``os.access`` on /proc, a read-only mount passes the permission bits)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".mcuq-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise MCUQError(f"{what} ({exc.strerror}); {fix}") from None


def _write_new_file(path: Path, data: bytes) -> None:
    """Write via a temporary name so a failure never leaves a half-written model."""
    tmp = path.with_name(f".{path.name}.mcuq-tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise MCUQError(f"{path}: cannot write it ({exc.strerror}); choose another -o") from None


def _pass_through_tflite(loaded: LoadedModel, options: QuantizeOptions) -> QuantizedModel:
    assert loaded.tflite is not None
    info = parse_model(loaded.tflite, str(loaded.path))
    activations, io = detect_mode(info)
    check_full_int8(info, activations, io, source=str(loaded.path), tflite=True)
    opts = QuantizeOptions(
        io=io,
        activations=activations,
        per_channel=weight_scales(info),
        seed=options.seed,
        calibration_samples=options.calibration_samples,
        image_scale=options.image_scale,
    )
    notes = [f"{loaded.path.name} is already full {activations}: used as is"]
    if dynamic_batch(info):
        notes.append(f"{loaded.path.name} declares batch -1 (shape_signature); TFLite Micro runs its batch-1 shape")
    if io == "float32":
        notes.append(f"{loaded.path.name} has float input/output (QUANTIZE/DEQUANTIZE at the edges, int8 inside)")
    # A .tflite runs with TFLite Micro's semantics: variable state carries across invokes.
    return QuantizedModel(
        loaded.tflite, info, loaded.path, "tflite", opts, "none (already quantized)", False, None, None, notes, streaming=True
    )


def weight_scales(info: ModelInfo) -> str:
    """How an existing model's weights are scaled, in --per-channel terms: per-channel Dense
    means "all", per-channel conv with per-tensor Dense is what "auto" produces."""

    def per_channel(op_names: set[str]) -> bool | None:
        weights = [info.tensors[op.inputs[1]] for op in info.ops if op.name in op_names and len(op.inputs) > 1]
        quantized = [w for w in weights if w.quant is not None]
        return any(w.quant.per_channel for w in quantized if w.quant) if quantized else None

    dense = per_channel({"FULLY_CONNECTED"})
    conv = per_channel({"CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV"})
    if dense:
        return "all"
    if conv:
        return "auto"
    return "none" if dense is not None or conv is not None else "auto"


def _convert_isolated(model: Path, calibration: str, options: QuantizeOptions, console: Console) -> QuantizedModel:
    """Run TensorFlow and the converter in a child process: the converter can segfault
    (seen on recurrent layers), and that must become an error message, not a dead mcuq."""
    request = {"model": str(model), "calibration": calibration, "options": options, "level": console.level}
    # The child's stderr stays on the terminal: it carries the progress lines.
    answer, failure = run_isolated_ex("mcuq.frontend.converter", request, capture_stderr=False, timeout=CONVERTER_TIMEOUT)
    if failure is not None:
        raise NativeCrashError(_crash_message(model, calibration, failure))
    if "error" in answer:
        error_class = getattr(errors_module, answer["error_type"], ConversionError)
        raise error_class(answer["error"])
    tflite, saved = dedupe_buffers(answer["tflite"])
    if saved:
        answer["notes"].append(f"identical constant buffers stored once ({saved:,} bytes saved)")
    alternative = answer.get("dense_per_channel_tflite")
    if alternative is not None:
        alternative = dedupe_buffers(alternative)[0]
    info = parse_model(tflite, "converted model")
    check_full_int8(info, options.activations, options.io, source=str(model))
    data: SampleSet = answer["data"]
    if console.record:
        console.timings.extend(answer.get("timings", []))
    return QuantizedModel(
        tflite,
        info,
        model,
        answer["kind"],
        options,
        data.source,
        data.random,
        data,
        answer["float_tflite"],
        answer["notes"] + data.notes,
        alternative,
        answer.get("rebuilt", []),
        streaming=bool(answer.get("stateful")),
    )


def has_multichannel_dense(info: ModelInfo) -> bool:
    """A FULLY_CONNECTED with more than one output unit: where per-channel scales are a choice."""
    return any(
        op.name == "FULLY_CONNECTED"
        and len(op.inputs) > 1
        and op.inputs[1] >= 0
        and len(info.tensors[op.inputs[1]].shape) > 0
        and info.tensors[op.inputs[1]].shape[0] > 1
        for op in info.ops
    )


CONVERTER_TIMEOUT = 3600.0


def _crash_message(model: Path, calibration: str, failure: ChildFailure) -> str:
    """Name what actually died: the user's calibration function, the converter, or the child itself."""
    how = (
        f"timed out after {CONVERTER_TIMEOUT:g} s"
        if failure.timed_out
        else (f"crashed ({failure.detail})" if failure.returncode < 0 else f"exited ({failure.detail})")
    )
    if failure.stage.startswith("calibration function"):
        return (
            f"{calibration}: the calibration function {how} before returning its samples; "
            "run it on its own in Python and fix it (it must return or yield arrays, not exit)"
        )
    if failure.stage == "converting" and not failure.timed_out:
        return (
            f"{model}: the TFLite converter {how}; recurrent layers (LSTM/GRU) and custom ops are the usual cause: "
            "build recurrent layers with unroll=True and a fixed sequence length, or replace the layer"
        )
    stage = f" while {failure.stage}" if failure.stage else ""
    return f"{model}: the conversion step {how}{stage}; rerun with --verbose to see TensorFlow's own messages"


def convert_in_this_process(model: Path, calibration: str, options: QuantizeOptions, console: Console) -> dict[str, Any]:
    """The child-process side of ``_convert_isolated``: load, calibrate, convert."""
    mark_stage("importing TensorFlow")
    with console.step("importing TensorFlow"):
        tf = import_tensorflow()
    mark_stage(f"loading {model}")
    loaded = load_model(model, console)
    source_kind = loaded.kind
    loaded, rebuilt, stateful = _rebuild_recurrent(loaded, calibration, options, console)
    with tempfile.TemporaryDirectory(prefix="mcuq-export-", dir=child_temp_dir()) as tmp:
        make_converter, inputs = _converter_for(loaded, Path(tmp), console)
        data = load_samples(calibration, inputs, options.calibration_samples, options.seed, options.image_scale)
        if data.random:
            console.warn("--calibration random: int8 ranges come from random numbers; ACCURACY IS UNVERIFIED (recorded in every output)")
        converter = make_converter()
        _configure(converter, tf, data, options)
        mark_stage("converting")
        with console.step(f"calibrating on {data.count} samples and converting"):
            tflite = _run_converter(converter, loaded, console)
        alternative = None
        if options.per_channel == "auto" and has_multichannel_dense(parse_model(tflite, "converted model")):
            converter = make_converter()
            _configure(converter, tf, data, replace(options, per_channel="all"))
            with console.step("converting again with per-channel Dense (for the per-channel choice)"):
                alternative = _run_converter(converter, loaded, console)
        notes = list(loaded.notes)
        try:
            float_tflite: bytes | None = _run_converter(make_converter(), loaded, console)
        except ConversionError as exc:
            float_tflite = None
            notes.append(f"no float reference model ({exc}); float-vs-int8 validation is unavailable")
    return {
        "tflite": tflite,
        "float_tflite": float_tflite,
        "kind": source_kind,
        "data": data,
        "notes": notes,
        "timings": list(console.timings),
        "dense_per_channel_tflite": alternative,
        "rebuilt": rebuilt,
        "stateful": stateful,
    }


def _child_main(request_path: str, response_path: str) -> int:
    request = pickle.loads(Path(request_path).read_bytes())
    from mcuq.frontend.tf import set_verbose

    set_verbose(request["level"] >= 2)
    console = Console(level=request["level"], record=True)
    try:
        answer = convert_in_this_process(Path(request["model"]), request["calibration"], request["options"], console)
    except MCUQError as exc:
        answer = {"error": str(exc), "error_type": type(exc).__name__}
    Path(response_path).write_bytes(pickle.dumps(answer))
    return 0


def _batch1_specs(tf: Any, inputs: list[InputSpec]) -> list[Any]:
    return [tf.TensorSpec([1, *spec.shape], tf.float32, name=spec.name) for spec in inputs]


def _converter_for(loaded: LoadedModel, tmp: Path, console: Console) -> tuple[Callable[[], Any], list[InputSpec]]:
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
        return lambda: tf.lite.TFLiteConverter.from_concrete_functions([concrete], model), loaded.inputs
    return _saved_model_converter(loaded, tf, console)


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
    converter = tf.lite.TFLiteConverter.from_saved_model(str(loaded.path))
    with console.step("reading input shapes from the SavedModel"), native_output_captured(console.level < 2):
        try:
            float_info = parse_model(converter.convert(), str(loaded.path))
        except Exception as exc:  # noqa: BLE001
            raise ModelLoadError(f"{loaded.path}: the TFLite converter cannot read this SavedModel ({_first_line(exc)})") from None
    inputs = [InputSpec(t.name.split(":")[0].removeprefix("serving_default_"), t.shape[1:]) for t in float_info.input_tensors]
    return lambda: tf.lite.TFLiteConverter.from_saved_model(str(loaded.path)), inputs


def _configure(converter: Any, tf: Any, data: SampleSet, options: QuantizeOptions) -> None:
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


def _run_converter(converter: Any, loaded: LoadedModel, console: Console) -> bytes:
    try:
        with native_output_captured(console.level < 2):
            return bytes(converter.convert())
    except Exception as exc:  # noqa: BLE001 - the converter raises ConverterError and friends
        raise _explain_conversion_error(exc, loaded) from None


def _explain_conversion_error(exc: BaseException, loaded: LoadedModel) -> ConversionError:
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


def _rebuild_recurrent(
    loaded: LoadedModel, calibration: str, options: QuantizeOptions, console: Console
) -> tuple[LoadedModel, list[str], bool]:
    """Recurrent Keras layers become their TFLite Micro form (mcuq.frontend.recurrent), checked
    in float against the original; the answer names what was rebuilt for the summary."""
    from mcuq.frontend import recurrent

    if not recurrent.needs_rebuild(loaded):
        return loaded, [], False
    data = load_samples(calibration, loaded.inputs, recurrent.FLOAT_CHECK_SAMPLES, options.seed, options.image_scale)
    with (
        console.step("rebuilding the recurrent layers for TFLite Micro and checking them in float"),
        native_output_captured(console.level < 2),
    ):
        rebuilt, layers, _ = recurrent.rebuild(loaded, data)
    return rebuilt, [layer.describe() for layer in layers], any(layer.stateful for layer in layers)


if __name__ == "__main__":
    sys.exit(_child_main(sys.argv[1], sys.argv[2]))
