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
    from mutants import has_hole, mutants, run_pipeline
    seeds = [Path(p).read_bytes() for p in sys.argv[3:]]
    counts = collections.Counter()
    examples = {}
    for kind, raw in mutants(seeds, int(sys.argv[1]), int(sys.argv[2])):
        outcome, detail = run_pipeline(raw)
        counts[outcome] += 1
        counts["holes"] += has_hole(raw)
        if outcome == "accepted" and has_hole(raw):
            counts["false_accept"] += 1
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
    counts = result["counts"]
    assert counts.get("accepted", 0) + counts.get("rejected", 0) + counts.get("traceback", 0) == 600
    assert counts.get("traceback", 0) == 0, result["examples"]
    assert counts["holes"] > 40 and counts.get("false_accept", 0) == 0  # dataflow holes among them, none accepted
    assert result["counts"].get("rejected", 0) > 300  # the mutants really are damaged


# --- dataflow: every tensor an op reads, and every graph output, is written first ---------------

import re  # noqa: E402

from mutants import dataflow_hole, has_hole  # noqa: E402


def _new_tensor(model, like: int, name: str, variable: bool = False) -> int:
    """A copy of tensor ``like`` that nothing writes (an empty buffer), appended to the main subgraph."""
    sg = model.subgraphs[0]
    t = _schema().TensorT()
    src = sg.tensors[like]
    t.shape, t.type, t.name, t.quantization, t.isVariable = src.shape, src.type, name.encode(), src.quantization, variable
    t.buffer = 0  # buffer 0 is the empty sentinel every converter writes
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _read_unwritten(model, variable: bool = False):
    op = _first_op(model, "MAX_POOL_2D")
    op.inputs = np.array([_new_tensor(model, op.inputs[0], "hole", variable)], dtype=np.int32)


def _read_before_write(model):
    ops = model.subgraphs[0].operators
    ops[1], ops[2] = ops[2], ops[1]  # DEPTHWISE_CONV_2D now runs before the MAX_POOL_2D that feeds it


def _output_constant(model):
    weights = _first_op(model, "CONV_2D").inputs[1]
    model.subgraphs[0].outputs = np.array([weights], dtype=np.int32)


def _output_unwritten(model):
    sg = model.subgraphs[0]
    sg.outputs = np.array([_new_tensor(model, sg.outputs[0], "orphan")], dtype=np.int32)


def _writes_constant(model):
    op = _first_op(model, "MAX_POOL_2D")
    weights = _first_op(model, "CONV_2D").inputs[1]
    op.outputs = np.array([weights], dtype=np.int32)


def _call_once(model, hole: bool):
    """A CALL_ONCE in the main subgraph that calls subgraph 1, a copy of the main one (a hole in it
    if ``hole``): the check follows control-flow calls, as TFLite Micro's planner does."""
    import copy

    schema = _schema()
    sub = copy.deepcopy(model.subgraphs[0])
    if hole:
        sub.operators[1], sub.operators[2] = sub.operators[2], sub.operators[1]
    model.subgraphs.append(sub)
    code = schema.OperatorCodeT()
    code.builtinCode, code.deprecatedBuiltinCode = schema.BuiltinOperator.CALL_ONCE, 127  # 127: "see builtinCode"
    code.version = 1
    model.operatorCodes.append(code)
    op = schema.OperatorT()
    op.opcodeIndex = len(model.operatorCodes) - 1
    op.inputs, op.outputs = np.array([], dtype=np.int32), np.array([], dtype=np.int32)
    op.builtinOptionsType = schema.BuiltinOptions.CallOnceOptions
    op.builtinOptions = schema.CallOnceOptionsT()
    op.builtinOptions.initSubgraphIndex = 1
    model.subgraphs[0].operators.insert(0, op)


HOLES = [
    (_read_unwritten, r"the main subgraph op 1 \(MAX_POOL_2D\) reads tensor \d+ 'hole' that no op, graph input or constant writes"),
    (_read_before_write, r"op 1 \(DEPTHWISE_CONV_2D\) reads tensor \d+ '[^']*' before op 2 writes it"),
    (_output_constant, r"output tensor \d+ '[^']*' is a constant weight tensor that no op computes"),
    (_output_unwritten, r"output tensor \d+ 'orphan' is written by no op and is no graph input"),
    (_writes_constant, r"op 1 \(MAX_POOL_2D\) writes tensor \d+ '[^']*', a constant stored in the model"),
    (lambda m: _call_once(m, hole=True), r"subgraph 1 op 1 \(DEPTHWISE_CONV_2D\) reads tensor \d+ '[^']*' before op 2 writes it"),
]


