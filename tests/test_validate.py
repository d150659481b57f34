"""`mcuq validate`: host proof, float-vs-int8 metrics, per-layer error, report, CI gates."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from conftest import DIGITS, ROOT, need
from mcuq.checks.accuracy import diagnose
from mcuq.common.errors import MCUQError, UsageError
from mcuq.deploy import DeployRequest, deploy
from mcuq.validate import validate_project


@pytest.fixture(scope="session")
def digits_project(tmp_path_factory, digits_int8) -> Path:
    out = tmp_path_factory.mktemp("validate") / "esp32-digits"
    result = deploy(
        DeployRequest(
            model=str(DIGITS / "model.keras"),
            board="esp32",
            out=str(out),
            quantized=digits_int8,  # the session's conversion of this model (its calibration, default options)
            data=str(DIGITS / "val.npz"),
        )
    )
    assert result.ok
    return out


def _validate_cli(project: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mcuq", "validate", str(project), *extra], capture_output=True, text=True, cwd=ROOT, check=False
    )


def test_validate_digits_prints_metrics_and_writes_reports(digits_project):
    (digits_project / "report.html").unlink(missing_ok=True)
    proc = _validate_cli(digits_project, "--data", str(DIGITS / "val.npz"), "--max-drop", "2", "--min-snr", "20")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for name in ("ACC float", "ACC int8", "RMSE", "MAE", "L2R", "COS", "SNR dB", "bit-exact"):
        assert name in proc.stdout
    report = json.loads((digits_project / "report.json").read_text())
    out = report["metrics"]["outputs"][0]
    assert abs(out["ACC_float"] - out["ACC_int8"]) <= 0.02
    assert len(out["confusion_int8"]) == 10 and sum(map(sum, out["confusion_int8"])) == report["metrics"]["samples"]
    assert [r["op"] for r in report["per_layer"]][:3] == ["CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D"]
    html = (digits_project / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6  # budget, 2 confusion matrices, per-layer, weights
    assert "How the arena was sized" in html


def test_accuracy_gate_fails_for_ci(digits_project):
    proc = _validate_cli(digits_project, "--data", str(DIGITS / "val.npz"), "--min-snr", "200", "--no-report")
    assert proc.returncode == 1
    assert "[FAIL] output SNR" in proc.stdout


def _copy(project: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "copy"
    shutil.copytree(project, dest)
    return dest


def test_validation_data_outside_the_project_is_not_checked_visibly(digits_project, tmp_path):
    """Deploy read val.npz from outside the project: the lock keeps its name and sha256 only, so
    validate without --data cannot measure accuracy and must say so, not print a bare PASS."""
    manifest = json.loads((digits_project / "mcuq.lock.json").read_text())
    digest = manifest["validation_data_sha256"]
    assert manifest["validation_data"] == "val.npz" and digest
    project = _copy(digits_project, tmp_path)
    proc = _validate_cli(project)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # nothing that ran failed, and nothing was asked for
    lines = proc.stdout.splitlines()
    assert lines[0].endswith(": PASS (1 check not run)"), lines[0]
    skipped = [line for line in lines if line.startswith("  [not checked] validation data: ")]
    assert len(skipped) == 1, proc.stdout
    assert f"'val.npz' (sha256 {digest[:12]}...) is outside the project" in skipped[0] and "pass --data <path>/val.npz" in skipped[0]
    assert "ACC int8" not in proc.stdout and "[ok] validation" not in proc.stdout
    report = json.loads((project / "report.json").read_text())
    assert report["passed"] and not report["metrics"] and not report["per_layer"]
    assert [c["name"] for c in report["not_checked"]] == ["validation data"]
    assert all(c["name"] != "validation data" for c in report["checks"])
    assert "1 check not run" in (project / "report.html").read_text()


def test_validation_data_outside_the_project_runs_with_data(digits_project):
    report = validate_project(digits_project, data=str(DIGITS / "val.npz"), write_report=False)
    assert report.passed and report.verdict == "PASS" and not report.not_checked and not report.notes
    assert report.metrics["samples"] > 0 and report.metrics["outputs"][0]["ACC_int8"] > 0.5


def test_other_validation_data_than_recorded_is_a_note_and_still_checked(digits_project, tmp_path):
    with np.load(DIGITS / "val.npz") as val:
        np.savez(tmp_path / "val_half.npz", **{k: v[: len(v) // 2] for k, v in val.items()})
    proc = _validate_cli(digits_project, "--data", str(tmp_path / "val_half.npz"), "--no-report")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    notes = [line for line in proc.stdout.splitlines() if line.startswith("  note: validation data: ")]
    assert len(notes) == 1 and "val_half.npz" in notes[0] and "is not the file deploy recorded ('val.npz', sha256 " in notes[0]
    assert "ACC int8" in proc.stdout and "[not checked]" not in proc.stdout


def test_accuracy_gate_without_the_recorded_data_fails_naming_it(digits_project):
    report = validate_project(digits_project, max_drop=2.0, write_report=False)
    check = report.check("validation data")
    assert not report.passed and check is not None and not check.passed and not report.not_checked
    assert check.detail.startswith("--max-drop needs validation data: 'val.npz' (sha256 ") and "outside the project" in check.detail


def test_corrupted_weights_in_c_array_fail_naming_the_checksum(digits_project, tmp_path):
    project = _copy(digits_project, tmp_path)
    src = project / "src" / "model_data.cpp"
    text = src.read_text()
    values = list(re.finditer(r"0x[0-9a-f]{2}", text))
    target = values[len(values) // 2]  # in the middle of the weights
    replacement = "0x00" if target.group() != "0x00" else "0x7f"
    src.write_text(text[: target.start()] + replacement + text[target.end() :])
    proc = _validate_cli(project, "--no-report")
    assert proc.returncode == 1
    assert "edited since deploy: src/model_data.cpp" in proc.stdout


def test_corrupted_model_file_fails_naming_the_checksum(digits_project, tmp_path):
    project = _copy(digits_project, tmp_path)
    model = project / "mcuq" / "model_int8.tflite"
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    model.write_bytes(bytes(raw))
    proc = _validate_cli(project, "--no-report")
    assert proc.returncode == 1
    assert "model checksum mismatch" in proc.stdout and "edited since deploy: mcuq/model_int8.tflite" in proc.stdout


def test_unparsable_model_consistent_with_the_lock_names_the_model_file(digits_project, tmp_path):
    """The golden-vector check parses the bytes validate read, mcuq/model_int8.tflite, and says so
    (not src/model_data.cpp, which validate never reads)."""
    project = _copy(digits_project, tmp_path)
    model = project / "mcuq" / "model_int8.tflite"
    raw = bytearray(model.read_bytes())
    raw[4:8] = b"XXXX"  # no 'TFL3' identifier: parse_model refuses it
    model.write_bytes(bytes(raw))
    lock = project / "mcuq.lock.json"
    manifest = json.loads(lock.read_text())
    manifest["model"].update(crc32=f"{zlib.crc32(raw) & 0xFFFFFFFF:08x}", sha256=hashlib.sha256(raw).hexdigest())
    lock.write_text(json.dumps(manifest))
    with pytest.raises(MCUQError) as exc:
        validate_project(project, write_report=False)
    assert str(exc.value).startswith("mcuq/model_int8.tflite: not a TFLite flatbuffer"), str(exc.value)
    assert "model_data.cpp" not in str(exc.value)


def test_quiet_validate_prints_the_verdict_line_and_the_first_failure(digits_project, tmp_path):
    proc = _validate_cli(digits_project, "--no-report", "-q")
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.strip().splitlines() == [f"validate {digits_project}: PASS (1 check not run)"]
    project = _copy(digits_project, tmp_path)
    model = project / "mcuq" / "model_int8.tflite"
    raw = bytearray(model.read_bytes())
    raw[len(raw) // 2] ^= 0x55
    model.write_bytes(bytes(raw))
    proc = _validate_cli(project, "--no-report", "-q")
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and proc.stdout == "" and len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"validate {project}: FAIL: ") and "model_int8.tflite" in lines[0]


def test_hand_edited_golden_vector_fails_naming_it(digits_project, tmp_path):
    project = _copy(digits_project, tmp_path)
    src = project / "src" / "golden_vectors.cpp"
    text = src.read_text()
    match = re.search(r"(mcuq_golden_out_2_0\[\d+\] = \{\s*)(-?\d+)", text)
    value = int(match.group(2))
    src.write_text(text[: match.start(2)] + str(value + 1 if value < 127 else value - 1) + text[match.end(2) :])
    report = validate_project(project, write_report=False)
    failed = [c for c in report.checks if not c.passed]
    # The golden vectors validate reads are the hashed data file; the edited C copy is named by its hash.
    assert [c.name for c in failed] == ["generated files"]
    assert "edited since deploy: src/golden_vectors.cpp" in failed[0].detail


def test_edited_golden_data_file_fails_the_vector_and_points_at_the_edit(digits_project, tmp_path):
    project = _copy(digits_project, tmp_path)
    path = project / "mcuq" / "golden.json"
    data = json.loads(path.read_text())
    values = data["vectors"][1]["outputs"][0]["values"]
    values[0] = values[0] + 1 if values[0] < 127 else values[0] - 1
    path.write_text(json.dumps(data))
    report = validate_project(project, write_report=False)
    failed = {c.name: c.detail for c in report.checks if not c.passed}
    assert "edited since deploy: mcuq/golden.json" in failed["generated files"]
    assert set(failed) == {"generated files", "golden vector 1"}
    assert "generated files were edited (see 'generated files')" in failed["golden vector 1"]


def test_edited_arena_size_in_the_sources_fails(digits_project, tmp_path):
    """Every generated file is checked against its hash, not only the parts a check parses."""
    project = _copy(digits_project, tmp_path)
    header = project / "src" / "mcuq_model.h"
    text = header.read_text()
    edited = re.sub(r"kTensorArenaSize = \d+", "kTensorArenaSize = 64", text)
    assert edited != text
    header.write_text(edited)
    report = validate_project(project, write_report=False)
    files = report.check("generated files")
    assert not report.passed and files is not None and not files.passed and "src/mcuq_model.h" in files.detail


@pytest.mark.parametrize(
    "content, message",
    [
        ("{}", "older mcuq"),
        ("[]", "a JSON list, not an object"),
        ("{", "damaged manifest"),
        ('{"schema_version": 1}', "schema version 1"),
        (
            '{"schema_version": 2, "runtime": "tflm"}',
            "schema version 2; this mcuq reads schema version 3: regenerate the project with 'mcuq deploy --force'",
        ),
        ('{"schema_version": 3}', "malformed manifest ('runtime' must be str, got null)"),
        ('{"schema_version": 3, "runtime": "z80"}', "malformed manifest ('runtime' 'z80' is not one of tflm, c)"),
    ],
)
def test_bad_manifest_is_one_line(digits_project, tmp_path, content, message):
    project = _copy(digits_project, tmp_path)
    (project / "mcuq.lock.json").write_text(content)
    proc = subprocess.run([sys.executable, "-m", "mcuq", "validate", str(project)], capture_output=True, text=True, check=False)
    assert proc.returncode == 1 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_manifest_reads_back_as_written_with_a_typed_runtime_section(digits_project):
    from mcuq.backends.tflm.section import TflmSection
    from mcuq.validate import read_manifest

    manifest = read_manifest(digits_project)
    section = manifest.section(TflmSection)
    assert section.library.id == "esp-tflite-micro" and [r.op for r in section.resolver] == manifest.model.ops
    on_disk = json.loads((digits_project / "mcuq.lock.json").read_text())
    assert manifest.as_dict() == on_disk and on_disk["schema_version"] == 3 and "library_check" not in on_disk


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda m: m["tflm"]["library"].update(id=7), "'tflm.library.id' must be str, got int 7"),
        (lambda m: m["tflm"]["resolver"][0].pop("method"), "'tflm.resolver[0].method' is missing"),
        (lambda m: m.pop("tflm"), "'tflm' is missing"),
        (lambda m: m["tflm"].update(library_check=[]), "'tflm.library_check' must be an object, got list []"),
        (lambda m: m["board"].update(sha256=None), "'board.sha256' must be str, got null"),
    ],
)
def test_malformed_runtime_section_is_one_line_naming_file_and_key(digits_project, tmp_path, edit, message):
    project = _copy(digits_project, tmp_path)
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    edit(manifest)
    (project / "mcuq.lock.json").write_text(json.dumps(manifest))
    proc = _validate_cli(project)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert str(project / "mcuq.lock.json") in lines[0] and message in lines[0] and "mcuq deploy --force" in lines[0], lines[0]


def test_too_small_arena_is_reported_with_numbers(digits_project, tmp_path):
    project = _copy(digits_project, tmp_path)
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    manifest["arena"]["host_bytes"] = 1024
    (project / "mcuq.lock.json").write_text(json.dumps(manifest))
    report = validate_project(project, write_report=False)
    arena = next(c for c in report.checks if c.name == "arena")
    assert not arena.passed and "1024 B" in arena.detail and str(manifest["arena"]["host_min_bytes"]) in arena.detail


@pytest.mark.slow
def test_damaged_layer_is_named_worst(tmp_path):
    import keras

    keras.utils.set_random_seed(1)
    inp = keras.Input((8,), name="x")
    h = keras.layers.Dense(16, activation="relu", name="fc1")(inp)
    h = keras.layers.Dense(16, activation="relu", name="bad")(h)
    model = keras.Model(inp, keras.layers.Dense(4, name="out")(h))
    w1, b1 = model.get_layer("fc1").get_weights()
    w1[:, 0], b1[0] = 0.0, -1.0  # fc1 unit 0 is always 0 after ReLU ...
    model.get_layer("fc1").set_weights([w1, b1])
    w2, b2 = model.get_layer("bad").get_weights()
    w2[0, 0] = 400.0  # ... so this outlier changes nothing in float, but wrecks a per-tensor int8 scale
    model.get_layer("bad").set_weights([w2, b2])
    model.save(tmp_path / "m.keras")
    rng = np.random.default_rng(0)
    np.save(tmp_path / "cal.npy", rng.normal(size=(200, 8)).astype(np.float32))
    np.savez(tmp_path / "val.npz", x=rng.normal(size=(64, 8)).astype(np.float32))
    result = deploy(
        DeployRequest(
            model=str(tmp_path / "m.keras"),
            board="esp32",
            out=str(tmp_path / "p"),
            calibration=str(tmp_path / "cal.npy"),
            data=str(tmp_path / "val.npz"),
            options={"per_channel": False},
        )
    )
    worst = diagnose(result.validation.per_layer)
    assert worst and worst[0]["layer"] == "bad"
    fc1 = next(r for r in result.validation.per_layer if r["layer"] == "fc1")
    assert fc1["SNR_dB"] > 25 > worst[0]["SNR_dB"]


def test_report_renders_in_headless_chromium(digits_project, tmp_path):
    need("chromium")
    from PIL import Image

    shot = tmp_path / "report.png"
    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1100,2400",
            f"--screenshot={shot}",
            (digits_project / "report.html").as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    image = np.asarray(Image.open(shot).convert("RGB")).astype(int)
    assert image.shape[1] == 1100
    # Plots are visible: the blue of the charts covers a real area.
    blue = (image[..., 2] > 150) & (image[..., 0] < 80)
    assert blue.sum() > 5000
    # Nothing overflows: the page is centred at 980 px, so the right margin stays blank.
    assert (image[:, -30:] > 240).all(axis=-1).mean() > 0.99


def test_an_option_of_another_runtime_is_a_failed_check_not_a_silent_skip(digits_project):
    """validate --emulate on a TFLite Micro project: asked for, not run, so the verdict is FAIL
    with the reason; an option that needs another (--tflm-source without --build) is refused."""
    report = validate_project(digits_project, write_report=False, backend_options={"emulate": True})
    check = report.check("emulate")
    assert check is not None and not check.passed and "runtime is tflm" in check.detail and not report.passed
    with pytest.raises(UsageError, match="--tflm-source /tmp: it is used by --build only"):
        validate_project(digits_project, write_report=False, backend_options={"tflm_source": "/tmp"})
