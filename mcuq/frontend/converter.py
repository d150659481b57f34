"""Full-int8 post-training quantization with the TFLite converter.

Keras models are first exported with a batch-1 input signature (a SavedModel): converting
the Keras object directly keeps a dynamic batch, which costs SHAPE/STRIDED_SLICE/PACK ops
around every Flatten on the device. The converter then runs with a representative dataset,
TFLITE_BUILTINS_INT8 only, and the result is checked to be full int8 before anyone uses it.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypedDict

from mcuq import __version__
from mcuq.common import errors as errors_module
from mcuq.common.console import SILENT, Console
from mcuq.common.errors import ConversionError, MCUQError, NativeCrashError
from mcuq.common.isolation import ChildFailure, child_temp_dir, mark_stage
from mcuq.common.warm import run_warm_ex
from mcuq.frontend.calibration import is_function_spec, load_samples
from mcuq.frontend.fullint8 import check_full_int8, detect_mode, dynamic_batch
from mcuq.frontend.loader import LoadedModel, detect_kind, load_model
from mcuq.frontend.options import QuantizeOptions
from mcuq.frontend.output_file import check_output_file, record_path, write_new_file
from mcuq.frontend.rewrite import rewrite_for_int8
from mcuq.frontend.samples import SampleSet
from mcuq.frontend.tf import import_tensorflow, native_output_captured
from mcuq.frontend.tf_converter import configure_full_int8, converter_for, run_converter
from mcuq.model.dedupe import dedupe_buffers
from mcuq.model.info import ModelInfo, parse_model
from mcuq.model.state import state_mode
from mcuq.project.escape import check_path_text
from mcuq.project.records import QuantizationJSON, RewritesJSON


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
    # Layers mcuq rewrote into int8-kernel ops before converting (mcuq.frontend.rewrite), and
    # the float check of the rewrite against the original; float_tflite is the rewritten model.
    rewrites: RewritesJSON | None = None
    # Recurrent layers mcuq rebuilt for TFLite Micro (mcuq.frontend.recurrent), one line each.
    rebuilt_layers: list[str] = field(default_factory=list)
    # The source means the model's state to carry across invokes (a stateful Keras layer, or a
    # .tflite with state: TFLite Micro's semantics); see mcuq.model.state.
    streaming: bool = False

    @property
    def state(self) -> str:
        """none | per_invoke | streaming (mcuq.model.state)."""
        return state_mode(self.info, self.streaming)

    def manifest_entry(self) -> QuantizationJSON:
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
            "rewrites": self.rewrites,
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
    check_path_text(model, "model")
    for value, what in ((calibration, "calibration file"), (output, "output file")):
        if value is not None:
            check_path_text(value, what)
    if output is not None:
        check_output_file(Path(output), force)
    result = quantize_model(Path(model), calibration, options, console)
    if output is not None:
        write_new_file(Path(output), result.tflite)
        record = {"mcuq_version": __version__, "model_sha256": hashlib.sha256(result.tflite).hexdigest(), **result.manifest_entry()}
        write_new_file(record_path(Path(output)), (json.dumps(record, indent=2) + "\n").encode())
    return result


def quantize_model(model: Path, calibration: str | None, options: QuantizeOptions, console: Console = SILENT) -> QuantizedModel:
    """The conversion alone (or the check of a .tflite that already is full int8), for callers
    that have checked the path texts themselves (``quantize``, ``deploy``'s request check)."""
    if detect_kind(model) != "tflite" and calibration is None:
        raise ConversionError(
            f"{model}: no calibration data: full-int8 quantization needs representative inputs "
            "(--calibration data.npy|.npz|.csv|image folder|module:function); "
            "--calibration random works but leaves accuracy unverified"
        )
    if detect_kind(model) == "tflite":
        result = _pass_through_tflite(load_model(model, console), options)
        for note in result.notes:
            console.info(note)
    else:
        assert calibration is not None
        result = _convert_isolated(model, calibration, options, console)
    return result


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
    # A warm worker (mcuq.common.warm) keeps TensorFlow imported between conversions; --verbose
    # is fixed when TensorFlow is imported, so it is part of the worker's key.
    answer, failure = run_warm_ex(
        "mcuq.frontend.converter", request, capture_stderr=False, timeout=CONVERTER_TIMEOUT, key=f"verbose={console.level >= 2}"
    )
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
        rewrites=answer.get("rewrites"),
        rebuilt_layers=answer.get("rebuilt", []),
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


class ConversionAnswer(TypedDict, total=False):
    """What the converting child process hands back (pickled): the models and how they were made;
    on failure only ``error`` and ``error_type`` (an mcuq error class name)."""

    tflite: bytes
    float_tflite: bytes | None
    kind: str
    data: SampleSet
    notes: list[str]
    timings: list[tuple[str, float]]
    dense_per_channel_tflite: bytes | None
    rewrites: RewritesJSON | None
    rebuilt: list[str]
    stateful: bool
    error: str
    error_type: str


def convert_in_this_process(model: Path, calibration: str, options: QuantizeOptions, console: Console) -> ConversionAnswer:
    """The child-process side of ``_convert_isolated``: load, calibrate, convert."""
    mark_stage("importing TensorFlow")
    with console.step("importing TensorFlow"):
        tf = import_tensorflow()
    mark_stage(f"loading {model}")
    loaded = load_model(model, console)
    source_kind = loaded.kind
    loaded, rebuilt, stateful = _rebuild_recurrent(loaded, calibration, options, console)
    with tempfile.TemporaryDirectory(prefix="mcuq-export-", dir=child_temp_dir()) as tmp:
        make_converter, inputs = converter_for(loaded, Path(tmp), console)
        data = load_samples(calibration, inputs, options.calibration_samples, options.seed, options.image_scale)
        if data.random:
            console.warn("--calibration random: int8 ranges come from random numbers; ACCURACY IS UNVERIFIED (recorded in every output)")
        rewritten = rewrite_for_int8(loaded, data, console)  # checked in float against the original here
        if rewritten.rewrites:
            make_converter = converter_for(rewritten.loaded, Path(tmp) / "rewritten", console)[0]
        converter = make_converter()
        configure_full_int8(converter, tf, data, options)
        mark_stage("converting")
        with console.step(f"calibrating on {data.count} samples and converting"):
            tflite = run_converter(converter, loaded, console)
        alternative = None
        if options.per_channel == "auto" and has_multichannel_dense(parse_model(tflite, "converted model")):
            converter = make_converter()
            configure_full_int8(converter, tf, data, replace(options, per_channel="all"))
            with console.step("converting again with per-channel Dense (for the per-channel choice)"):
                alternative = run_converter(converter, loaded, console)
        notes = list(loaded.notes)
        try:
            float_tflite: bytes | None = run_converter(make_converter(), loaded, console)
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
        "rewrites": rewritten.as_dict() if rewritten.rewrites else None,
        "rebuilt": rebuilt,
        "stateful": stateful,
    }


