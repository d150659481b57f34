"""Robustness suite: the bad-input matrix over all six commands, and kill -9 during deploy."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bad_input_runner import run_case, tree_digest
from bad_inputs import CASES, Inputs

from conftest import ROOT, SINE
from mcuq.deploy import DeployRequest, deploy

assert len(CASES) >= 60 and {c.command for c in CASES} == {"quantize", "inspect", "deploy", "validate", "boards", "init"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, digits_int8, sine_tflite, digits_tflite) -> Inputs:
    base = tmp_path_factory.mktemp("inputs")
    float_model = base / "float.tflite"
    float_model.write_bytes(digits_int8.float_tflite)
    project = base / "project"
    deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(project)))
    return Inputs(digits_tflite, sine_tflite, float_model, project)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_clean_line(case, inputs, tmp_path):
    outcome = run_case(case, tmp_path / "work", inputs)
    assert not outcome.traceback and not outcome.crash and not outcome.hang, outcome.stderr
    assert outcome.clean, f"{outcome.why}\n{outcome.stderr}"


KILL_DEPLOY = """
import sys
from mcuq.deploy import DeployRequest, deploy
print("go", flush=True)
deploy(DeployRequest(model=sys.argv[1], board="esp32", out=sys.argv[2], data=sys.argv[3], force=True))
"""


def _complete(project: Path) -> bool:
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    import hashlib

    return all(hashlib.sha256((project / rel).read_bytes()).hexdigest() == digest for rel, digest in manifest["files"].items())


@pytest.mark.parametrize("delay", [0.3, 1.0, 2.0, 3.0])
def test_kill_9_during_deploy_leaves_complete_or_absent_and_rerun_works(tmp_path, sine_tflite, delay):
    """kill -9 at several moments of a real deploy (converter/TFLM children running, project being
    written, validation running): the folder is absent or a complete project, no child survives,
    nothing is left in the temp folder, and a plain rerun works."""
    out = tmp_path / "proj"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_DEPLOY, str(sine_tflite), str(out), str(SINE / "val.npz")],
        env=env,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"go\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)
    children = subprocess.run(
        ["pgrep", "-f", f"mcuq.common.(isolation|forkserver) {proc.pid} "], capture_output=True, text=True, check=False
    )
    assert not children.stdout.strip(), f"a child outlived the killed deploy: {children.stdout}"
    finished = False
    if out.exists():
        assert _complete(out), "a half-written project"
        # validated before the kill: a finished project, which rightly needs --force to be replaced
        finished = not (out / ".mcuq-unvalidated").exists()
    before_tmp = list(tmp_path.iterdir())
    result = deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out), data=str(SINE / "val.npz"), force=finished))
    assert result.ok and _complete(out)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], f"staging left behind: {before_tmp}"
    assert tree_digest(out)


# --- dataflow holes: refused by inspect and deploy; golden vectors reproducible ------------------


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "mcuq", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=600, check=False)


def _orphan(sg, like: int) -> int:
    """Append a tensor shaped like ``like`` that nothing writes (buffer 0 is the empty one)."""
    from mutants import _schema

    t = _schema().TensorT()
    src = sg.tensors[like]
    t.shape, t.type, t.quantization, t.buffer, t.name = src.shape, src.type, src.quantization, 0, b"hole"
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def _sine_hole(raw: bytes, kind: str) -> bytes:
    """Hand-built holes in the sine model (three FULLY_CONNECTED ops: 0 -> 1 -> 2)."""
    from mutants import _pack, _schema

    model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
    sg = model.subgraphs[0]
    ops = sg.operators
    if kind == "reorder":  # op 1 now runs before op 0, which writes its input
        ops[0], ops[1] = ops[1], ops[0]
    elif kind == "unwritten input":  # op 1 reads a tensor nothing writes
        ops[1].inputs = np.array([_orphan(sg, int(ops[1].inputs[0])), *ops[1].inputs[1:]], dtype=np.int32)
    elif kind == "constant output":  # the graph output is op 2's weight tensor
        sg.outputs = np.array([ops[2].inputs[1]], dtype=np.int32)
    elif kind == "unwritten output":  # the graph output is a tensor nothing writes
        sg.outputs = np.array([_orphan(sg, int(sg.outputs[0]))], dtype=np.int32)
    return _pack(model)


HOLE_KINDS = ["reorder", "unwritten input", "constant output", "unwritten output"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", HOLE_KINDS)
def test_dataflow_hole_is_refused_by_inspect_and_deploy(kind, sine_int8, tmp_path):
    """Before the dataflow check these deployed with exit 0 and PASS on golden vectors that were
    whatever the arena held (issue 23). Now: exit 1, one line naming op/output and tensor, no project."""
    from mutants import has_hole

    raw = _sine_hole(sine_int8.tflite, kind)
    assert has_hole(raw)
    model = tmp_path / "hole.tflite"
    model.write_bytes(raw)
    for args in (["inspect", str(model)], ["deploy", "-q", str(model), "--board", "esp32", "--out", str(tmp_path / "out")]):
        proc = _cli(*args, cwd=tmp_path)
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, proc.stderr
        assert "hole.tflite: malformed .tflite:" in lines[0] and re.search(r"tensor \d+ '", lines[0]), lines[0]
        assert "PASS" not in proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_valid_model_edited_the_same_way_still_deploys(sine_int8, tmp_path):
    """The same decode/repack path without a hole: deploy exits 0 with PASS (the check refuses
    holes, not edited files)."""
    from mutants import _pack, _schema

    model = tmp_path / "sine.tflite"
    model.write_bytes(_pack(_schema().ModelT.InitFromPackedBuf(bytearray(sine_int8.tflite), 0)))
    proc = _cli("deploy", str(model), "--board", "esp32", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "PASS" in proc.stdout and (tmp_path / "out" / "mcuq.lock.json").is_file()


@pytest.mark.slow
def test_golden_vectors_must_be_reproducible(sine_int8):
    """Defence behind the verifier: a hole that reaches the golden computation (here the verifier
    is bypassed by handing the bytes straight over) gives outputs that differ between two fresh
    interpreters, and deploy's golden step refuses it in one line; a valid model's golden outputs
    are the plain x86 TFLite Micro run's."""
    import dataclasses

    from mcuq.checks.golden import reproducible_golden
    from mcuq.common.errors import ModelLoadError
    from mcuq.reference.host_tflm import measure_min_arena, run_tflm

    info = sine_int8.info
    golden = [[np.array([[v]], dtype=np.int8)] for v in (-100, -20, 40, 110)]
    arena = measure_min_arena(info.raw, golden[0])
    got = reproducible_golden(info, golden, arena, "sine.tflite")
    want = run_tflm(info.raw, golden, arena, 1).outputs
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(got, want))
    hole = dataclasses.replace(info, raw=_sine_hole(info.raw, "reorder"))
    with pytest.raises(ModelLoadError, match=r"^sine.tflite: golden outputs differ between two runs of x86 TFLite Micro \(output 0 'y'"):
        reproducible_golden(hole, golden, measure_min_arena(hole.raw, golden[0]), "sine.tflite")


