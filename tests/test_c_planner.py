"""The plain-C memory planner on buffer lifetimes alone (no model conversion)."""

from __future__ import annotations

from mcuq.backends.c.planner import PLACEMENT_ORDERS, Buffer, _best_placement, _end, _place

# Lifetimes (size, first op, last op) of the 'families' test model (tests/test_c_ops_extra_deploy.py):
# a resize chain, then SUB/MAXIMUM/MINIMUM branches joined by a concatenation.
FAMILIES = [
    (192, -1, 0), (384, 0, 1), (384, 1, 2), (296, 2, 3), (296, 3, 4), (296, 4, 5), (296, 5, 6), (1176, 6, 7),
    (488, 7, 9), (408, 8, 11), (408, 9, 12), (408, 10, 12), (408, 11, 13), (408, 12, 13), (812, 13, 14), (12, 14, 15), (4, 15, 16),
]  # fmt: skip


def _buffers() -> list[Buffer]:
    return [Buffer(f"t{k}", size, first, last) for k, (size, first, last) in enumerate(FAMILIES)]


def _valid(buffers: list[Buffer], offsets: dict[str, int]) -> bool:
    return all(
        offsets[a.key] + a.size <= offsets[b.key] or offsets[b.key] + b.size <= offsets[a.key]
        for a in buffers
        for b in buffers
        if a is not b and a.overlaps(b)
    )


def test_search_reaches_the_lower_bound_where_largest_first_does_not():
    buffers = _buffers()
    lower = max(sum(b.size for b in buffers if b.first <= t <= b.last) for t in range(-1, 17))
    largest_first = _place(buffers, PLACEMENT_ORDERS[0])
    assert _end(buffers, largest_first) > lower  # TFLite Micro's order leaves a gap here
    best = _best_placement(buffers, lower)
    assert _valid(buffers, best) and _end(buffers, best) == lower == 1664