@pytest.mark.parametrize(
    "change, message", HOLES, ids=[h[0].__name__.strip("_") if h[0].__name__ != "<lambda>" else "call_once" for h in HOLES]
)
def test_dataflow_hole_is_refused_naming_op_and_tensor(digits_int8, change, message):
    raw = _edit(digits_int8.tflite, change)
    with pytest.raises(ModelLoadError, match=message) as err:
        parse_model(raw, "hole.tflite")
    assert str(err.value).startswith("hole.tflite: malformed .tflite:") and "\n" not in str(err.value)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: _read_unwritten(m, variable=True),  # a variable tensor: TFLite Micro allocates and zeroes it
        lambda m: setattr(m.subgraphs[0], "outputs", np.array([m.subgraphs[0].inputs[0]], dtype=np.int32)),  # input passed through
        lambda m: _call_once(m, hole=False),  # a control-flow subgraph whose inputs are its graph inputs
        lambda m: m.subgraphs.append(__import__("copy").deepcopy(m.subgraphs[0])) or _read_before_write_in(m.subgraphs[1]),
    ],
    ids=["variable", "passthrough", "call_once", "unreached_subgraph"],
)
def test_dataflow_accepts_what_tflite_micro_runs(digits_int8, change):
    """Never refuse what TFLite Micro runs deterministically: variables, a graph input returned as
    an output, control-flow subgraphs, and a subgraph no op calls (TFLite Micro never plans it)."""
    parse_model(_edit(digits_int8.tflite, change), "fine.tflite")


def _read_before_write_in(sg) -> None:
    sg.operators[1], sg.operators[2] = sg.operators[2], sg.operators[1]


def test_dataflow_mutants_are_holes(digits_int8, sine_int8):
    """The fuzz family really makes holes (by the independent ``has_hole``), and every one of 60 is
    refused in one line; the shape-preserving ones by the dataflow rule itself."""
    import random

    rng = random.Random(7)
    by_dataflow = 0
    for n in range(60):
        raw = dataflow_hole((digits_int8, sine_int8)[n % 2].tflite, rng)
        assert has_hole(raw)
        with pytest.raises(ModelLoadError) as err:
            parse_model(raw, "m.tflite")
        assert "\n" not in str(err.value)
        by_dataflow += bool(re.search(r"reads tensor|output tensor", str(err.value)))
    assert by_dataflow >= 50
    assert not has_hole(digits_int8.tflite) and not has_hole(sine_int8.tflite)


CONTROL_FLOW = textwrap.dedent("""
    import sys
    import tensorflow as tf
    from pathlib import Path
    out = Path(sys.argv[1])

    class ResourceVariable(tf.Module):  # CALL_ONCE + VAR_HANDLE / READ_VARIABLE / ASSIGN_VARIABLE
        def __init__(self):
            self.v = tf.Variable(tf.zeros([1, 4]))

        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            self.v.assign_add(x)
            return self.v * 2.0

    class IfWhile(tf.Module):  # IF and WHILE: subgraphs whose inputs are their graph inputs
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            y = tf.cond(tf.reduce_sum(x) > 0, lambda: x * 2.0, lambda: x - 1.0)
            return tf.while_loop(lambda i, y: i < 3, lambda i, y: (i + 1, y + 1.0), [tf.constant(0), y])[1]

    class PassThrough(tf.Module):  # a graph output that is the graph input
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def __call__(self, x):
            return {"same": tf.identity(x), "twice": x * 2.0}

    for name, module in (("resvar", ResourceVariable()), ("ifwhile", IfWhile()), ("passthrough", PassThrough())):
        conv = tf.lite.TFLiteConverter.from_concrete_functions([module.__call__.get_concrete_function()], module)
        conv.experimental_enable_resource_variables = True
        (out / f"{name}.tflite").write_bytes(conv.convert())
""")


@pytest.mark.slow
def test_dataflow_accepts_converter_control_flow_and_variables(tmp_path):
    """Real converter output that TFLite Micro runs: resource variables (CALL_ONCE, ASSIGN_VARIABLE
    without outputs), IF/WHILE subgraphs, an input returned as an output. All pass the verifier,
    and x86 TFLite Micro runs them (so a refusal would be false)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", CONTROL_FLOW, str(tmp_path)], check=True, timeout=600, env=env, capture_output=True)
    from mcuq.reference.host_tflm import run_tflm

    for name in ("resvar", "ifwhile", "passthrough"):
        info = parse_model((tmp_path / f"{name}.tflite").read_bytes(), f"{name}.tflite")
        sample = [np.ones(t.shape, dtype=np.float32) for t in info.input_tensors]
        run = run_tflm(info.raw, [sample, sample], 1 << 16, len(info.outputs))
        assert all(np.all(np.isfinite(o)) for s in run.outputs for o in s)
