"""What every op lowering shares: the program being built, its constants, operands and the
per-channel requantization TFLite Micro computes in Prepare.

Constant arrays are named here, once for every op: a lowering gives a short tag (``w5``,
``b5``, ``k5_0``, ...) and the array is called after the Keras layer of the op being lowered
and the tag's role (``conv1_weights``, ``probs_bias``), so a person reading mcuq_model.c sees
which layer a table belongs to. A new op's lowering gets readable names without doing anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from mcuq.backends.c.ir import BufferRef, ConstArray, CProgram, KernelCall, Value
from mcuq.common.errors import UnsupportedOpError
from mcuq.model.info import ModelInfo, OpInfo, TensorInfo
from mcuq.model.quant_math import (
    activation_range,
    quantize_multiplier,
)
from mcuq.project.escape import c_identifier


def unsupported(info: ModelInfo, op: OpInfo, why: str) -> UnsupportedOpError:
    return UnsupportedOpError(f"plain-C runtime: op {op.index} {op.name} (Keras layer '{info.layer_of_op(op)}') {why}")


def quant_of(t: TensorInfo) -> tuple[float, int]:
    assert t.quant is not None
    return t.quant.scale[0], t.quant.zero_point[0]


def dims4(shape: tuple[int, ...]) -> list[int]:
    dims = list(shape) if shape else [1]
    return [1] * (4 - len(dims)) + dims


# What a lowering's tag letters mean; a tag not listed keeps its letters as the role.
ROLES = {
    "w": "weights",
    "b": "bias",
    "m": "multipliers",
    "s": "shifts",
    "k": "operand",
    "da": "a_dims",
    "db": "b_dims",
    "di": "in_dims",
    "do": "out_dims",
    "ax": "axis_sizes",
    "pb": "pad_before",
    "g": "gather_table",
    "ck": "piece_bytes",
    "ry": "y_table",
    "rx": "x_table",
    "lut": "table",
}
LAYER_CHARS = 40  # of the layer name in an array name: long Keras scopes stay readable


def op_label(info: ModelInfo, op: OpInfo) -> str:
    """The name a person knows an op by: the model output it writes (the Keras output or
    signature name, e.g. ``probs``, never ``StatefulPartitionedCall_1:0``), else its Keras layer."""
    for i in op.outputs:
        if i in info.outputs and len(info.output_names) == len(info.outputs):
            return info.output_names[info.outputs.index(i)]
    for i in (*op.outputs, *op.inputs):
        if i >= 0 and "/" in info.tensors[i].name:
            return info.tensors[i].layer
    return info.tensors[op.outputs[0]].layer if op.outputs else op.name


def role_of(tag: str, op: OpInfo | None) -> str:
    """``w5`` (op 5) -> ``weights``, ``k5_1`` -> ``operand_1``; other tags stay as they are."""
    found = re.fullmatch(r"([A-Za-z]+)(\d+)(_\w+)?", tag)
    if found is None or op is None or int(found.group(2)) != op.index:
        return tag
    return ROLES.get(found.group(1), found.group(1)) + (found.group(3) or "")


class Emitter:
    def __init__(self, info: ModelInfo, simd: bool) -> None:
        self.info = info
        self.program = CProgram(info, simd=simd)
        self.lowering: OpInfo | None = None  # the op whose constants are being allocated
        # File-scope names of mcuq_model.c a derived array name must not take.
        self.taken: set[str] = {"ARENA"}
        self.shared: dict[str, str] = {}  # tag -> C name of a table every layer of a kind reads

    def lower(self, op: OpInfo, lowering: Callable[[Emitter, OpInfo], KernelCall]) -> KernelCall:
        """One op's kernel call; the constants it allocates are named after its layer."""
        self.lowering = op
        try:
            return lowering(self, op)
        finally:
            self.lowering = None

    def array_name(self, tag: str) -> str:
        """A C identifier for a constant array, derived from the Keras layer (user text, so only
        through escape.c_identifier: letters, digits and single underscores, unique in the file).
        A leading ``mcuq``/``op<N>_`` is kept off: those are the runtime's own names."""
        op = self.lowering
        role = role_of(tag, op)
        if op is None:
            return c_identifier(role, self.taken, lower=True, fallback="k")
        layer = str(c_identifier(op_label(self.info, op), fallback="layer"))[:LAYER_CHARS].strip("_")
        if re.match(r"(?i)mcuq|op\d", layer):
            layer = f"layer_{layer}"
        return c_identifier(f"{layer}_{role}", self.taken, fallback="layer")

    def const(self, tag: str, ctype: str, values: np.ndarray, flash: bool = True, aligned: bool = False) -> str:
        """Allocate a constant array; returns its C name (derived from ``tag`` and the layer)."""
        name = self.array_name(tag)
        self.program.constants.append(ConstArray(name, ctype, np.asarray(values), flash, aligned))
        return name

    def shared_const(self, tag: str, ctype: str, values: np.ndarray) -> str:
        """A table that depends on no layer (the 16x8 softmax LUTs): emitted once, named by its
        tag alone, whichever layer asks first."""
        if tag not in self.shared:
            op, self.lowering = self.lowering, None
            try:
                self.shared[tag] = self.const(tag, ctype, values)
            finally:
                self.lowering = op
        return self.shared[tag]

    def t(self, index: int) -> TensorInfo:
        return self.info.tensors[index]

    def weight_data(self, op: OpInfo, pos: int) -> np.ndarray:
        w = self.t(op.inputs[pos])
        if w.data is None:
            raise unsupported(self.info, op, "has non-constant weights")
        return w.data.astype(np.int8)

    def weights(self, op: OpInfo, pos: int) -> str:
        return self.const(f"w{op.index}", "int8_t", self.weight_data(op, pos).reshape(-1))

    def bias_data(self, op: OpInfo, pos: int) -> np.ndarray | None:
        if len(op.inputs) <= pos or op.inputs[pos] < 0:
            return None
        b = self.t(op.inputs[pos])
        if b.data is None:
            raise unsupported(self.info, op, "has a non-constant bias")
        return b.data.astype(np.int32).reshape(-1)

    def buf(self, index: int) -> BufferRef:
        return BufferRef("tensor", index)

    def per_channel_params(self, op: OpInfo, inp: TensorInfo, w: TensorInfo, out: TensorInfo, channels: int) -> tuple[str, str]:
        in_scale, _ = quant_of(inp)
        out_scale, _ = quant_of(out)
        assert w.quant is not None
        scales = w.quant.scale if len(w.quant.scale) > 1 else w.quant.scale * channels
        mults, shifts = [], []
        for s in scales[:channels]:
            real = float(np.float64(np.float32(in_scale)) * np.float64(np.float32(s)) / np.float64(np.float32(out_scale)))
            m, sh = quantize_multiplier(real)
            mults.append(m)
            shifts.append(sh)
        return (
            self.const(f"m{op.index}", "int32_t", np.array(mults, np.int32)),
            self.const(f"s{op.index}", "int8_t", np.array(shifts, np.int8)),
        )

    def bias(self, op: OpInfo, pos: int) -> str:
        data = self.bias_data(op, pos)
        return "0" if data is None else self.const(f"b{op.index}", "int32_t", data)


