"""Structural verifier for .tflite models, run before anything reads a model.

The TFLite flatbuffer bindings decode whatever bytes they are given: an op input of 1000000,
a weight tensor whose shape promises more bytes than its buffer holds, or a per-channel scale
list shorter than the channel count all decode "fine" and then surface deep inside mcuq as an
``IndexError`` or as minutes of arena search. TFLite's own ``tflite::Verify`` (and the checks of
``InterpreterBuilder``) reject such files up front; this module applies the same rules to the
decoded object tree, plus the per-op facts mcuq's later stages rely on (the layouts of the
convolution, pooling and dense ops, option values in range). Every finding is one
``ModelLoadError`` line that names the subgraph, op or tensor.

What is checked (with TFLite's reference in parentheses):

* schema version 3 (``TFLITE_SCHEMA_VERSION``), at least one subgraph, bounded counts;
* every index in range: op -> opcode, op inputs (-1 = omitted) / outputs / intermediates ->
  tensor, tensor -> buffer, subgraph inputs/outputs, signature defs, metadata -> buffer,
  control-flow options -> subgraph (``VerifySubGraphConsistency``, ``VerifyOperators``);
* tensors: known type, shape dims >= 0 and bounded, shape signature consistent, a constant
  tensor's buffer size equal to elements x type size (``VerifyNumericTensorBuffer``), data kept
  inside the flatbuffer, quantization arrays of matching length and per-channel arrays as long
  as the quantized dimension (``ParseQuantization``);
* ops: builtin options of the type the op declares (``builtin_options_as_<T>``), known enum
  values, stride/dilation/filter sizes >= 1, and the ranks of the ops whose layouts later
  stages index (conv, depthwise, transpose conv, pooling, fully connected), an SVDF's bias (TFLite
  Micro reads it even when omitted);
* dataflow (``_verify_dataflow``): every tensor an op reads, and every graph output, is written
  before it is read (the rule of TFLite's ``VerifySubGraphConsistency``, see there).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from mcuq.common.errors import ModelLoadError

SCHEMA_VERSION = 3
MAX_SUBGRAPHS = 64
MAX_TENSORS = 1 << 20
MAX_OPS = 1 << 20
MAX_RANK = 8
MAX_TENSOR_BYTES = 1 << 30  # far beyond any microcontroller; bounds every later allocation
TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8, 15: 4, 16: 2}
STRING, RESOURCE, VARIANT, INT4 = 5, 13, 14, 17
KNOWN_TYPES = set(TYPE_SIZES) | {STRING, RESOURCE, VARIANT, INT4}

POOL_OPS = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "L2_POOL_2D"}
REDUCER_OPS = {"MEAN", "SUM", "REDUCE_MAX", "REDUCE_MIN", "REDUCE_PROD", "REDUCE_ANY", "REDUCE_ALL"}
# (minimum inputs, {input slot: rank}, output rank or None) for ops whose layout mcuq indexes.
LAYOUTS: dict[str, tuple[int, dict[int, int], int | None]] = {
    "CONV_2D": (2, {0: 4, 1: 4}, 4),
    "DEPTHWISE_CONV_2D": (2, {0: 4, 1: 4}, 4),
    "TRANSPOSE_CONV": (3, {1: 4, 2: 4}, 4),
    "FULLY_CONNECTED": (2, {1: 2}, None),
    "AVERAGE_POOL_2D": (1, {0: 4}, 4),
    "MAX_POOL_2D": (1, {0: 4}, 4),
}
# Inputs an op cannot run without (TFLite kernels check NumInputs in Prepare; mcuq's stages index them).
MIN_INPUTS = {
    "ADD": 2,
    "SUB": 2,
    "MUL": 2,
    "SQUARED_DIFFERENCE": 2,
    "MAXIMUM": 2,
    "MINIMUM": 2,
    "MEAN": 2,
    "SUM": 2,
    "PAD": 2,
    "PADV2": 2,
    "RESHAPE": 1,
    "SOFTMAX": 1,
    "LOGISTIC": 1,
    "TANH": 1,
    "RELU": 1,
    "RELU6": 1,
    "LEAKY_RELU": 1,
    "QUANTIZE": 1,
    "DEQUANTIZE": 1,
    "CONCATENATION": 1,
    "HARD_SWISH": 1,
    "PRELU": 2,
    "TRANSPOSE": 2,
    "STRIDED_SLICE": 4,
    "SLICE": 3,
    "RESIZE_NEAREST_NEIGHBOR": 2,
    "RESIZE_BILINEAR": 2,
    "SQUEEZE": 1,
    "EXPAND_DIMS": 2,
}
# Ops that write no tensor: they call a subgraph once or store into a resource variable.
NO_OUTPUT_OPS = {"CALL_ONCE", "ASSIGN_VARIABLE"}
REQUIRED_OPTIONS = {"CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "MAX_POOL_2D", "TRANSPOSE_CONV"}
AT_LEAST_ONE = ("strideH", "strideW", "dilationHFactor", "dilationWFactor", "filterHeight", "filterWidth")


@lru_cache(maxsize=1)
def _enums() -> tuple[dict[int, str], dict[int, str], dict[str, int]]:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def table(cls: Any) -> dict[int, str]:
        return {getattr(cls, n): n for n in dir(cls) if not n.startswith("_")}

    ops, options = table(schema.BuiltinOperator), table(schema.BuiltinOptions)
    by_name = {name.lower(): value for value, name in options.items()}
    expected: dict[str, int] = {}
    for name in ops.values():
        if name in POOL_OPS:
            expected[name] = by_name["pool2doptions"]
        elif name in REDUCER_OPS:
            expected[name] = by_name["reduceroptions"]
        elif name in ("MAXIMUM", "MINIMUM"):
            expected[name] = by_name["maximumminimumoptions"]
        elif name.replace("_", "").lower() + "options" in by_name:
            expected[name] = by_name[name.replace("_", "").lower() + "options"]
    return ops, options, expected


class _Fail(Exception):
    pass


class _Unrunnable(Exception):
    """A well-formed model TFLite Micro cannot run (it would crash on it): not "malformed"."""


def _fail(message: str) -> None:
    raise _Fail(message)


def _len(v: Any) -> int:
    return 0 if v is None else len(v)


def _ints(v: Any) -> list[int]:
    return [] if v is None else [int(x) for x in v]


def _check_index(value: int, count: int, what: str, allow_omitted: bool = False) -> None:
    if allow_omitted and value == -1:
        return
    if not 0 <= value < count:
        _fail(f"{what} is {value}, out of range (0..{count - 1})")


def verify_model(model: Any, raw: bytes, source: str = "model") -> None:
    """Raise a one-line ModelLoadError naming the first structural defect of ``model`` (a ModelT)."""
    try:
        _verify(model, raw)
    except _Fail as exc:
        raise ModelLoadError(f"{source}: malformed .tflite: {exc}; re-export the model with the TFLite converter") from None
    except _Unrunnable as exc:
        raise ModelLoadError(f"{source}: {exc}") from None


def _verify(model: Any, raw: bytes) -> None:
    if int(model.version) != SCHEMA_VERSION:
        _fail(f"schema version {model.version}, expected {SCHEMA_VERSION}")
    subgraphs = model.subgraphs or []
    buffers = model.buffers or []
    opcodes = model.operatorCodes or []
    if not subgraphs:
        _fail("no subgraph")
    if len(subgraphs) > MAX_SUBGRAPHS:
        _fail(f"{len(subgraphs)} subgraphs (limit {MAX_SUBGRAPHS})")
    op_names, option_names, _ = _enums()
    for i, code in enumerate(opcodes):
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        if builtin not in op_names:
            _fail(f"operator code {i} names builtin op {builtin}, unknown to this TFLite schema")
        if int(code.version) < 1:
            _fail(f"operator code {i} has version {code.version}")
    for i, buf in enumerate(buffers):
        offset, size = int(getattr(buf, "offset", 0) or 0), int(getattr(buf, "size", 0) or 0)
        if offset > 1 or size > 0:
            if offset + size > len(raw):
                _fail(f"buffer {i} points at bytes {offset}..{offset + size} beyond the {len(raw)}-byte file")
            _fail(f"buffer {i} is stored outside the flatbuffer (a >2 GB model layout), which mcuq does not read")
    for m, meta in enumerate(model.metadata or []):
        _check_index(int(meta.buffer), len(buffers), f"metadata {m} buffer")
    for s, sg in enumerate(subgraphs):
        _verify_subgraph(s, sg, buffers, opcodes, len(subgraphs), op_names, option_names)
    if not _ints(subgraphs[0].inputs) or not _ints(subgraphs[0].outputs):
        _fail("the main subgraph has no inputs or no outputs")
    _verify_dataflow(subgraphs, buffers, opcodes, op_names)
    for d, sig in enumerate(model.signatureDefs or []):
        _check_index(int(sig.subgraphIndex), len(subgraphs), f"signature {d} subgraph")
        count = _len(subgraphs[int(sig.subgraphIndex)].tensors)
        for t in [*(sig.inputs or []), *(sig.outputs or [])]:
            _check_index(int(t.tensorIndex), count, f"signature {d} tensor")


def _verify_subgraph(
    s: int, sg: Any, buffers: list[Any], opcodes: list[Any], n_subgraphs: int, op_names: dict[int, str], option_names: dict[int, str]
) -> None:
    where = f"subgraph {s}" if s else "the main subgraph"
    tensors = sg.tensors or []
    ops = sg.operators or []
    if len(tensors) > MAX_TENSORS or len(ops) > MAX_OPS:
        _fail(f"{where} has {len(tensors)} tensors and {len(ops)} ops (limits {MAX_TENSORS}, {MAX_OPS})")
    biases = _bias_only_tensors(ops, opcodes, op_names)
    intermediates = {i for op in ops for i in _ints(op.intermediates)}
    for t_index, t in enumerate(tensors):
        _verify_tensor(f"{where} tensor {t_index} '{_name(t)}'", t, buffers, t_index in biases, t_index in intermediates)
    for kind, values in (("input", sg.inputs), ("output", sg.outputs)):
        for v in _ints(values):
            _check_index(v, len(tensors), f"{where} {kind} tensor index")
    _, _, expected = _enums()
    for o, op in enumerate(ops):
        _check_index(int(op.opcodeIndex), len(opcodes), f"{where} op {o} opcode index")
        code = opcodes[int(op.opcodeIndex)]
        name = op_names[max(int(code.builtinCode), int(code.deprecatedBuiltinCode))]
        what = f"{where} op {o} ({name})"
        inputs, outputs = _ints(op.inputs), _ints(op.outputs)
        for v in inputs:
            _check_index(v, len(tensors), f"{what} input tensor index", allow_omitted=True)
        for v in [*outputs, *_ints(op.intermediates)]:
            _check_index(v, len(tensors), f"{what} output tensor index")
        if not outputs and name not in NO_OUTPUT_OPS:
            _fail(f"{what} has no output")
        _verify_options(what, name, op, expected, option_names, n_subgraphs)
        _verify_layout(what, name, inputs, outputs, tensors)


def _name(t: Any) -> str:
    name = t.name
    text = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")
    return text[:80]


def _bias_only_tensors(ops: list[Any], opcodes: list[Any], op_names: dict[int, str]) -> set[int]:
    """Tensors read only as the bias of CONV_2D / DEPTHWISE_CONV_2D / FULLY_CONNECTED / TRANSPOSE_CONV.

    TFLite Micro never reads a bias's ``quantized_dimension``: the kernels derive the bias scale from
    input x filter scales. The only reads of that field are the filter's, in
    ``PopulateConvolutionQuantizationParams`` (tensorflow/lite/kernels/kernel_util.cc:246, conv,
    depthwise and transpose conv) and ``CalculateOpDataFullyConnected``
    (tensorflow/lite/micro/kernels/fully_connected_common.cc:109), plus compressed tensors
    (micro_allocator.cc:487). The converter wrote ``quantized_dimension = 3`` on person_detect's
    rank-1 biases, and TFLite Micro runs that file.
    """
    slots = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}
    bias: set[int] = set()
    other: set[int] = set()
    for op in ops:
        index = int(op.opcodeIndex)
        code = opcodes[index] if 0 <= index < len(opcodes) else None
        name = op_names.get(max(int(code.builtinCode), int(code.deprecatedBuiltinCode)), "") if code is not None else ""
        for pos, v in enumerate(_ints(op.inputs)):
            (bias if slots.get(name) == pos else other).add(v)
    return bias - other


def _verify_tensor(what: str, t: Any, buffers: list[Any], bias_only: bool = False, intermediate: bool = False) -> None:
    """``intermediate``: listed in some op's ``intermediates`` (the converter attaches five to every
    quantized LSTM). TFLite Micro requires those to be empty: micro_allocation_info.cc:167-170
    (AllocationInfoBuilder::ValidateSubgraph) fails with "Does not support intermediate
    tensor with non-zero size" otherwise, and no micro kernel reads them; so shape [0] is their
    valid form, not an empty activation."""
    ttype = int(t.type)
    if ttype not in KNOWN_TYPES:
        _fail(f"{what} has unknown type {ttype}")
    shape = _ints(t.shape)
    if len(shape) > MAX_RANK:
        _fail(f"{what} has rank {len(shape)} (limit {MAX_RANK})")
    if any(d < 0 for d in shape):
        _fail(f"{what} has a negative dimension in shape {shape}")
    elements = math.prod(shape)
    itemsize = TYPE_SIZES.get(ttype, 1)
    if elements * itemsize > MAX_TENSOR_BYTES:
        _fail(f"{what} shape {shape} needs {elements * itemsize:,} bytes, more than any microcontroller holds")
    signature = _ints(t.shapeSignature) if t.shapeSignature is not None else None
    if signature is not None and (len(signature) != len(shape) or any(g not in (d, -1) for g, d in zip(signature, shape))):
        _fail(f"{what} has shape signature {signature} inconsistent with its shape {shape}")
    _check_index(int(t.buffer), len(buffers), f"{what} buffer index")
    data = buffers[int(t.buffer)].data
    nbytes = _len(data)
    if not nbytes and 0 in shape and not intermediate:
        _fail(f"{what} is an empty activation (shape {shape})")
    if t.sparsity is not None:
        _fail(f"{what} is sparse; mcuq and TFLite Micro take dense tensors only")
    if nbytes and ttype not in (STRING, RESOURCE, VARIANT):
        want = (elements + 1) // 2 if ttype == INT4 else elements * itemsize
        if nbytes != want:
            _fail(f"{what} holds {nbytes} bytes of data but its shape {shape} x {itemsize} B needs {want}")
    q = t.quantization
    if q is not None and q.scale is not None and _len(q.scale):
        scales, zero_points = list(q.scale), _ints(q.zeroPoint)
        if len(zero_points) != len(scales):
            _fail(f"{what} has {len(scales)} quantization scales but {len(zero_points)} zero points")
        if not all(math.isfinite(float(x)) and float(x) >= 0 for x in scales):
            _fail(f"{what} has a negative or non-finite quantization scale")
        if not nbytes and not intermediate and not all(float(x) > 0 for x in scales):
            _fail(f"{what} is an activation with quantization scale 0")
        if len(scales) > 1 and not bias_only:  # see _bias_only_tensors
            axis = int(q.quantizedDimension)
            if not 0 <= axis < len(shape):
                _fail(f"{what} is quantized per channel along axis {axis}, but has rank {len(shape)}")
            if shape[axis] != len(scales):
                _fail(f"{what} has {len(scales)} per-channel scales for {shape[axis]} channels (axis {axis})")


def _verify_options(what: str, name: str, op: Any, expected: dict[str, int], option_names: dict[int, str], n_subgraphs: int) -> None:
    kind = int(op.builtinOptionsType)
    if kind not in option_names:
        _fail(f"{what} has unknown options type {kind}")
    want = expected.get(name)
    if kind != 0 and want is not None and kind != want:
        _fail(f"{what} carries {option_names[kind]}, expected {option_names[want]}")
    options = op.builtinOptions
    if kind != 0 and options is None:
        _fail(f"{what} declares {option_names[kind]} but carries none")
    if name in REQUIRED_OPTIONS and (kind == 0 or options is None):
        _fail(f"{what} has no {option_names[want] if want is not None else 'options'}")
    if options is None:
        return
    for key, value in vars(options).items():
        if key in AT_LEAST_ONE and int(value) < 1:
            _fail(f"{what} has {key} = {value} (must be >= 1)")
        if key == "padding" and int(value) not in (0, 1):
            _fail(f"{what} has unknown padding {value}")
        if key == "fusedActivationFunction" and not 0 <= int(value) <= 5:
            _fail(f"{what} has unknown fused activation {value}")
        if key == "depthMultiplier" and int(value) < 0:
            _fail(f"{what} has depthMultiplier {value}")
        if key.endswith("SubgraphIndex") and isinstance(value, int):
            _check_index(value, n_subgraphs, f"{what} {key}")


def _verify_layout(what: str, name: str, inputs: list[int], outputs: list[int], tensors: list[Any]) -> None:
    for slot in range(MIN_INPUTS.get(name, 0)):
        if slot >= len(inputs) or inputs[slot] < 0:
            _fail(f"{what} has {len(inputs)} inputs, needs at least {MIN_INPUTS[name]}")
    if name == "SVDF" and (len(inputs) < 5 or inputs[3] < 0):
        # svdf_common.cc PrepareSvdf reads the bias's scale and the Eval's read its data
        # whatever NumInputs says (tflite-micro TODO #1751): without one TFLite Micro crashes
        raise _Unrunnable(f"{what} has no bias (input 3); TFLite Micro's SVDF cannot run without one: give the layer a bias")
    if name in ("SOFTMAX", "CONCATENATION") and not _len(tensors[inputs[0]].shape):
        _fail(f"{what} input 0 is a scalar")
    layout = LAYOUTS.get(name)
    if layout is None:
        return
    min_inputs, ranks, out_rank = layout
    if len(inputs) < min_inputs:
        _fail(f"{what} has {len(inputs)} inputs, needs at least {min_inputs}")
    for slot, rank in ranks.items():
        if inputs[slot] < 0:
            _fail(f"{what} input {slot} is omitted")
        got = _len(tensors[inputs[slot]].shape)
        if got != rank:
            _fail(f"{what} input {slot} has rank {got}, expected {rank}")
    if out_rank is not None and _len(tensors[outputs[0]].shape) != out_rank:
        _fail(f"{what} output has rank {_len(tensors[outputs[0]].shape)}, expected {out_rank}")
    _verify_channels(what, name, inputs, outputs, tensors)


# (filter input slot, filter dim holding the output channels, filter dim holding the input channels, input slot, bias slot)
CHANNELS = {
    "CONV_2D": (1, 0, 3, 0, 2),
    "DEPTHWISE_CONV_2D": (1, 3, None, 0, 2),
    "FULLY_CONNECTED": (1, 0, 1, 0, 2),
    "TRANSPOSE_CONV": (1, 0, 3, 2, 3),
}


def _verify_channels(what: str, name: str, inputs: list[int], outputs: list[int], tensors: list[Any]) -> None:
    """The channel counts the kernels' Prepare checks: filter vs output, filter vs input, bias vs output."""
    spec = CHANNELS.get(name)
    out_shape = _ints(tensors[outputs[0]].shape)
    if spec is None or not out_shape:
        return
    involved = [tensors[i] for i in [*inputs, *outputs] if i >= 0]
    if any(-1 in _ints(t.shapeSignature) for t in involved if t.shapeSignature is not None):
        return  # dynamic sizes are resolved at run time (and refused later, with their own message)
    w_slot, w_out, w_in, x_slot, b_slot = spec
    w_shape = _ints(tensors[inputs[w_slot]].shape)
    channels = out_shape[-1]
    if w_shape[w_out] != channels:
        _fail(f"{what} filter has {w_shape[w_out]} output channels, its output {channels}")
    x_shape = _ints(tensors[inputs[x_slot]].shape)
    if w_in is not None and x_shape:
        depth = math.prod(x_shape) // max(1, x_shape[0]) if name == "FULLY_CONNECTED" else x_shape[-1]
        if w_shape[w_in] <= 0 or depth % w_shape[w_in]:
            _fail(f"{what} filter takes {w_shape[w_in]} input values, the input has {depth}")
    if len(inputs) > b_slot and inputs[b_slot] >= 0:
        bias = math.prod(_ints(tensors[inputs[b_slot]].shape))
        if bias != channels:
            _fail(f"{what} bias has {bias} values for {channels} output channels")


