"""Robustness suite: the bad-input matrix over all six commands, and kill -9 during deploy."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bad_inputs import CASES, Inputs, run_case, tree_digest

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
    children = subprocess.run(["pgrep", "-f", f"mcuq.common.isolation {proc.pid} "], capture_output=True, text=True, check=False)
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
