"""`mcuq deploy`: boards as data, generated projects, arena sizing, fit check, nothing lost."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DIGITS, ROOT, SINE, need
from mcuq.backends.tflm.backend import model_bytes_from_c_array
from mcuq.backends.tflm.section import TflmBoardSection
from mcuq.boards import get_board, list_boards, load_board_file
from mcuq.checks.golden import golden_from_project
from mcuq.common.errors import BoardError, FitError, MCUQError, OutputDirError, UnsupportedOpError
from mcuq.deploy import DeployRequest, deploy
from mcuq.reference.host_tflm import measure_min_arena, run_tflm
from mcuq.validate import validate_project

BOARDS_32 = [b.id for b in list_boards() if b.word_size == 32]
BOARDS_8 = [b.id for b in list_boards() if b.word_size == 8]


@pytest.fixture(scope="session")
def projects(tmp_path_factory, digits_tflite, sine_tflite) -> dict[tuple[str, str], Path]:
    """Every 32-bit board x {digits, sine}, deployed once for the whole session."""
    base = tmp_path_factory.mktemp("projects")
    out = {}
    for board in BOARDS_32:
        for name, model, data in (("digits", digits_tflite, DIGITS / "val.npz"), ("sine", sine_tflite, SINE / "val.npz")):
            target = base / f"{board}-{name}"
            result = deploy(DeployRequest(model=str(model), board=board, out=str(target), data=str(data)))
            assert result.ok, result.validation.checks
            out[(board, name)] = target
    return out


def test_every_shipped_board_file_validates():
    boards = list_boards()
    assert {
        "esp32",
        "esp32s3",
        "esp32c3",
        "nano33ble",
        "pico",
        "nucleo_f446re",
        "nucleo_l4r5zi",
        "teensy41",
        "uno",
        "nano",
        "mega2560",
    } <= {b.id for b in boards}
    for b in boards:
        assert "@" in b.platformio.platform
        assert (b.default_runtime == "tflm") == (b.word_size == 32)
    assert get_board("esp32").section(TflmBoardSection).library == "esp-tflite-micro"


def test_boards_cli_table_and_json():
    proc = subprocess.run([sys.executable, "-m", "mcuq", "boards", "--json"], capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    assert {d["id"] for d in data} >= set(BOARDS_32) | set(BOARDS_8)
    table = subprocess.run([sys.executable, "-m", "mcuq", "boards"], capture_output=True, text=True, check=True).stdout
    assert "esp32s3" in table and "plain-C int8" in table


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('mcu = "ESP32"\n', ""), "missing required key 'mcu'"),
        (lambda t: t.replace("sram_bytes = 327680", 'sram_bytes = "lots"'), "'sram_bytes' must be int"),
        (lambda t: t.replace('architecture = "xtensa-lx6"', 'architecture = "z80"'), "architecture 'z80'"),
        (lambda t: t.replace('platform = "espressif32@6.13.0"', 'platform = "espressif32"'), "must pin a version"),
        (lambda t: t + "colour = 'red'\n", "unknown key"),
        (lambda t: t.replace('library = "esp-tflite-micro"', 'library = "nope"'), "unknown TFLite Micro library"),
        (lambda t: t + "[broken", "not valid TOML"),
    ],
)
def test_bad_board_file(tmp_path, edit, message):
    text = (ROOT / "boards" / "esp32.toml").read_text()
    path = tmp_path / "my_board.toml"
    path.write_text(edit(text))
    with pytest.raises(BoardError, match=message) as info:
        load_board_file(path)
    assert "my_board.toml" in str(info.value) or "nope" in str(info.value)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace('default_runtime = "tflm"', 'default_runtime = "nope"'), "default_runtime 'nope' is not one of tflm, c"),
        (lambda t: t.split("[tflm]")[0], "default_runtime 'tflm': board esp32 names no TFLite Micro library"),
    ],
)
def test_bad_default_runtime_names_the_board_file_where_backends_are_resolved(tmp_path, sine_tflite, edit, message):
    """Boards are data (mcuq.boards never imports the backend registry); the runtime name is
    checked where it is resolved, and the error still names the board file."""
    from mcuq.backends.base import backend_for

    path = tmp_path / "my_board.toml"
    path.write_text(edit((ROOT / "boards" / "esp32.toml").read_text()))
    board = load_board_file(path)
    with pytest.raises(BoardError, match=message) as info:
        backend_for(board)
    assert str(path) in str(info.value)
    with pytest.raises(BoardError, match=message):
        deploy(DeployRequest(model=str(sine_tflite), board_file=str(path), out=str(tmp_path / "p")))
    assert not (tmp_path / "p").exists()


def test_boards_module_does_not_import_the_backends():
    """Importing mcuq.boards loads nothing of the backends; loading a board reads the tables the
    backends declare (the registry and each runtime's section.py), never a backend's code."""
    code = "import sys\nimport mcuq.boards\nprint(sorted(m for m in sys.modules if m.startswith('mcuq.backends')))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]", proc.stdout
    code = "import sys\nimport mcuq.boards\nmcuq.boards.list_boards()\nimport json\nprint(json.dumps([m for m in sys.modules if m.startswith('mcuq.backends')]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(proc.stdout))
    assert {"mcuq.backends.registry", "mcuq.backends.tflm.section"} <= loaded, loaded
    assert not [m for m in loaded if m.endswith((".backend", ".base"))], loaded


def test_user_board_file_deploys(tmp_path, sine_tflite):
    text = (ROOT / "boards" / "nano33ble.toml").read_text().replace('id = "nano33ble"', 'id = "myboard"')
    (tmp_path / "myboard.toml").write_text(text)
    result = deploy(DeployRequest(model=str(sine_tflite), board_file=str(tmp_path / "myboard.toml"), out=str(tmp_path / "p")))
    assert result.ok and result.board.id == "myboard"


@pytest.mark.parametrize("board", BOARDS_32)
@pytest.mark.parametrize("model", ["digits", "sine"])
def test_platformio_ini_passes_lint(projects, board, model):
    from platformio.package.meta import PackageSpec
    from platformio.project.config import ProjectConfig

    ini = projects[(board, model)] / "platformio.ini"
    lint = ProjectConfig.lint(str(ini))
    assert lint["errors"] == [] and lint["warnings"] == [], lint
    cfg = ProjectConfig(str(ini))
    b = get_board(board)
    assert cfg.get(f"env:{board}", "platform") == b.platformio.platform
    assert cfg.get(f"env:{board}", "board") == b.platformio.board
    assert cfg.get(f"env:{board}", "framework") == [b.platformio.framework]
    for spec in cfg.get(f"env:{board}", "lib_deps", []):
        PackageSpec(spec)
    assert "native" in cfg.envs()


@pytest.mark.parametrize("board", BOARDS_32)
def test_model_array_is_byte_identical_and_runs_with_planned_arena(projects, board, digits_tflite):
    project = projects[(board, "digits")]
    raw = model_bytes_from_c_array(project / "src" / "model_data.cpp")
    assert raw == digits_tflite.read_bytes()
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    arena = manifest["arena"]
    assert arena["host_bytes"] == arena["target_bytes"] + arena["struct_delta_bytes"]
    assert arena["host_bytes"] >= arena["host_min_bytes"] and arena["target_bytes"] % 16 == 0
    from mcuq.model.info import parse_model

    golden_in, golden_out = golden_from_project(project, parse_model(raw))
    run = run_tflm(raw, golden_in, arena["host_bytes"], 1)
    for got, want in zip(run.outputs, golden_out):
        assert np.array_equal(got[0], want[0])
    # The measured minimum really is the minimum: 16 bytes less does not allocate.
    assert measure_min_arena(raw, golden_in[0]) == arena["host_min_bytes"]
    with pytest.raises(MCUQError, match="allocate"):
        run_tflm(raw, golden_in[:1], arena["host_min_bytes"] - 16, 1)


def test_resolver_has_exactly_the_models_ops(projects):
    header = (projects[("esp32", "digits")] / "src" / "op_resolver.h").read_text()
    assert "MicroMutableOpResolver<kNumberOperators>" in header and "kNumberOperators = 6;" in header
    for method in ("AddConv2D", "AddMaxPool2D", "AddDepthwiseConv2D", "AddReshape", "AddFullyConnected", "AddSoftmax"):
        assert f"resolver.{method}()" in header
    assert header.count("resolver.Add") == 6


def test_esp_idf_and_arduino_flavours(projects):
    esp = projects[("esp32", "digits")]
    assert 'espressif/esp-tflite-micro: "~1.4.0"' in (esp / "src" / "idf_component.yml").read_text()
    assert "app_main" in (esp / "src" / "main.cpp").read_text()
    assert (esp / "CMakeLists.txt").exists() and (esp / "sdkconfig.defaults").exists()
    ble = projects[("nano33ble", "digits")]
    assert "#include <Chirale_TensorFlowLite.h>" in (ble / "src" / "op_resolver.h").read_text()
    assert "void setup()" in (ble / "src" / "main.cpp").read_text()
    assert not (ble / "CMakeLists.txt").exists()


def test_cmsis_nn_board_plans_im2col_scratch(projects):
    esp = json.loads((projects[("esp32", "digits")] / "mcuq.lock.json").read_text())["arena"]
    m4 = json.loads((projects[("nucleo_f446re", "digits")] / "mcuq.lock.json").read_text())["arena"]
    s3 = json.loads((projects[("esp32s3", "digits")] / "mcuq.lock.json").read_text())["arena"]
    assert m4["scratch_bytes"] == 4 * 12  # 3x3x1 conv im2col: 4 * align4(9)
    assert s3["scratch_bytes"] > m4["scratch_bytes"]
    assert esp["host_min_bytes"] == m4["host_min_bytes"] == s3["host_min_bytes"]
    assert "bisection" in esp["how"] and "margin" in esp["how"]


def _compile(compiler: str, project: Path, out: Path, extra: list[str], harness: Path | None) -> None:
    sources = [project / "src" / f for f in ("model_data.cpp", "golden_vectors.cpp", "mcuq_checks.cpp")]
    cmd = [compiler, "-std=c++17", "-Wall", "-Wextra", "-Werror", "-I", str(project / "src"), *extra]
    prefix = next(p.name[: -len("_model.h")] for p in (project / "src").glob("*_model.h") if p.name != "mcuq_model.h")
    cmd += [f"-DNS={prefix}_mcuq", f"-DMODEL_DATA=g_{prefix}_model_data", f"-DMODEL_DATA_LEN=g_{prefix}_model_data_len"]
    cmd += [f'-DMODEL_HEADER="{prefix}_model.h"', f"-DINPUT_INFO={prefix}_input_info"]
    if harness is None:
        for src in sources:
            subprocess.run([*cmd, "-c", str(src), "-o", str(out / (src.stem + ".o"))], check=True)
    else:
        subprocess.run([*cmd, *map(str, sources), str(harness), "-o", str(out / "harness")], check=True)


HARNESS = r"""
#include <stdio.h>
#include <string.h>
#include "golden_vectors.h"
#include "mcuq_checks.h"
#include "model_data.h"
#include MODEL_HEADER
// NS, MODEL_DATA, MODEL_HEADER, INPUT_INFO: the project's prefixed names (deploy --name), given with -D.
int main() {
  if (NS::crc32(MODEL_DATA, MODEL_DATA_LEN) != MCUQ_MODEL_CRC32) { puts("crc mismatch"); return 1; }
  if (MODEL_DATA_LEN != MCUQ_MODEL_SIZE) return 2;
  if ((reinterpret_cast<unsigned long>(MODEL_DATA) % 16) != 0) return 3;
  const mcuq_tensor_info* q = INPUT_INFO(0);  // the application's quantize helper (mcuq_api.h)
  for (int v = -128; v <= 127; ++v) if (mcuq_quantize_value(mcuq_dequantize_value(v, q), q) != v) return 4;
  for (int v = 0; v < MCUQ_GOLDEN_COUNT; ++v) {
    const void* g = NS::kGoldenOutputs[v][0];
    if (NS::max_abs_diff(g, g, NS::kOutputBytes[0], NS::kOutputType[0]) != 0.0) return 5;
    unsigned char copy[4096];
    memcpy(copy, g, NS::kOutputBytes[0]);
    copy[0] ^= 1;
    if (NS::max_abs_diff(copy, g, NS::kOutputBytes[0], NS::kOutputType[0]) != 1.0) return 6;
  }
  printf("ok %u\n", MCUQ_MODEL_CRC32);
  return 0;
}
"""


@pytest.mark.parametrize("model", ["digits", "sine"])
def test_plain_cpp_parts_compile_and_check_themselves_with_gcc(projects, tmp_path, model):
    need("g++")
    project = projects[("esp32", model)]
    harness = tmp_path / "harness.cpp"
    harness.write_text(HARNESS)
    _compile("g++", project, tmp_path, [], harness)
    proc = subprocess.run([str(tmp_path / "harness")], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    assert proc.stdout.split()[1] == str(int(manifest["model"]["crc32"], 16))


def test_plain_cpp_parts_compile_with_arm_none_eabi(projects, tmp_path):
    need("arm-none-eabi-g++")
    _compile("arm-none-eabi-g++", projects[("nucleo_f446re", "digits")], tmp_path, ["-mcpu=cortex-m4", "-mthumb", "-Os"], None)
    assert (tmp_path / "model_data.o").stat().st_size > 0


def test_damaged_array_is_caught_by_the_compiled_check(projects, tmp_path):
    need("g++")
    import shutil

    project = tmp_path / "p"
    shutil.copytree(projects[("esp32", "sine")], project)
    src = project / "src" / "model_data.cpp"
    text = src.read_text()
    marker = text.index("0x", text.index("{"))
    src.write_text(text[:marker] + ("0x01" if text[marker : marker + 4] != "0x01" else "0x02") + text[marker + 4 :])
    harness = tmp_path / "harness.cpp"
    harness.write_text(HARNESS)
    _compile("g++", project, tmp_path, [], harness)
    assert subprocess.run([str(tmp_path / "harness")], capture_output=True, check=False).returncode == 1


def test_manifest_records_versions_options_and_files(projects):
    project = projects[("esp32", "digits")]
    m = json.loads((project / "mcuq.lock.json").read_text())
    for key in ("mcuq_version", "tensorflow_version", "tflite_micro_version"):
        assert m[key]
    assert len(m["board"]["sha256"]) == 64 and len(m["model"]["sha256"]) == 64
    assert m["quantization"]["io"] == "int8"
    assert "src/model_data.cpp" in m["files"] and "src/app.cpp" in m["user_files"]
    assert {"target_bytes", "host_bytes", "host_min_bytes"} <= set(m["arena"])


@pytest.mark.slow
def test_too_big_model_names_the_numbers_and_a_board_that_fits(tmp_path):
    import keras

    inp = keras.Input((64, 64, 3))
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(2)(x)).save(tmp_path / "big.keras")
    with pytest.raises(FitError, match=r"model needs \d+ KB RAM, nucleo_f446re has 128 KB \(arena \d+ KB.*fits: ") as info:
        deploy(DeployRequest(model=str(tmp_path / "big.keras"), board="nucleo_f446re", calibration="random", out=str(tmp_path / "p")))
    assert "esp32" in str(info.value) or "nucleo_l4r5zi" in str(info.value)
    assert not (tmp_path / "p").exists()


@pytest.mark.slow
def test_big_arena_goes_to_psram_on_esp32s3(tmp_path):
    import keras

    inp = keras.Input((128, 128, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.GlobalAveragePooling2D()(x)
    keras.Model(inp, keras.layers.Dense(2)(x)).save(tmp_path / "wide.keras")
    result = deploy(
        DeployRequest(
            model=str(tmp_path / "wide.keras"),
            board="esp32s3",
            calibration="random",
            out=str(tmp_path / "p"),
            options={"calibration_samples": 8},
        )
    )
    assert result.plan.fit.arena_in_psram
    assert "heap_caps_aligned_alloc" in (tmp_path / "p" / "src" / "mcuq_model.cpp").read_text()
    assert "CONFIG_SPIRAM=y" in (tmp_path / "p" / "sdkconfig.defaults").read_text()


@pytest.mark.slow
def test_op_missing_from_board_library_is_refused(tmp_path):
    import keras

    # Chirale 2.0.0 registers no BATCH_MATMUL (its micro_mutable_op_resolver.h has no AddBatchMatMul);
    # LOG_SOFTMAX, used here before, it does have (tests/test_library_ops.py derives the list).
    inp = keras.Input((4, 8))
    x = keras.layers.Dot(axes=2, name="scores")([keras.layers.Dense(8)(inp), keras.layers.Dense(8)(inp)])
    keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(x))).save(tmp_path / "bmm.keras")
    with pytest.raises(UnsupportedOpError, match=r"BATCH_MATMUL \(AddBatchMatMul.*scores"):
        deploy(DeployRequest(model=str(tmp_path / "bmm.keras"), board="nano33ble", calibration="random", out=str(tmp_path / "p")))
    assert not (tmp_path / "p").exists()


def test_foreign_folder_is_refused_untouched(tmp_path, sine_tflite):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    with pytest.raises(OutputDirError, match="not generated by mcuq"):
        deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out)))
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_existing_project_needs_force_and_force_keeps_user_files(tmp_path, sine_tflite, digits_tflite):
    out = tmp_path / "proj"
    deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out)))
    with pytest.raises(OutputDirError, match="--force"):
        deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out)))
    (out / "src" / "app.cpp").write_text("// my edited application\n")
    (out / "src" / "sensor.cpp").write_text("// my own driver\n")
    result = deploy(DeployRequest(model=str(digits_tflite), board="esp32", out=str(out), force=True))
    assert result.ok
    assert (out / "src" / "app.cpp").read_text() == "// my edited application\n"
    assert (out / "src" / "sensor.cpp").read_text() == "// my own driver\n"
    assert "src/app.cpp" in result.write.kept_user_files
    assert model_bytes_from_c_array(out / "src" / "model_data.cpp") == digits_tflite.read_bytes()
    assert not list(tmp_path.glob(".*mcuq-*")), "staging folder left behind"


def test_force_refuses_to_overwrite_a_foreign_file_at_a_generated_path(tmp_path, sine_tflite):
    out = tmp_path / "proj"
    deploy(DeployRequest(model=str(sine_tflite), board="nano33ble", out=str(out)))
    manifest = json.loads((out / "mcuq.lock.json").read_text())
    # The user adds a file where a different board's project would generate one.
    (out / "CMakeLists.txt").write_text("# mine\n")
    with pytest.raises(OutputDirError, match="CMakeLists.txt exists but was not generated"):
        deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out), force=True))
    assert (out / "CMakeLists.txt").read_text() == "# mine\n"
    assert json.loads((out / "mcuq.lock.json").read_text()) == manifest


def test_arena_size_override(tmp_path, sine_tflite):
    result = deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(tmp_path / "p"), arena_size=20000))
    assert result.plan.arena.target_bytes == 20000 and result.plan.arena.overridden
    assert "kTensorArenaSize = 20000" in (tmp_path / "p" / "src" / "mcuq_model.h").read_text()


@pytest.mark.slow
def test_readme_default_command_uses_mcuq_toml(tmp_path):
    out = tmp_path / "default"
    proc = subprocess.run(
        [sys.executable, "-m", "mcuq", "deploy", "--board", "esp32", "--out", str(out), "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "mcuq.lock.json").read_text())
    assert manifest["model"]["name"] == "digits" and manifest["golden"]["source"].startswith("validation data")


def test_init_writes_config_once(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "mcuq", "init", "--board", "pico"], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0
    text = (tmp_path / "mcuq.toml").read_text()
    assert 'board = "pico"' in text
    again = subprocess.run([sys.executable, "-m", "mcuq", "init"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert again.returncode == 1 and "does not overwrite" in again.stderr
    assert (tmp_path / "mcuq.toml").read_text() == text


def test_runtime_options_come_from_mcuq_toml_and_the_command_line(tmp_path):
    """The runtimes' declared deploy options are mcuq.toml keys (a path relative to the file) and
    flags; the command line wins; an unknown value is refused naming the key."""
    from mcuq.cli import build_parser

    (tmp_path / "mcuq.toml").write_text('model = "m.tflite"\ntflm_source = "libs"\navr_kernels = "generic"\n')
    args = build_parser().parse_args(["deploy", "--config", str(tmp_path / "mcuq.toml")])
    assert DeployRequest.from_cli(args).backend_options == {"tflm_source": str(tmp_path / "libs"), "avr_kernels": "generic"}
    args = build_parser().parse_args(["deploy", "--config", str(tmp_path / "mcuq.toml"), "--avr-kernels", "generated"])
    assert DeployRequest.from_cli(args).backend_options["avr_kernels"] == "generated"
    (tmp_path / "mcuq.toml").write_text('model = "m.tflite"\navr_kernels = "fast"\n')
    with pytest.raises(MCUQError, match="'avr_kernels' = 'fast' is not one of 'generated', 'generic'"):
        DeployRequest.from_cli(build_parser().parse_args(["deploy", "--config", str(tmp_path / "mcuq.toml")]))


def test_generated_project_host_tests_pass(projects):
    project = projects[("esp32", "sine")]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], cwd=project, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Deploy read val.npz from outside the project: the generated test says accuracy was not checked.
    notes = [line for line in proc.stdout.splitlines() if "UserWarning: not checked: validation data: 'val.npz' (sha256 " in line]
    assert len(notes) == 1 and "is outside the project" in notes[0], proc.stdout


def test_regenerating_an_unchanged_model_is_byte_identical(tmp_path, sine_tflite):
    """No timestamps and no host paths in a project: a committed project does not churn."""
    out = tmp_path / "proj"
    deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out), data=str(SINE / "val.npz")))
    before = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(out), data=str(SINE / "val.npz"), force=True))
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    manifest = json.loads(after["mcuq.lock.json"])
    for rel in [*manifest["files"], "mcuq.lock.json"]:
        assert before[rel] == after[rel], f"{rel} changed on regeneration"
    text = b"".join(after[rel] for rel in [*manifest["files"], "mcuq.lock.json"] if not rel.endswith(".tflite"))
    for absolute in (str(tmp_path), str(ROOT)):  # (a relative path may pass through ROOT's folders, never start at /)
        assert f" {absolute}".encode() not in text and f'"{absolute}'.encode() not in text, f"{absolute} leaked"
    assert manifest["schema_version"] == 3 and manifest["validation_data"] == "val.npz"


def _sha256(path: Path) -> str:
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_paths_are_project_relative_inside_and_a_name_with_sha256_outside(tmp_path, sine_int8):
    """The project sits deeper than its inputs: nothing it records may say '../..' or name the
    folders above it; a file inside the project is named relative to it."""
    inputs = tmp_path / "secret_inputs"
    inputs.mkdir()
    model = inputs / "sine_q.tflite"
    model.write_bytes(sine_int8.tflite)
    data = inputs / "val_data.npz"
    shutil.copy(SINE / "val.npz", data)
    board = inputs / "my_board.toml"
    board.write_text((ROOT / "boards" / "nano33ble.toml").read_text().replace('id = "nano33ble"', 'id = "myboard"'))
    out = tmp_path / "deep" / "er" / "proj"
    result = deploy(DeployRequest(model=str(model), board_file=str(board), out=str(out), data=str(data)))
    assert result.ok
    manifest = result.manifest
    assert (manifest["model"]["source"], manifest["model"]["source_sha256"]) == ("sine_q.tflite", _sha256(model))
    assert (manifest["validation_data"], manifest["validation_data_sha256"]) == ("val_data.npz", _sha256(data))
    assert (manifest["board"]["file"], manifest["board"]["sha256"]) == ("my_board.toml", _sha256(board))
    assert manifest["golden"]["source"] == "validation data val_data.npz"
    texts = [(out / rel).read_bytes() for rel in [*manifest["files"], "mcuq.lock.json", "report.json"] if not rel.endswith(".tflite")]
    for leak in (b"../", b"secret_inputs", tmp_path.name.encode(), b"deep/er"):
        assert not any(leak in t for t in texts), f"{leak!r} leaked into the project"
    # A file inside the project is named relative to it (regeneration with --force).
    (out / "data").mkdir()
    shutil.copy(data, out / "data" / "val.npz")
    result = deploy(DeployRequest(model=str(model), board_file=str(board), out=str(out), data=str(out / "data" / "val.npz"), force=True))
    assert result.manifest["validation_data"] == "data/val.npz" and result.manifest["golden"]["source"] == "validation data data/val.npz"
    # validate finds it again from the project alone, from any working folder
    report = validate_project(out)
    assert report.passed and report.metrics.get("samples")