def out_range(op: OpInfo, inp: TensorInfo, out: TensorInfo) -> list[tuple[str, Value]]:
    """Zero points and activation range as every weighted kernel takes them."""
    _, izp = quant_of(inp)
    os_, ozp = quant_of(out)
    amin, amax = activation_range(op.options.get("fusedActivationFunction", 0), os_, ozp)
    return [("in_zp", izp), ("out_zp", ozp), ("act_min", amin), ("act_max", amax)]


def operand(e: Emitter, op: OpInfo, index: int, slot: int) -> Value:
    """A kernel input: a constant as an array of its own C type, or its place in the buffer
    (cast to ``int16_t*`` for the 16-bit tensors of a 16x8 model)."""
    t = e.t(index)
    wide = t.dtype == "int16"
    if t.is_constant:
        assert t.data is not None
        values = np.asarray(t.data).reshape(-1) if wide else t.data.astype(np.int8).reshape(-1)
        return e.const(f"k{op.index}_{slot}", f"{t.dtype}_t", values, flash=False)
    return BufferRef("tensor", index, f"{t.dtype}_t*") if wide else e.buf(index)


def dims_const(e: Emitter, name: str, shape: tuple[int, ...]) -> str:
    return e.const(name, "mcuq_dim", np.array(dims4(shape), np.int32), flash=False)


def binary_operands(e: Emitter, op: OpInfo) -> list[tuple[str, Value]]:
    a, b, out = e.t(op.inputs[0]), e.t(op.inputs[1]), e.t(op.outputs[0])
    return [
        ("a", operand(e, op, a.index, 0)),
        ("a_dims", dims_const(e, f"da{op.index}", a.shape)),
        ("b", operand(e, op, b.index, 1)),
        ("b_dims", dims_const(e, f"db{op.index}", b.shape)),
        ("out", e.buf(out.index)),
        ("out_dims", dims_const(e, f"do{op.index}", out.shape)),
    ]
