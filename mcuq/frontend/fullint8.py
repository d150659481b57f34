"""The full-int8 check: a model mcuq deploys has no float left where TFLite Micro runs it.

A dynamic-range ("hybrid") or float model would run slowly in float emulation on an
MCU, or not at all; this check names the first op or tensor that breaks the rule, the
Keras layer it came from, and the fix.
"""

from __future__ import annotations

from mcuq.common.errors import ConversionError
from mcuq.libraries import signal_op
from mcuq.model.info import BIAS_INPUT_INDEX, FLOAT_TYPES, ModelInfo, OpInfo, TensorInfo

ACTIVATION_TYPES = {"int8": {"int8"}, "int16": {"int16"}}
BIAS_TYPES = {"int8": {"int32"}, "int16": {"int64", "int32"}}
IO_EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}
QUANTIZED_TYPES = {"int8", "uint8", "int16"}
EDGE_TYPES = {"int8", "uint8", "int16", "int32", "float32"}  # what the generated I/O helpers have C types for
# QUANTIZE conversions TFLite Micro runs (kernels/quantize_common.cc:57-74 PrepareQuantizeReference):
# a model may start or end with one (e.g. a 16x8 model whose last op writes int32).
QUANTIZE_PAIRS = {
    ("float32", "int8"), ("float32", "int16"), ("float32", "uint8"),
    ("int16", "int8"), ("int8", "int8"), ("int8", "uint8"), ("uint8", "int8"), ("int8", "int16"),
    ("int8", "int32"), ("int16", "int16"), ("int16", "int32"), ("int32", "int8"), ("int32", "int16"),
}  # fmt: skip
# Inputs that carry a shape, never data: TRANSPOSE_CONV's output_shape (TFLite Micro does not even
# read it: kernels/transpose_conv.cc takes the output tensor's dims), RESHAPE's new shape.
SHAPE_OPERANDS = {"TRANSPOSE_CONV": 0, "RESHAPE": 1}
# Inputs of the weighted ops that carry data or weights (the others are bias or output shape).
DATA_INPUTS = {"CONV_2D": (0, 1), "DEPTHWISE_CONV_2D": (0, 1), "FULLY_CONNECTED": (0, 1), "TRANSPOSE_CONV": (1, 2)}
ARITHMETIC_OPS = {"ADD", "SUB", "MUL", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "CONCATENATION"}
# A model converted with batch None computes the shape of every Flatten at run time
# (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE): small int32 tensors that are never data.
SHAPE_SOURCE_OPS = {"SHAPE"}
SHAPE_ARITHMETIC_OPS = {"STRIDED_SLICE", "PACK", "CONCATENATION", "GATHER", "SLICE", "MUL", "ADD", "REDUCE_PROD", "CAST"}
SHAPE_DTYPES = {"int32", "int64"}


def shape_tensors(info: ModelInfo) -> set[int]:
    """Indices of the int32 tensors that only carry shapes (no float, no activations)."""
    found: set[int] = _shape_operand_inputs(info)
    for op in info.ops:  # ops are in execution order, so one pass propagates
        outs = [info.tensors[i] for i in op.outputs]
        if not outs or any(t.dtype not in SHAPE_DTYPES for t in outs):
            continue
        live = [i for i in op.inputs if i >= 0 and not info.tensors[i].is_constant]
        if op.name in SHAPE_SOURCE_OPS or (op.name in SHAPE_ARITHMETIC_OPS and live and all(i in found for i in live)):
            found.update(op.outputs)
    return found


def _shape_operand_inputs(info: ModelInfo) -> set[int]:
    """int32 graph inputs read only as a shape operand (TRANSPOSE_CONV's output shape exposed as
    a model input, as TFLite Micro's transpose_conv integration tests have it)."""
    found = set()
    for index in info.inputs:
        if info.tensors[index].dtype not in SHAPE_DTYPES:
            continue
        uses = [(op.name, pos) for op in info.ops for pos, i in enumerate(op.inputs) if i == index]
        if uses and all(SHAPE_OPERANDS.get(name) == pos for name, pos in uses):
            found.add(index)
    return found


def classify_float_model(info: ModelInfo) -> str | None:
    """'float' or 'hybrid' when the model is not integer-quantized at all, else None."""
    activations = [t for t in info.tensors if not t.is_constant]
    if any(t.dtype in ("int8", "int16") for t in activations) or not any(t.dtype in FLOAT_TYPES for t in activations):
        return None
    has_int8_weights = any(t.is_constant and t.dtype == "int8" for t in info.tensors)
    return "hybrid" if has_int8_weights else "float"