# --- dataflow ---------------------------------------------------------------------------------
#
# TFLite Micro never checks that a tensor is written before it is read. Its memory planner
# (tensorflow/lite/micro/micro_allocation_info.cc, AllocationInfoBuilder::MarkAllocationLifetimes)
# starts a tensor's lifetime where a subgraph input or an op output creates it; a tensor an op
# reads that nothing creates still gets an arena buffer (lifetime first_created = -1) that other
# tensors share, and a graph output nothing writes is "created" at the end of the subgraph. Both
# run, and the op or the caller reads whatever the arena held: golden vectors of such a model are
# not reproducible, on the host or on the board. Weights and biases are not in the plan: their
# data points into the model (micro_allocator.cc, a buffer with data), and is_variable tensors
# are allocated persistently and zeroed (ResetVariableTensors). A graph output that is a graph
# input is planned from the start to the end of the subgraph: TFLite Micro returns the input.
# So the rule is TFLite's own (tensorflow/lite/core/tools/verifier.cc, VerifySubGraphConsistency:
# "Input tensor %d to op %d (%s) is not produced", "Output tensor %d to op %d (%s) is a constant"),
# applied to the subgraphs TFLite Micro plans: the main one and those IF / WHILE / CALL_ONCE call.
# A graph output that is a constant weight is refused by mcuq's own rule: TFLite Micro returns the
# stored values, which no input changes, so there is nothing a deploy could verify.


