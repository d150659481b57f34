"""The structural .tflite verifier: targeted defects named precisely, and a seeded fuzz run of
hundreds of mutants through every in-process stage with no traceback, crash or hang."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from mutants import _pack, _schema

from conftest import ROOT
from mcuq.common.errors import ModelLoadError
from mcuq.model.info import parse_model


def _edit(raw: bytes, change) -> bytes:
    model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
    change(model)
    return _pack(model)


def _first_op(model, name: str):
    names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
    for op in model.subgraphs[0].operators:
        if names[model.operatorCodes[op.opcodeIndex].builtinCode] == name:
            return op
    raise AssertionError(name)


def _set_input(model, value):
    op = _first_op(model, "CONV_2D")
    op.inputs = np.array([value, *op.inputs[1:]], dtype=np.int32)


def _grow_weights(model):
    op = _first_op(model, "CONV_2D")
    t = model.subgraphs[0].tensors[op.inputs[1]]
    t.shape = np.array([t.shape[0] * 100, *t.shape[1:]], dtype=np.int32)
    t.shapeSignature = None


def _short_scales(model):
    op = _first_op(model, "CONV_2D")
    q = model.subgraphs[0].tensors[op.inputs[1]].quantization
    q.scale, q.zeroPoint = q.scale[:-1], q.zeroPoint[:-1]


def _wrong_options(model):
    op = _first_op(model, "CONV_2D")
    op.builtinOptionsType = _schema().BuiltinOptions.Pool2DOptions
    op.builtinOptions = _schema().Pool2DOptionsT()


def _negative_dim(model):
    model.subgraphs[0].tensors[model.subgraphs[0].outputs[0]].shape = np.array([1, -3], dtype=np.int32)


def _graph_output(model):
    model.subgraphs[0].outputs = np.array([999], dtype=np.int32)


def _stride_zero(model):
    _first_op(model, "CONV_2D").builtinOptions.strideW = 0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda m: _set_input(m, 1000000), r"op 0 \(CONV_2D\) input tensor index is 1000000, out of range"),
        (_grow_weights, r"holds 72 bytes of data but its shape \[800, 3, 3, 1\]"),
        (_short_scales, r"7 quantization scales|7 per-channel scales for 8 channels"),
        (_wrong_options, r"carries Pool2DOptions, expected Conv2DOptions"),
        (_negative_dim, r"negative dimension"),
        (_graph_output, r"the main subgraph output tensor index is 999"),
        (_stride_zero, r"strideW = 0"),
        (lambda m: setattr(m, "version", 2), r"schema version 2"),
    ],
)
def test_verifier_names_the_defect(digits_int8, change, message):
    raw = _edit(digits_int8.tflite, change)
    with pytest.raises(ModelLoadError, match=message) as err:
        parse_model(raw, "damaged.tflite")
    assert str(err.value).startswith("damaged.tflite: malformed .tflite:") and "\n" not in str(err.value)


def test_real_models_pass(digits_int8, sine_int8):
    for q in (digits_int8, sine_int8):
        parse_model(q.tflite)
        if q.float_tflite is not None:
            parse_model(q.float_tflite)


FUZZ = textwrap.dedent("""
    import collections, json, sys
    from pathlib import Path
    from mutants import mutants, run_pipeline
    seeds = [Path(p).read_bytes() for p in sys.argv[3:]]
    counts = collections.Counter()
    examples = {}
    for kind, raw in mutants(seeds, int(sys.argv[1]), int(sys.argv[2])):
        outcome, detail = run_pipeline(raw)
        counts[outcome] += 1
        if outcome == "traceback":
            examples.setdefault(kind, detail)
        if outcome == "rejected":
            assert "\\n" not in detail, detail
    print(json.dumps({"counts": counts, "examples": examples}))
""")


def test_fuzz_600_mutants_no_traceback_crash_or_hang(digits_tflite, sine_tflite):
    """One child runs every mutant (a crash would show as its exit status, a hang as the timeout)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    proc = subprocess.run(
        [sys.executable, "-c", FUZZ, "600", "20261129", str(digits_tflite), str(sine_tflite)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert sum(result["counts"].values()) == 600
    assert result["counts"].get("traceback", 0) == 0, result["examples"]
    assert result["counts"].get("rejected", 0) > 300  # the mutants really are damaged
