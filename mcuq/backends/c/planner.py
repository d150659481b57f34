"""Static memory plan for the plain-C runtime: one buffer, liveness-based placement.

Like TFLite Micro's greedy planner (largest buffer first, lowest gap that fits among the
buffers alive at the same time), with two differences that make it at least as good:
reshape-like ops alias their input instead of copying (so do data-moving ops whose output
is one contiguous window of their input, placed at that window's offset, and the pieces of a
split along its outermost non-unit axis), and offsets are 4-byte aligned
instead of 16. The lower bound (the largest set of tensors that must be alive at once)
is reported next to it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mcuq.model.info import ModelInfo

ALIGN = 4


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    key: str  # "t<index>" for tensors, "s<op>" for scratch
    size: int
    first: int  # op index at which it is written (-1: model input)
    last: int  # op index of the last read (len(ops): model output)
    tensors: list[int] = field(default_factory=list)
    offset: int = -1

    def overlaps(self, other: Buffer) -> bool:
        return not (self.last < other.first or other.last < self.first)


@dataclass
class MemoryPlan:
    buffers: list[Buffer]
    arena_bytes: int
    lower_bound: int
    tensor_offset: dict[int, int]
    scratch_offset: dict[int, int]


JOINS = ("CONCATENATION", "PACK")  # PACK: a concatenation along a new axis


def concat_members(info: ModelInfo) -> dict[int, tuple[int, int]]:
    """Inputs of a CONCATENATION (or PACK) along its outermost non-unit axis (each input is then one
    contiguous piece of the output) -> (output tensor, byte offset in it). Such an input can be
    written by its producer straight into the output, and the concatenation copies nothing.
    Left out: model inputs and outputs, constants, tensors repeated or in two concatenations,
    and concatenation outputs (no nesting)."""
    members: dict[int, tuple[int, int]] = {}
    outputs = {op.outputs[0] for op in info.ops if op.name in JOINS}
    for op in info.ops:
        if op.name not in JOINS:
            continue
        out = info.tensors[op.outputs[0]]
        axis = op.options.get("axis", -1) % max(1, len(out.shape))
        if int(np.prod(out.shape[:axis])) != 1 or len(set(op.inputs)) != len(op.inputs):
            continue
        offset = 0
        for i in op.inputs:
            t = info.tensors[i]
            free = not t.is_constant and i not in info.inputs and i not in info.outputs and i not in members and i not in outputs
            if free:
                members[i] = (op.outputs[0], offset)
            offset += int(np.prod(t.shape)) * np.dtype(t.dtype).itemsize
    return members


Aliases = dict[int, tuple[int, dict[int, int]]]  # op index -> (its input, {output: byte offset in it})


def _aliases(info: ModelInfo, alias_ops: set[str], windows: Aliases) -> Aliases:
    """Every alias candidate as (input, {output: offset}): reshape-like ops at offset 0, then
    the windows and pieces the lowering found."""
    found: Aliases = {op.index: (op.inputs[0], {op.outputs[0]: 0}) for op in info.ops if op.name in alias_ops and op.inputs}
    found.update(windows)
    return found


def _lifetimes(
    info: ModelInfo, aliases: Aliases, members: dict[int, tuple[int, int]]
) -> tuple[list[Buffer], dict[int, Buffer], dict[int, int]]:
    # variable tensors (an LSTM's state) live across invokes in their own static arrays, not here
    activations = {
        i
        for op in info.ops
        for i in (*op.inputs, *op.outputs)
        if i >= 0 and not info.tensors[i].is_constant and not info.tensors[i].is_variable
    }
    activations |= set(info.inputs) | set(info.outputs)
    end = len(info.ops)
    first = {i: -1 for i in info.inputs}
    last: dict[int, int] = {}
    for op in info.ops:
        for i in op.outputs:
            first.setdefault(i, op.index)
        for i in op.inputs:
            if i in activations:
                last[i] = op.index
    for i in info.outputs:
        last[i] = end
    owner: dict[int, Buffer] = {}
    delta: dict[int, int] = {}  # tensor -> bytes past its buffer's start
    buffers: list[Buffer] = []

    def own(i: int, start: int) -> None:
        nbytes = int(np.prod(info.tensors[i].shape)) * np.dtype(info.tensors[i].dtype).itemsize
        owner[i] = Buffer(f"t{i}", _align(nbytes), start, last.get(i, start), [i])
        buffers.append(owner[i])

    for i in info.inputs:  # owned before the first op, so a RESHAPE of a model input can alias it
        own(i, first[i])
    for op in info.ops:
        src, outs = aliases.get(op.index, (-1, {}))
        if src in owner and last.get(src) == op.index and src not in info.outputs:
            buf = owner[src]
            for dst, offset in outs.items():
                buf.last = max(buf.last, last.get(dst, op.index))
                buf.tensors.append(dst)
                owner[dst] = buf
                delta[dst] = delta.get(src, 0) + offset
            continue
        for i in (*op.inputs, *op.outputs):
            if i in members and i not in owner:
                whole, offset = members[i]
                if whole not in owner:
                    size = _align(int(np.prod(info.tensors[whole].shape)) * np.dtype(info.tensors[whole].dtype).itemsize)
                    owner[whole] = Buffer(f"t{whole}", size, first[i], last.get(whole, end), [whole])
                    buffers.append(owner[whole])
                buf = owner[whole]
                buf.first = min(buf.first, first[i])
                buf.tensors.append(i)
                owner[i] = buf
                delta[i] = offset
            elif i in activations and i not in owner:
                own(i, first.get(i, op.index))
    return buffers, owner, delta


PLACEMENT_ORDERS: tuple[Callable[[Buffer], tuple[int, ...]], ...] = (
    lambda b: (-b.size, b.first),
    lambda b: (b.first, -b.size),
    lambda b: (-(b.last - b.first), -b.size, b.first),
    lambda b: (-b.size * (b.last - b.first + 1), b.first),
)


def _place(buffers: list[Buffer], order: Callable[[Buffer], tuple[int, ...]] | None) -> dict[str, int]:
    """Greedy placement in `order` (None: as listed): each buffer at the lowest gap free during its lifetime."""
    placed: list[tuple[Buffer, int]] = []
    offsets: dict[str, int] = {}
    for buf in sorted(buffers, key=order) if order else buffers:
        offset = 0
        for other, at in sorted(((p, o) for p, o in placed if p.overlaps(buf)), key=lambda po: po[1]):
            if offset + buf.size <= at:
                break
            offset = max(offset, at + other.size)
        offsets[buf.key] = offset
        placed.append((buf, offset))
    return offsets


def _end(buffers: list[Buffer], offsets: dict[str, int]) -> int:
    return max((offsets[b.key] + b.size for b in buffers), default=0)


SEARCH_BUDGET = 2_000_000  # buffer pairs compared by the shuffled placements (about a second)


def _best_placement(buffers: list[Buffer], lower: int) -> dict[str, int]:
    """The fixed orders, then shuffled orders (seeded: plans are reproducible) until the arena
    reaches the liveness lower bound or the budget is spent. Greedy placement is not optimal
    (dynamic storage allocation is NP-hard); on branchy graphs another order often closes the gap."""
    import random

    best = _place(buffers, PLACEMENT_ORDERS[0])
    candidates: list[list[Buffer]] = [sorted(buffers, key=order) for order in PLACEMENT_ORDERS[1:]]
    rng = random.Random(0)
    tries = SEARCH_BUDGET // max(1, len(buffers) ** 2)
    for k in range(len(candidates) + tries):
        if _end(buffers, best) <= lower:
            break
        if k < len(candidates):
            sequence = candidates[k]
        else:
            sequence = list(buffers)
            rng.shuffle(sequence)
        offsets = _place(sequence, None)
        if _end(buffers, offsets) < _end(buffers, best):
            best = offsets
    return best


def plan_memory(
    info: ModelInfo, scratch: dict[int, int], alias_ops: set[str] | frozenset[str] = frozenset(), windows: Aliases | None = None
) -> MemoryPlan:
    """`windows`: op index -> (input tensor, {output tensor: byte offset inside that input}) for
    the ops whose outputs are contiguous windows of their input (alias candidates: a slice of
    leading rows, the pieces of a split along its outermost non-unit axis).
    Planned with and without concatenation inputs written in place (concat_members), and with
    and without the windows, and the smallest arena kept (in place and aliased on a tie: no
    copies); reserving a concatenation's whole output from its first input on can cost more
    than the copy saves."""
    # Windows and pieces are planned both ways too: keeping a whole input alive for a small
    # window (or for the last of many pieces) can cost more than copying it.
    alias_sets = [_aliases(info, set(alias_ops), windows or {})] + ([_aliases(info, set(alias_ops), {})] if windows else [])
    plans = [_plan(info, scratch, aliases, members) for aliases in alias_sets for members in (concat_members(info), {})]
    return min(plans, key=lambda plan: plan.arena_bytes)


def _plan(info: ModelInfo, scratch: dict[int, int], aliases: Aliases, members: dict[int, tuple[int, int]]) -> MemoryPlan:
    buffers, owner, delta = _lifetimes(info, aliases, members)
    for op_index, nbytes in scratch.items():
        buffers.append(Buffer(f"s{op_index}", _align(nbytes), op_index, op_index))
    # TFLite Micro's order (largest first) and a few others; the smallest arena wins. Graphs
    # with branches and many small tensors (attention, resize chains) leave gaps in one order
    # that another fills.
    steps = range(-1, len(info.ops) + 1)
    lower = max((sum(b.size for b in buffers if b.first <= t <= b.last) for t in steps), default=0)
    best = _best_placement(buffers, lower)
    for buf in buffers:
        buf.offset = (best or {}).get(buf.key, 0)
    arena = max((b.offset + b.size for b in buffers), default=0)
    return MemoryPlan(
        buffers,
        arena,
        lower,
        {t: b.offset + delta.get(t, 0) for t, b in owner.items()},
        {int(b.key[1:]): b.offset for b in buffers if b.key.startswith("s")},
    )
