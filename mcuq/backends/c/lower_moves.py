"""Plain-C lowering of the ops that only move data beyond ops_extra's gathers: SLICE and
REVERSE_V2 (one `mcuq_gather`, or an alias of the input), SPLIT, SPLIT_V and UNPACK (one
`mcuq_split`, or pieces placed inside the input); PACK runs as a concatenation
(lower_elementwise.lower_concat). int8 and int16 alike: bytes move, no arithmetic (TFLite Micro's
kernels copy elements and never requantize).

Why: every index comes from TFLite Micro's own formulas (slice.h: begin + index, size -1 up to
the end; reverse.h: size - 1 - index on the given axes, which must be consecutive) evaluated
here into per-axis offset tables, so the C side does no index arithmetic that could differ.
The planner is told which outputs are contiguous windows of the input (``move_aliases``): a
slice of leading rows, a reverse of unit axes, the pieces of a split along its outermost
non-unit axis; it places them inside the input and the op emits nothing.
"""

from __future__ import annotations

import numpy as np

from mcuq.backends.c.emitter import Emitter, quant_of, unsupported
from mcuq.backends.c.ir import KernelCall, PointerList
from mcuq.backends.c.ops_extra import LAYOUTS, Layout, LayoutFn, alias_offsets, byte_layout, const_ints, gather, rank4, row_major_strides
from mcuq.backends.c.planner import Aliases
from mcuq.model.info import OpInfo


def _slice_layout(e: Emitter, op: OpInfo) -> Layout:
    """reference_ops::Slice: out[i] = in[begin + i] per axis; size -1 takes the rest."""
    inp = e.t(op.inputs[0])
    in_dims = rank4(e, op, inp)
    lead = 4 - len(inp.shape)
    begin, size = const_ints(e, op, 1, "begin"), const_ints(e, op, 2, "size")
    strides = row_major_strides(in_dims)
    tables = [[0]] * lead
    for axis in range(len(inp.shape)):
        b, n = begin[axis], size[axis]
        n = in_dims[lead + axis] - b if n == -1 else n
        if b < 0 or n < 0 or b + n > in_dims[lead + axis]:
            raise unsupported(
                e.info, op, f"slices [{b}, {b + n}) of an axis of {in_dims[lead + axis]}; TFLite Micro would read outside the tensor"
            )
        tables.append([(b + i) * strides[lead + axis] for i in range(n)])
    return [len(t) for t in tables], tables


def _reverse_layout(e: Emitter, op: OpInfo) -> Layout:
    """reference_ops::Reverse on consecutive axes (reverse.cc refuses others at Eval)."""
    inp = e.t(op.inputs[0])
    in_dims = rank4(e, op, inp)
    rank = len(inp.shape)
    axes = sorted({a % rank for a in const_ints(e, op, 1, "axis list")})
    if axes and axes != list(range(axes[0], axes[-1] + 1)):
        raise unsupported(e.info, op, f"reverses axes {axes}, not consecutive ones; TFLite Micro refuses them too")
    lead = 4 - rank
    strides = row_major_strides(in_dims)
    tables = []
    for d in range(4):
        flip = d - lead in axes
        tables.append([((in_dims[d] - 1 - i) if flip else i) * strides[d] for i in range(in_dims[d])])
    return in_dims, tables


MOVE_LAYOUTS: dict[str, LayoutFn] = {**LAYOUTS, "SLICE": _slice_layout, "REVERSE_V2": _reverse_layout}


def lower_gather_move(e: Emitter, op: OpInfo) -> KernelCall:
    """SLICE and REVERSE_V2 (int8 or int16): one gather, or nothing when aliased."""
    return gather(e, op, byte_layout(e, op, MOVE_LAYOUTS))


def _split_parts(e: Emitter, op: OpInfo) -> tuple[int, int, list[int]]:
    """(input tensor, outer rows, bytes of each piece per row) of SPLIT, SPLIT_V or UNPACK."""
    src = {"SPLIT": 1, "SPLIT_V": 0, "UNPACK": 0}[op.name]
    inp = e.t(op.inputs[src])
    if op.name == "UNPACK":
        axis = int(op.options.get("axis", 0))
    else:
        axis = const_ints(e, op, 0 if op.name == "SPLIT" else 2, "axis")[0]
    axis %= len(inp.shape)
    outer = int(np.prod(inp.shape[:axis]))
    chunks = [int(np.prod(e.t(i).shape)) // outer * np.dtype(inp.dtype).itemsize for i in op.outputs]
    if sum(chunks) * outer != inp.nbytes:
        raise unsupported(e.info, op, f"has pieces of {sum(chunks) * outer} bytes in all from an input of {inp.nbytes}")
    return inp.index, outer, chunks


def split_pieces(e: Emitter, op: OpInfo) -> tuple[int, dict[int, int]] | None:
    """(input, {piece: byte offset in it}) when every piece is one contiguous run of the input
    (one outer row: a split along the outermost non-unit axis), else None."""
    src, outer, chunks = _split_parts(e, op)
    if outer != 1:
        return None
    starts = np.cumsum([0, *chunks])[:-1]
    return src, {i: int(s) for i, s in zip(op.outputs, starts)}


def lower_split(e: Emitter, op: OpInfo) -> KernelCall:
    """SPLIT, SPLIT_V and UNPACK: the inverse of CONCATENATION, bytes copied (TFLite Micro copies
    elements; the outputs' quantization must be the input's), or nothing when the planner
    placed every piece inside the input."""
    src, outer, chunks = _split_parts(e, op)
    inp, outs = e.t(src), [e.t(i) for i in op.outputs]
    if any(quant_of(t) != quant_of(inp) or t.dtype != inp.dtype for t in outs):
        raise unsupported(e.info, op, "has outputs quantized unlike its input; TFLite Micro requires equal quantization")
    plan, pieces = e.program.plan, split_pieces(e, op)
    if plan is not None and pieces is not None and all(plan.tensor_offset[i] == plan.tensor_offset[src] + d for i, d in pieces[1].items()):
        return KernelCall(op.index, "mcuq_copy", [("in", e.buf(src)), ("out", e.buf(src)), ("n", 0)])
    pointers = PointerList(f"outs{op.index}", tuple(e.buf(t.index) for t in outs), writable=True)
    return KernelCall(
        op.index,
        "mcuq_split",
        [
            ("in", e.buf(src)),
            ("outs", pointers),
            ("chunks", e.const(f"ck{op.index}", "mcuq_dim", np.array(chunks, np.int32))),
            ("count", len(outs)),
            ("outer", outer),
        ],
    )


SPLITS = ("SPLIT", "SPLIT_V", "UNPACK")


def move_aliases(e: Emitter) -> Aliases:
    """Every data move whose outputs can live inside its input, for the planner: the gathers
    that are one window (ops_extra.alias_offsets) and the contiguous split pieces."""
    found: Aliases = {k: (e.info.ops[k].inputs[0], {e.info.ops[k].outputs[0]: d}) for k, d in alias_offsets(e, MOVE_LAYOUTS).items()}
    for op in e.info.ops:
        pieces = split_pieces(e, op) if op.name in SPLITS else None
        if pieces is not None and len(set(op.outputs)) == len(op.outputs):
            found[op.index] = pieces
    return found