def _where(info: ModelInfo, op: OpInfo, tflite: bool = False) -> str:
    """A .tflite carries no Keras layers (its tensor names may be anything): name the tensor."""
    if tflite:
        return f"op {op.index} {op.name} (output tensor '{info.tensors[op.outputs[0]].name if op.outputs else '?'}')"
    return f"op {op.index} {op.name} (Keras layer '{info.layer_of_op(op)}')"


def _check_op(info: ModelInfo, op: OpInfo, activations: str, io: str, tflite: bool = False, shapes: frozenset[int] = frozenset()) -> None:
    if signal_op(op.name):
        return  # TFLite Micro's signal library: integer kernels with their own types (signal/micro/kernels)
    if op.name == "CUSTOM:ethos-u":
        raise ConversionError(
            f"{_where(info, op, tflite)} is a Vela-compiled Ethos-U command stream: this .tflite only runs on an Arm "
            "Ethos-U NPU; deploy the .tflite you gave Vela (before compilation)"
        )
    if op.is_custom:
        kind = "a Flex (TensorFlow) op" if "Flex" in op.name else "a custom op"
        raise ConversionError(
            f"{_where(info, op, tflite)} is {kind}, which TFLite Micro cannot run in full int8; "
            "replace that layer with built-in Keras layers"
        )
    allowed_act = ACTIVATION_TYPES[activations]
    for pos, idx in enumerate(op.inputs):
        if idx < 0:
            continue
        t = info.tensors[idx]
        if idx in shapes:
            continue
        _check_has_quantization(info, op, t, tflite)
        if t.is_constant and op.name in ARITHMETIC_OPS and t.dtype not in allowed_act and not set(op.outputs) <= shapes:
            _fail_tensor(info, op, t, f"operand is {t.dtype}, expected {activations}", tflite)
        if pos in DATA_INPUTS.get(op.name, ()) and t.dtype not in allowed_act | {"int8"}:
            _fail_tensor(info, op, t, f"input {pos} is {t.dtype}, expected {activations} (data) or int8 (weights)", tflite)
        if t.is_constant:
            _check_constant(info, op, pos, t, activations, tflite)
        elif t.dtype not in allowed_act and not _is_float_edge(info, op, t, io) and not _is_int16_state(op, pos, t):
            _fail_tensor(info, op, t, f"activation is {t.dtype}, expected {activations}", tflite)
    for idx in op.outputs:
        t = info.tensors[idx]
        if idx in shapes:
            continue
        _check_has_quantization(info, op, t, tflite)
        if t.dtype not in allowed_act and not _is_float_edge(info, op, t, io):
            _fail_tensor(info, op, t, f"output is {t.dtype}, expected {activations}", tflite)


# lstm_shared.h kLstmCellStateTensor; svdf_common.cc kSvdfInputActivationStateTensor
INT16_STATE_INPUTS = {"UNIDIRECTIONAL_SEQUENCE_LSTM": 19, "SVDF": 4}


def _is_int16_state(op: OpInfo, pos: int, t: TensorInfo) -> bool:
    """Recurrent state kept in int16 by an int8 op: the quantized LSTM's cell state (lstm_eval.cc:
    "only support int16 cell state") and the int8 SVDF's activation state when its time weights
    are int16 (svdf.cc EvalInt16SvdfReference, Google's keyword-spotting models)."""
    return INT16_STATE_INPUTS.get(op.name) == pos and t.is_variable and t.dtype == "int16"


def _check_has_quantization(info: ModelInfo, op: OpInfo, t: TensorInfo, tflite: bool) -> None:
    """An 8/16-bit tensor without scale and zero point cannot be run or converted to real values."""
    if t.dtype in QUANTIZED_TYPES and t.quant is None:
        _fail_tensor(info, op, t, f"{t.dtype} tensor has no quantization parameters (scale, zero point)", tflite)


def _is_float_edge(info: ModelInfo, op: OpInfo, t: TensorInfo, io: str) -> bool:
    """Model inputs/outputs may be float32 or uint8 when the user asked for such edges, and a
    QUANTIZE at an edge may convert between the integer types TFLite Micro's kernel takes."""
    at_edge = t.index in info.inputs or t.index in info.outputs
    if not at_edge or op.name not in IO_EDGE_OPS:
        return False
    if t.dtype == io:
        return True
    if op.name != "QUANTIZE" or len(op.inputs) < 1 or op.inputs[0] < 0 or not op.outputs:
        return False
    pair = (info.tensors[op.inputs[0]].dtype, info.tensors[op.outputs[0]].dtype)
    return pair in QUANTIZE_PAIRS and pair[0] != "float32"