def _reachable_subgraphs(subgraphs: list[Any]) -> list[int]:
    """The main subgraph and, transitively, every subgraph a control-flow op calls (the ones
    TFLite Micro's planner walks); an unreferenced subgraph is never planned or run."""
    seen, todo = {0}, [0]
    while todo:
        for op in subgraphs[todo.pop()].operators or []:
            options = op.builtinOptions
            for key, value in vars(options).items() if options is not None else []:
                if key.endswith("SubgraphIndex") and isinstance(value, int) and value not in seen:
                    seen.add(value)
                    todo.append(value)
    return sorted(seen)


def _verify_dataflow(subgraphs: list[Any], buffers: list[Any], opcodes: list[Any], op_names: dict[int, str]) -> None:
    """Every op input and graph output is written before it is read (indices are already checked)."""
    for s in _reachable_subgraphs(subgraphs):
        _verify_subgraph_dataflow(s, subgraphs[s], buffers, opcodes, op_names)


def _tensor_what(index: int, t: Any) -> str:
    return f"tensor {index} '{_name(t)}'"


def _verify_subgraph_dataflow(s: int, sg: Any, buffers: list[Any], opcodes: list[Any], op_names: dict[int, str]) -> None:
    where = f"subgraph {s}" if s else "the main subgraph"
    tensors = sg.tensors or []
    constant = {i for i, t in enumerate(tensors) if _len(buffers[int(t.buffer)].data)}
    variable = {i for i, t in enumerate(tensors) if t.isVariable}
    graph_inputs = set(_ints(sg.inputs))
    writer: dict[int, int] = {}  # tensor -> the first op that writes it
    ops = sg.operators or []
    for o, op in enumerate(ops):
        for v in _ints(op.outputs):
            writer.setdefault(v, o)
    written = constant | variable | graph_inputs
    for o, op in enumerate(ops):
        code = opcodes[int(op.opcodeIndex)]
        what = f"{where} op {o} ({op_names[max(int(code.builtinCode), int(code.deprecatedBuiltinCode))]})"
        for v in _ints(op.inputs):
            if v < 0 or v in written:
                continue
            later = writer.get(v)
            if later is None:
                _fail(f"{what} reads {_tensor_what(v, tensors[v])} that no op, graph input or constant writes")
            _fail(f"{what} reads {_tensor_what(v, tensors[v])} before op {later} writes it")
        for v in _ints(op.outputs):
            if v in constant:
                _fail(f"{what} writes {_tensor_what(v, tensors[v])}, a constant stored in the model (read-only flash on a board)")
            written.add(v)
    for v in _ints(sg.outputs):
        if v in constant and v not in graph_inputs:
            _fail(f"{where} output {_tensor_what(v, tensors[v])} is a constant weight tensor that no op computes from the input")
        if v not in written:
            _fail(f"{where} output {_tensor_what(v, tensors[v])} is written by no op and is no graph input")