def _child_main(request_path: str, response_path: str) -> int:
    """The one-shot child (``python -m mcuq.frontend.converter REQUEST RESPONSE``)."""
    _answer_request(pickle.loads(Path(request_path).read_bytes()), response_path)
    return 0


def serve_request(request_path: str, response_path: str) -> bool:
    """The warm worker's side (mcuq.common.warm): one conversion in a process that may have
    converted before; False when the process must not serve another one."""
    _reset_keras()
    request = pickle.loads(Path(request_path).read_bytes())
    path_before = list(sys.path)
    answer = _answer_request(request, response_path)
    # A calibration function stays imported (an edited file would be ignored next time) and
    # its folder stays on sys.path; an error may leave a half-built graph behind.
    user_code = is_function_spec(request["calibration"]) or sys.path != path_before
    return "error" not in answer and not user_code


def _reset_keras() -> None:
    """What a conversion leaves in Keras that can change the next one: the auto-generated layer
    names (counters) and the graph. The converter sets no global seed (its sample choices use
    ``np.random.default_rng(options.seed)``), so there is no random state to reset."""
    for name in ("keras", "tf_keras"):
        if name in sys.modules:
            sys.modules[name].backend.clear_session()


def _answer_request(request: dict[str, Any], response_path: str) -> ConversionAnswer:
    from mcuq.frontend.tf import set_verbose

    set_verbose(request["level"] >= 2)
    console = Console(level=request["level"], record=True)
    try:
        answer = convert_in_this_process(Path(request["model"]), request["calibration"], request["options"], console)
    except MCUQError as exc:
        answer = {"error": str(exc), "error_type": type(exc).__name__}
    Path(response_path).write_bytes(pickle.dumps(answer))
    return answer


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
