"""`mcuq inspect`, bad model files, and the CLI contract (exit codes, no traceback, lazy TF)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import DIGITS, ROOT
from mcuq.cli import main
from mcuq.common.errors import ModelLoadError
from mcuq.inspection import inspect_model


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "mcuq", *args], capture_output=True, text=True, cwd=cwd, check=False)


def test_inspect_json_reports_int8_io_and_tflm_support(digits_tflite):
    proc = run_cli("inspect", str(digits_tflite), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["inputs"][0]["dtype"] == "int8" and report["outputs"][0]["dtype"] == "int8"
    assert report["inputs"][0]["scale"][0] > 0
    assert report["supported_by"] == {"tflm": True, "c": True}
    assert report["total_macs"] == sum(op["macs"] for op in report["ops"]) > 0
    conv = next(op for op in report["ops"] if op["op"] == "CONV_2D")
    assert conv["macs"] == 8 * 8 * 8 * 3 * 3 * 1  # out HxWxC x kernel x in_c
    assert all(op["support"] == {"tflm": True, "c": True} for op in report["ops"])


def test_inspect_table(digits_tflite):
    text = "\n".join([])
    proc = run_cli("inspect", str(digits_tflite))
    text = proc.stdout
    assert "FULLY_CONNECTED" in text and "total MACs" in text and "every op is supported" in text


@pytest.mark.slow
def test_inspect_keras_needs_calibration_and_converts(tmp_path):
    report = inspect_model(DIGITS / "model.keras", str(DIGITS / "calibration.npy"))
    assert report["inputs"][0]["dtype"] == "int8"


@pytest.mark.parametrize(
    "content, message",
    [
        (lambda raw: raw[: len(raw) // 2], "truncated or corrupted"),
        (lambda raw: bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), "not a TFLite flatbuffer"),
        (lambda raw: raw[:8] + bytes(np.random.default_rng(2).integers(0, 256, 4000, dtype=np.uint8)), "truncated or corrupted"),
    ],
)
def test_damaged_tflite_is_one_line_error(tmp_path, digits_tflite, content, message):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(content(digits_tflite.read_bytes()))
    with pytest.raises(ModelLoadError, match=message):
        inspect_model(bad)
    proc = run_cli("quantize", str(bad), "-o", str(tmp_path / "out.tflite"))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "bad.tflite" in proc.stderr
    assert not (tmp_path / "out.tflite").exists()


def test_missing_model_and_non_savedmodel_dir(tmp_path):
    proc = run_cli("quantize", str(tmp_path / "nope.keras"), "-c", "random", "-o", str(tmp_path / "o.tflite"))
    assert proc.returncode == 1 and "no such file" in proc.stderr
    (tmp_path / "folder").mkdir()
    proc = run_cli("quantize", str(tmp_path / "folder"), "-c", "random", "-o", str(tmp_path / "o.tflite"))
    assert proc.returncode == 1 and "not a SavedModel" in proc.stderr
    assert not (tmp_path / "o.tflite").exists()


@pytest.mark.slow
def test_bad_calibration_via_cli_writes_nothing(tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((4, 64), np.float32))
    out = tmp_path / "o.tflite"
    proc = run_cli("quantize", str(DIGITS / "model.keras"), "-c", str(tmp_path / "wrong.npy"), "-o", str(out))
    assert proc.returncode == 1
    assert "expected (N, 8, 8, 1)" in proc.stderr and "image" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()


@pytest.mark.slow
def test_quantize_cli_success_and_quiet(tmp_path):
    out = tmp_path / "d.tflite"
    proc = run_cli("quantize", str(DIGITS / "model.keras"), "-c", str(DIGITS / "calibration.npy"), "-o", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    assert out.exists() and proc.stdout == "" and proc.stderr == ""


def test_usage_error_exit_code_2():
    assert run_cli("quantize").returncode == 2
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2


def test_help_does_not_import_tensorflow():
    code = "import sys\nfrom mcuq.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip().endswith("False")
    code = "import sys\nfrom mcuq.cli import main\nmain(['boards'])\nprint('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert proc.stdout.strip().endswith("False")


@pytest.mark.slow
def test_quantize_never_overwrites_a_foreign_file(tmp_path):
    out = tmp_path / "mine.tflite"
    out.write_bytes(b"my own model")
    args = ["quantize", str(DIGITS / "model.keras"), "-c", str(DIGITS / "calibration.npy"), "-o", str(out), "-q"]
    proc = run_cli(*args)
    assert proc.returncode == 1 and "was not written by mcuq" in proc.stderr
    assert out.read_bytes() == b"my own model"
    assert run_cli(*args, "--force").returncode == 0
    assert run_cli(*args).returncode == 0  # now it is mcuq's own file: regenerating is fine
