"""The full-int8 check: a model mcuq deploys has no float left where TFLite Micro runs it.

A dynamic-range ("hybrid") or float model would run slowly in float emulation on an
MCU, or not at all; this check names the first op or tensor that breaks the rule, the
Keras layer it came from, and the fix.
"""

from __future__ import annotations

from mcuq.common.errors import ConversionError
from mcuq.model.info import BIAS_INPUT_INDEX, FLOAT_TYPES, ModelInfo, OpInfo, TensorInfo

ACTIVATION_TYPES = {"int8": {"int8"}, "int16": {"int16"}}
BIAS_TYPES = {"int8": {"int32"}, "int16": {"int64", "int32"}}
IO_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}


def classify_float_model(info: ModelInfo) -> str | None:
    """'float' or 'hybrid' when the model is not integer-quantized at all, else None."""
    activations = [t for t in info.tensors if not t.is_constant]
    if any(t.dtype in ("int8", "int16") for t in activations) or not any(t.dtype in FLOAT_TYPES for t in activations):
        return None
    has_int8_weights = any(t.is_constant and t.dtype == "int8" for t in info.tensors)
    return "hybrid" if has_int8_weights else "float"


def _where(info: ModelInfo, op: OpInfo) -> str:
    return f"op {op.index} {op.name} (Keras layer '{info.layer_of_op(op)}')"


def _check_op(info: ModelInfo, op: OpInfo, activations: str, io: str) -> None:
    if op.is_custom:
        kind = "a Flex (TensorFlow) op" if "Flex" in op.name else "a custom op"
        raise ConversionError(
            f"{_where(info, op)} is {kind}, which TFLite Micro cannot run in full int8; "
            "replace that layer with built-in Keras layers"
        )
    allowed_act = ACTIVATION_TYPES[activations]
    for pos, idx in enumerate(op.inputs):
        if idx < 0:
            continue
        t = info.tensors[idx]
        if t.is_constant:
            _check_constant(info, op, pos, t, activations)
        elif t.dtype not in allowed_act and not _is_float_edge(info, op, t, io):
            _fail_tensor(info, op, t, f"activation is {t.dtype}, expected {activations}")
    for idx in op.outputs:
        t = info.tensors[idx]
        if t.dtype not in allowed_act and not _is_float_edge(info, op, t, io):
            _fail_tensor(info, op, t, f"output is {t.dtype}, expected {activations}")


def _is_float_edge(info: ModelInfo, op: OpInfo, t: TensorInfo, io: str) -> bool:
    """Model inputs/outputs may be float32 or uint8 when the user asked for such edges."""
    at_edge = t.index in info.inputs or t.index in info.outputs
    return at_edge and op.name in IO_EDGE_OPS and t.dtype == io


def _check_constant(info: ModelInfo, op: OpInfo, pos: int, t: TensorInfo, activations: str) -> None:
    if BIAS_INPUT_INDEX.get(op.name) == pos:
        if t.dtype not in BIAS_TYPES[activations]:
            _fail_tensor(info, op, t, f"bias is {t.dtype}, expected {'/'.join(sorted(BIAS_TYPES[activations]))}")
        return
    if t.dtype in FLOAT_TYPES:
        _fail_tensor(info, op, t, f"constant is {t.dtype} (weights must be int8)")
    if op.name in BIAS_INPUT_INDEX and pos == 1 and t.dtype != "int8":
        _fail_tensor(info, op, t, f"weights are {t.dtype}, expected int8")


def _fail_tensor(info: ModelInfo, op: OpInfo, t: TensorInfo, what: str) -> None:
    raise ConversionError(
        f"not full int8: {_where(info, op)}, tensor '{t.name}': {what}; "
        "re-quantize from the Keras/SavedModel with calibration data (mcuq quantize), "
        "or replace the layer with one TFLite supports in int8"
    )


def check_full_int8(info: ModelInfo, activations: str = "int8", io: str | None = None, source: str = "model") -> None:
    """Raise ConversionError naming the first violation of the full-int8 contract."""
    kind = classify_float_model(info)
    if kind == "float":
        raise ConversionError(
            f"{source} is a float .tflite: the TF converter cannot re-quantize a .tflite; "
            "run mcuq on the Keras (.keras/.h5) or SavedModel it came from, with --calibration DATA"
        )
    if kind == "hybrid":
        raise ConversionError(
            f"{source} is a dynamic-range (hybrid) .tflite: int8 weights but float activations, "
            "which TFLite Micro does not run as int8; quantize the Keras/SavedModel with --calibration DATA"
        )
    if info.num_subgraphs != 1:
        raise ConversionError(
            f"{source} has {info.num_subgraphs} subgraphs (control flow such as tf.cond/while); "
            "mcuq deploys single-subgraph models: remove the control flow from the model"
        )
    for t in info.tensors:
        if t.shape_signature is not None and any(d < 0 for d in t.shape_signature):
            raise ConversionError(
                f"{source}: tensor '{t.name}' (Keras layer '{t.layer}') has a dynamic shape "
                f"{list(t.shape_signature)}; export the model with a fixed input shape and batch 1"
            )
    io = io or activations
    for op in info.ops:
        _check_op(info, op, activations, io)


def detect_mode(info: ModelInfo) -> tuple[str, str]:
    """(activations, io) of an already-quantized model: int8 or int16, and its edge dtype."""
    act = "int16" if any(t.dtype == "int16" and not t.is_constant for t in info.tensors) else "int8"
    io = info.input_tensors[0].dtype if info.inputs else act
    return act, io