def test_worker_that_cannot_write_its_answer_names_the_cause(tmp_path):
    """A full temp folder used to surface as 'the model is probably malformed': the worker now
    reports the OSError (exit 75, marked line) and host_tflm says what it is."""
    import pickle

    from mcuq.reference.tflm_worker import OSERROR_EXIT, OSERROR_MARK

    req = tmp_path / "req.pkl"
    req.write_bytes(pickle.dumps({"kind": "run", "model": b"", "inputs": [], "arena": 0, "num_outputs": 0}))
    proc = subprocess.run(
        [sys.executable, "-m", "mcuq.reference.tflm_worker", str(req), "/dev/full"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )
    assert proc.returncode == OSERROR_EXIT and proc.stderr.startswith(OSERROR_MARK) and "No space left on device" in proc.stderr


@pytest.fixture
def full_tmpdir(tmp_path):
    """A 32 KiB tmpfs with ``free`` KiB left (root only: skipped where mounting is not allowed)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32k", "tmpfs", str(mnt)], capture_output=True, check=False).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


@pytest.mark.slow
@pytest.mark.parametrize("free_kib", [4, 16])
def test_full_temp_folder_is_named_not_blamed_on_the_model(full_tmpdir, free_kib, digits_tflite, tmp_path):
    """4 KiB free: the request (the 14 KB model) cannot be written; 16 KiB free: the request fits
    and the child's answer does not. Both: one line naming the disk, never 'probably malformed'."""
    (full_tmpdir / "fill").write_bytes(b"\0" * ((32 - free_kib) * 1024))
    proc = _cli(
        "deploy",
        "-q",
        str(digits_tflite),
        "--board",
        "esp32",
        "--out",
        str(tmp_path / "out"),
        cwd=tmp_path,
        env={"TMPDIR": str(full_tmpdir)},
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "No space left on device" in lines[0] and str(full_tmpdir) in lines[0] and "malformed" not in lines[0], lines[0]
