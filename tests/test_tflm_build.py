"""Generated TFLite Micro projects, compiled against the library each board pins and run.

Host (x86-64) self-test for every 32-bit board x {digits, sine}; the board's Cortex-M in qemu
for nano33ble (M4), teensy41 (M7) and pico (M0+); an arena below the true minimum must fail.
Library objects are compiled once into the object cache (mcuq.backends.tflm.toolchain) and
shared by every test here. Skipped with the reason when ../shared/tflm-libs is absent.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import need
from mcuq.backends.tflm import toolchain as tb
from mcuq.backends.tflm.backend import model_bytes_from_c_array
from mcuq.backends.tflm.build_check import build_and_check
from mcuq.backends.tflm.section import TflmBoardSection, TflmSection
from mcuq.boards import get_board, list_boards
from mcuq.deploy import DeployRequest, deploy
from mcuq.validate import read_manifest

ROOT = Path(__file__).resolve().parent.parent
LIBS = ROOT.parent / "shared" / "tflm-libs"
BOARDS_32 = sorted(b.id for b in list_boards() if b.word_size == 32 and b.section(TflmBoardSection) is not None)
QEMU_BOARDS = {"nano33ble": "cortex-m4", "teensy41": "cortex-m7", "pico": "cortex-m0plus"}


def _digits_boards() -> list[str]:
    """Where the host build of the digits model is a path of its own: the first board of each
    library, and the qemu boards (whose digits build also runs on the board's CPU). On the host
    every board of one library links the same library objects, and a board's own generated text
    (name, clock, link identity) is the same for both models, so the sine build of every board
    covers that; the digits build of the other boards would repeat both."""
    first: dict[str, str] = {}
    for board in BOARDS_32:
        section = get_board(board).section(TflmBoardSection)
        assert section is not None
        first.setdefault(section.library, board)
    return sorted(set(first.values()) | set(QEMU_BOARDS))


# (board, model): every 32-bit board with sine, digits where it is a distinct path (above).
BUILDS = [(board, "sine") for board in BOARDS_32] + [(board, "digits") for board in _digits_boards()]

pytestmark = pytest.mark.skipif(not LIBS.is_dir(), reason=f"TFLite Micro library sources not found at {LIBS} (../shared/tflm-libs)")


@pytest.fixture(scope="session")
def projects(tmp_path_factory, digits_tflite, sine_tflite) -> dict[tuple[str, str], Path]:
    """One deployed project per (board, model) of BUILDS (deploy is cheap; the builds share objects)."""
    need("g++")
    out = tmp_path_factory.mktemp("tflm-build")
    models = {"digits": digits_tflite, "sine": sine_tflite}
    made = {}
    for board, name in BUILDS:
        target = out / f"{board}-{name}"
        deploy(DeployRequest(model=str(models[name]), board=board, out=str(target)))
        made[(board, name)] = target
    return made


def _raw(project: Path) -> bytes:
    return model_bytes_from_c_array(project / "src" / "model_data.cpp")


@pytest.fixture(scope="session")
def outcomes(projects):
    """build_and_check per (board, model), run once: the qemu boards' digits builds include
    the board's CPU, so the host test and the qemu test of a board share one run."""
    done: dict[tuple[str, str], object] = {}

    def get(board: str, model: str):
        if (board, model) not in done:
            project = projects[(board, model)]
            emulate = board in QEMU_BOARDS and model == "digits"
            if emulate:
                need("arm-none-eabi-g++")
                need("qemu-system-arm")
            done[(board, model)] = build_and_check(project, read_manifest(project), _raw(project), str(LIBS), emulate=emulate)
        return done[(board, model)]

    return get


@pytest.mark.parametrize(("board", "model"), BUILDS, ids=[f"{model}-{board}" for board, model in BUILDS])
def test_host_build_passes_the_selftest(outcomes, board: str, model: str) -> None:
    outcome = outcomes(board, model)
    host = outcome.run("x86-64")
    assert host is not None and host.passed, host.detail if host else outcome
    assert host.vectors == 4 and "4/4 golden vectors bit-exact" in host.detail


@pytest.mark.parametrize("board", sorted(QEMU_BOARDS))
def test_board_cpu_in_qemu_passes_at_the_declared_arena(outcomes, projects, board: str) -> None:
    outcome = outcomes(board, "digits")
    run = outcome.run(QEMU_BOARDS[board])
    assert run is not None, outcome.note
    assert run.passed, run.detail
    assert run.label.endswith((tb.cpu_target(get_board(board).cpu) or tb.HOST).machine or "")
    raw = _raw(projects[(board, "digits")])
    assert run.true_min_bytes is not None and 0 < run.true_min_bytes <= run.arena_bytes
    assert run.flash_bytes and run.flash_bytes > len(raw) and run.ram_bytes and run.ram_bytes > run.arena_bytes


def test_esp32_is_host_only_and_says_so(outcomes) -> None:
    outcome = outcomes("esp32", "sine")
    assert [r.cpu for r in outcome.runs] == ["x86-64"]
    assert "host build only" in outcome.note and "xtensa" in outcome.note


def test_arena_below_the_true_minimum_fails_on_the_board_cpu(projects, tmp_path: Path) -> None:
    """Redeploy with --arena-size just below the Cortex-M4 minimum: the qemu self-test must fail."""
    need("arm-none-eabi-g++")
    need("qemu-system-arm")
    good = projects[("nano33ble", "sine")]
    raw = _raw(good)
    tree = tb.find_library_tree("chirale-tensorflowlite", source=LIBS)
    fw = tb.build_probe(raw, ["FULLY_CONNECTED"], tree, tb.shipped_cpu("cortex-m4"), 64 * 1024)
    try:
        true_min, _ = tb.min_arena(fw, 64 * 1024)
        assert tb.probe(fw, true_min).ok and not tb.probe(fw, true_min - 1).ok
    finally:
        fw.close()
    # The same project with its arena constant lowered below the minimum (as a user editing it would).
    project = tmp_path / "p"
    shutil.copytree(good, project)
    header = project / "src" / "mcuq_model.h"
    declared = read_manifest(good).arena["target_bytes"]
    text = header.read_text()
    assert str(declared) in text
    header.write_text(re.sub(rf"\b{declared}\b", str(true_min - 16), text))
    fw2 = tb.build_project(project, tree, tb.shipped_cpu("cortex-m4"), ["FULLY_CONNECTED"])
    try:
        result = tb.run_selftest(fw2)
    finally:
        fw2.close()
    assert not result.passed
    assert "AllocateTensors() failed" in result.log or "FAIL" in result.problem


def test_validate_build_cli_fails_naming_the_vector(projects, tmp_path: Path, capsys) -> None:
    """A golden output edited in the project: validate --build exits 1 and names the vector."""
    from mcuq.cli import main

    project = tmp_path / "edited"
    shutil.copytree(projects[("esp32", "sine")], project)
    golden = next(p for p in (project / "src").glob("*golden*.c*"))
    text = golden.read_text()
    first = re.search(r"(golden_out\w*\[\d+\]\s*=\s*\{\s*)(-?\d+)", text)
    assert first is not None, golden
    value = int(first.group(2))
    golden.write_text(text[: first.start(2)] + str(value + 1 if value < 127 else value - 1) + text[first.end(2) :])
    code = main(["validate", str(project), "--build", "--tflm-source", str(LIBS), "--no-report", "--json"])
    assert code == 1
    report = json.loads(capsys.readouterr().out)
    failed = [c for c in report["checks"] if not c["passed"]]
    assert any("library build" in c["name"] and "golden vector 0 FAIL" in c["detail"] for c in failed), failed


def test_missing_library_is_one_line_with_the_fix(projects, tmp_path: Path) -> None:
    project = projects[("nano33ble", "sine")]
    with pytest.raises(tb.BuildError, match=r"pio pkg install.*--tflm-source"):
        tb.find_library_tree("chirale-tensorflowlite", project, tmp_path)


def test_per_channel_dense_really_differs_on_chirale(digits_per_channel_all) -> None:
    """Why features.per_channel_fully_connected = false: Chirale's outputs differ from the wheel's."""
    import numpy as np

    from mcuq.reference.host_tflm import run_tflm

    info = digits_per_channel_all.info
    rng = np.random.default_rng(1)
    inputs = [[rng.integers(-128, 128, t.shape).astype(np.int8) for t in info.input_tensors] for _ in range(4)]
    expected = run_tflm(info.raw, inputs, 64 * 1024, len(info.outputs)).outputs
    tree = tb.find_library_tree("chirale-tensorflowlite", source=LIBS)
    fw = tb.build_probe(info.raw, info.op_names, tree, tb.HOST, 64 * 1024)
    try:
        got = tb.host_outputs(fw, 64 * 1024, b"".join(x.tobytes() for v in inputs for x in v), len(inputs))
    finally:
        fw.close()
    want = b"".join(o.tobytes() for v in expected for o in v)
    assert len(got) == len(want) and got != want


def test_deploy_with_the_library_at_hand_plans_the_exact_arena(sine_tflite, tmp_path: Path) -> None:
    """Item 3: golden vectors from the board's library and the arena from its exact minimum."""
    need("arm-none-eabi-g++")
    need("qemu-system-arm")
    result = deploy(
        DeployRequest(model=str(sine_tflite), board="nano33ble", out=str(tmp_path / "p"), backend_options={"tflm_source": str(LIBS)})
    )
    manifest = result.manifest
    assert manifest["tflm"]["library_check"]["golden_from_library"] is True
    assert result.lock.section(TflmSection).library_check.golden_from_library is True
    assert "Chirale" in manifest["golden"]["computed_by"]
    arena = manifest["arena"]
    assert arena["library_min_bytes"] and "exact minimum" in arena["how"]
    outcome = build_and_check(tmp_path / "p", result.lock, _raw(tmp_path / "p"), str(LIBS))
    m4 = outcome.run("cortex-m4")
    assert m4 is not None and m4.passed, m4
    assert m4.true_min_bytes == arena["library_min_bytes"]
    assert 1.0 <= arena["target_bytes"] / m4.true_min_bytes <= 1.10


def test_without_the_library_the_project_says_bit_exactness_is_unverified(projects) -> None:
    from mcuq.backends.tflm.backend import BACKEND

    manifest = read_manifest(projects[("nano33ble", "sine")])
    check = manifest.section(TflmSection).library_check
    assert check.golden_from_library is False and "unverified" in check.note and "validate --build" in check.note
    assert any("unverified" in line for line in BACKEND.summary_lines(manifest))
    assert "unverified" in BACKEND.report_section(manifest).library


def test_instruction_count_per_inference_on_cortex_m4(digits_tflite, sine_tflite) -> None:
    """The -icount column of the speed table (issue #12): a bigger model executes more instructions."""
    need("arm-none-eabi-g++")
    need("qemu-system-arm")
    from mcuq.model.info import parse_model

    counts = {}
    for name, path in (("digits", digits_tflite), ("sine", sine_tflite)):
        info = parse_model(path.read_bytes(), name)
        counts[name] = tb.instructions_per_inference(info.raw, info.op_names, "cmsis-nn", "cortex-m4", LIBS, arena=64 * 1024)
    assert 0 < counts["sine"] < counts["digits"]
    assert counts["digits"] % 40 == 0  # SysTick resolution: 40 instructions per tick at 25 MHz