def _check_constant(info: ModelInfo, op: OpInfo, pos: int, t: TensorInfo, activations: str, tflite: bool) -> None:
    if BIAS_INPUT_INDEX.get(op.name) == pos:
        if t.dtype not in BIAS_TYPES[activations]:
            _fail_tensor(info, op, t, f"bias is {t.dtype}, expected {'/'.join(sorted(BIAS_TYPES[activations]))}", tflite)
        return
    if t.dtype in FLOAT_TYPES:
        _fail_tensor(info, op, t, f"constant is {t.dtype} (weights must be int8)", tflite)
    if op.name in BIAS_INPUT_INDEX and pos == 1 and t.dtype != "int8":
        _fail_tensor(info, op, t, f"weights are {t.dtype}, expected int8", tflite)


def _float_op(info: ModelInfo, op: OpInfo) -> OpInfo:
    """The op the converter left in float: a DEQUANTIZE it inserted only feeds it."""
    if op.name != "DEQUANTIZE" or not op.outputs:
        return op
    consumers = [o for o in info.ops if op.outputs[0] in o.inputs and o.name not in IO_EDGE_OPS]
    return consumers[0] if consumers else op


def _fail_tensor(info: ModelInfo, op: OpInfo, t: TensorInfo, what: str, tflite: bool = False) -> None:
    if tflite:  # someone else's .tflite: quantizing its source with calibration data is the fix
        fix = "re-quantize from the Keras/SavedModel with calibration data (mcuq quantize), or replace the layer with one TFLite supports in int8"
    else:  # mcuq just quantized it with calibration data: the converter has no int8 form of the op
        culprit = _float_op(info, op)
        fix = (
            f"the TFLite converter has no int8 form of {culprit.name} (Keras layer '{info.layer_of_op(culprit)}') "
            "and left it in float even with calibration data; "
            "replace that layer with layers TFLite quantizes (Dense/Conv, ReLU/LeakyReLU/sigmoid/tanh/softmax, "
            "BatchNormalization); mcuq itself rewrites ELU, GELU, LayerNormalization, nearest UpSampling and MultiHeadAttention"
        )
    raise ConversionError(f"not full int8: {_where(info, op, tflite)}, tensor '{t.name}': {what}; {fix}")


def check_full_int8(info: ModelInfo, activations: str = "int8", io: str | None = None, source: str = "model", tflite: bool = False) -> None:
    """Raise ConversionError naming the first violation of the full-int8 contract.

    ``tflite``: the model came as a .tflite file, so messages name tensors, not Keras layers.
    """
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
    check_static_shapes(info, source, tflite)
    for t in [*info.input_tensors, *info.output_tensors]:
        if t.dtype not in EDGE_TYPES:
            raise ConversionError(
                f"{source}: model {'input' if t.index in info.inputs else 'output'} '{t.name}' is {t.dtype}; "
                f"mcuq deploys models whose inputs and outputs are {', '.join(sorted(EDGE_TYPES))}"
            )
    io = io or activations
    shapes = frozenset(shape_tensors(info))
    for op in info.ops:
        _check_op(info, op, activations, io, tflite, shapes)


def dynamic_batch(info: ModelInfo) -> bool:
    """True when the signature says batch -1 (and ``shape`` batch 1): the standard converter
    writes that for every Keras model whose batch is None, and TFLite Micro runs ``shape``."""
    return any(t.shape_signature is not None and len(t.shape_signature) > 0 and t.shape_signature[0] < 0 for t in info.tensors)


def check_static_shapes(info: ModelInfo, source: str, tflite: bool = False) -> None:
    """Only the batch may be dynamic, and only when its ``shape`` is 1; anything else is refused."""
    for t in info.tensors:
        if t.shape_signature is None:
            continue
        batch_only = len(t.shape_signature) > 0 and all(d >= 0 for d in t.shape_signature[1:]) and len(t.shape) > 0 and t.shape[0] == 1
        if any(d < 0 for d in t.shape_signature) and not batch_only:
            where = f"tensor '{t.name}'" if tflite else f"tensor '{t.name}' (Keras layer '{t.layer}')"
            fix = (
                "re-export the .tflite from a model whose input has fixed dimensions (only the batch may be None)"
                if tflite
                else "export the model with a fixed input shape and batch 1"
            )
            raise ConversionError(f"{source}: {where} has a dynamic shape {list(t.shape_signature)}; {fix}")


def detect_mode(info: ModelInfo) -> tuple[str, str]:
    """(activations, io) of an already-quantized model: int8 or int16, and its edge dtype."""
    # Variable tensors are recurrent state: an int8 LSTM keeps its cell state in int16 (TFLite
    # Micro's lstm_eval only takes int16 cell state), which says nothing about the activations.
    act = "int16" if any(t.dtype == "int16" and not t.is_constant and not t.is_variable for t in info.tensors) else "int8"
    io = info.input_tensors[0].dtype if info.inputs else act
    return act, io
