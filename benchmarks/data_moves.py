"""Plain-C runtime, ops that only move data: which ones copy, alias or are written in place, and
what that saves in RAM (issue #21, item 3).

Prints two markdown tables:
1. per data-moving op of the test models (tests/test_c_moves.py, converted here): what the
   generated code does (`alias`: output placed inside the input, no code; `in place`: the
   producers write straight into the output, no code; `copy`: one kernel call);
2. per model: the plain-C activation buffer, the same model planned with no data-move aliases
   (what the copies would cost), the liveness lower bound and the x86 TFLite Micro minimum arena.

Run: python benchmarks/data_moves.py   (about 10 s: three TensorFlow conversions)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MOVES = {"SLICE", "SPLIT", "SPLIT_V", "UNPACK", "PACK", "REVERSE_V2", "CONCATENATION", "STRIDED_SLICE", "TRANSPOSE", "RESHAPE"}


def models() -> dict[str, object]:
    sys.path.insert(0, str(ROOT / "tests"))
    import tensorflow as tf
    from test_c_int16 import convert_fn_16x8
    from test_c_moves import PIECES_SHAPES, _moves, _pieces
    from test_c_ops_extra import convert_fn

    return {
        "pieces (int8)": convert_fn(_pieces, PIECES_SHAPES, loc=0.5),
        "moves (int8)": convert_fn(_moves, [(1, 5, 6, 3), (1, 5, 6, 3)], loc=1.0),
        "moves (16x8)": convert_fn_16x8(_moves, [(1, 5, 6, 3), (1, 5, 6, 3)]),
        "unstack + split rows (int8)": convert_fn(
            lambda x: tuple(p * 2.0 for p in tf.unstack(tf.nn.relu(x), axis=1)) + tuple(tf.split(x * 3.0, 2, axis=1)), [(1, 4, 7)]
        ),
    }


def _kind(program, op) -> str:  # type: ignore[no-untyped-def]
    call = next(c for c in program.calls if c.op_index == op.index)
    if call.function != "mcuq_copy" or dict(call.args)["n"] != 0:
        return f"copy (`{call.function}`)"
    plan = program.plan
    inside = all(plan.tensor_offset[i] >= plan.tensor_offset[op.outputs[0]] for i in op.inputs if i in plan.tensor_offset)
    return "in place" if op.name in ("PACK", "CONCATENATION") and inside else "alias"


def main() -> None:
    import numpy as np

    from mcuq.backends.c.planner import plan_memory
    from mcuq.backends.c.program import RESHAPE_OPS, compile_model, scratch_bytes
    from mcuq.reference.host_tflm import measure_min_arena

    built = models()
    print("| model | op | output shape | generated code |\n|---|---|---|---|")
    ram = []
    for name, info in built.items():
        program = compile_model(info)  # type: ignore[arg-type]
        for op in info.ops:  # type: ignore[attr-defined]
            if op.name in MOVES:
                shape = "x".join(str(d) for d in info.tensors[op.outputs[0]].shape)  # type: ignore[attr-defined]
                print(f"| {name} | {op.name} | {shape} | {_kind(program, op)} |")
        scratch = {op.index: scratch_bytes(info, op) for op in info.ops if scratch_bytes(info, op)}  # type: ignore[arg-type,attr-defined]
        copies = plan_memory(info, scratch, alias_ops=RESHAPE_OPS)  # type: ignore[arg-type]
        sample = [np.zeros(t.shape, t.dtype) for t in info.input_tensors]  # type: ignore[attr-defined]
        plan = program.plan
        assert plan is not None
        tflm = measure_min_arena(info.raw, sample)  # type: ignore[attr-defined]
        ram.append(f"| {name} | {plan.arena_bytes:,} | {copies.arena_bytes:,} | {plan.lower_bound:,} | {tflm:,} |")
    print("\n| model | plain-C buffer (B) | with the moves copied (B) | liveness lower bound (B) | x86 TFLM min arena (B) |")
    print("|---|---|---|---|---|")
    print("\n".join(ram))


if __name__ == "__main__":
    main()
