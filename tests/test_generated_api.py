"""The generated application API (issue #13 item 3): one header shape for both runtimes,
a per-model prefix, status codes instead of crashes, labels and argmax."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import DIGITS, ROOT, SINE, need
from mcuq.deploy import DeployRequest, deploy

TFLM_LIB = ROOT.parent / "shared" / "tflm-libs" / "esp-tflite-micro"
CFLAGS = ["-O1", "-Wall", "-Wextra", "-Werror", "-DMCUQ_HOST"]


@pytest.fixture(scope="session")
def api_projects(tmp_path_factory, digits_tflite, sine_tflite) -> dict[str, Path]:
    """digits for TFLite Micro (esp32) and plain C (uno), sine for plain C."""
    base = tmp_path_factory.mktemp("api")
    out = {}
    for key, model, board, data in (
        ("digits_tflm", digits_tflite, "esp32", DIGITS / "val.npz"),
        ("digits_c", digits_tflite, "uno", DIGITS / "val.npz"),
        ("sine_c", sine_tflite, "uno", SINE / "val.npz"),
    ):
        result = deploy(DeployRequest(model=str(model), board=board, out=str(base / key), data=str(data)))
        assert result.ok, [c for c in result.validation.checks if not c.passed]
        out[key] = base / key
    return out


def _compile(sources: list[Path], include: list[Path], out_dir: Path) -> list[Path]:
    objects = []
    for src in sources:
        obj = out_dir / f"{src.parent.parent.name}_{src.stem}.o"
        cmd = ["gcc", "-std=c99"] if src.suffix == ".c" else ["g++", "-std=c++11"]
        proc = subprocess.run(
            [*cmd, *CFLAGS, *[f"-I{i}" for i in include], "-c", str(src), "-o", str(obj)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{src.name}: {proc.stderr[-2000:]}"
        objects.append(obj)
    return objects


def _link_and_run(objects: list[Path], exe: Path) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["g++", *map(str, objects), "-o", str(exe), "-lm"], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)


def test_one_app_cpp_builds_against_both_runtimes(api_projects, tmp_path):
    need("gcc")
    tflm, c = api_projects["digits_tflm"] / "src", api_projects["digits_c"] / "src"
    assert (tflm / "app.cpp").read_bytes() == (c / "app.cpp").read_bytes()
    assert (tflm / "digits_int8_model.h").read_text().count("digits_int8_") > 10
    # Plain C: the whole firmware (main.cpp, app.cpp, model, self-test) on the host, run.
    objects = _compile(sorted(c.glob("*.c")) + [c / "main.cpp", c / "app.cpp"], [c], tmp_path)
    run = _link_and_run(objects, tmp_path / "fw")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "selftest PASS" in run.stdout and "app: probs: best" in run.stdout
    # TFLite Micro: the same app.cpp compiles against the TFLM project's header; with the
    # library sources present, the wrapper itself is compiled against the real headers.
    _compile([tflm / "app.cpp"], [tflm], tmp_path)
    if not TFLM_LIB.is_dir():
        pytest.skip(f"TFLite Micro sources not found at {TFLM_LIB} (../shared/tflm-libs)")
    lib = [
        f"-isystem{p}"
        for p in (
            TFLM_LIB,
            TFLM_LIB / "third_party" / "flatbuffers" / "include",
            TFLM_LIB / "third_party" / "gemmlowp",
            TFLM_LIB / "third_party" / "ruy",
        )
    ]
    for src in ("mcuq_model.cpp", "mcuq_selftest.cpp", "main.cpp", "golden_vectors.cpp", "model_data.cpp"):
        proc = subprocess.run(
            ["g++", "-std=c++17", "-fsyntax-only", *CFLAGS, "-DTF_LITE_STATIC_MEMORY", f"-I{tflm}", *lib, str(tflm / src)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"{src}: {proc.stderr[-2000:]}"


DRIVER = r"""
#include <stdio.h>
#include "digits_int8_model.h"
#include "sine_int8_model.h"
#include "mcuq_platform.h"

extern "C" void mcuq_hw_print(const char* text) { puts(text); }
extern "C" uint32_t mcuq_hw_ticks(void) { return 0; }
extern "C" const char* const mcuq_hw_tick_unit = "us";

int main() {
  /* Before init: no tensor, a status, never a crash. */
  if (digits_int8_input(0) != NULL || sine_int8_output(0) != NULL) return 10;
  if (digits_int8_invoke() != MCUQ_ERR_NOT_INITIALIZED || digits_int8_argmax(0) != -1) return 11;
  float x = 1.0f;
  if (sine_int8_set_input_float(0, &x, 1) != MCUQ_ERR_NOT_INITIALIZED) return 12;
  if (digits_int8_init() != MCUQ_OK || sine_int8_init() != MCUQ_OK) return 13;
  if (digits_int8_input(0) == NULL || digits_int8_input(1) != NULL || digits_int8_output_info(1) != NULL) return 14;
  if (digits_int8_selftest() != MCUQ_OK || sine_int8_selftest() != MCUQ_OK) return 15;
  /* Both models in one binary, each with its own buffers. */
  if (sine_int8_set_input_float(0, &x, 1) != MCUQ_OK || sine_int8_invoke() != MCUQ_OK) return 16;
  float y = 0.0f;
  sine_int8_get_output_float(0, &y, 1);
  int top[3];
  float scores[3];
  if (digits_int8_invoke() != MCUQ_OK || digits_int8_top_k(0, 3, top, scores) != 3) return 17;
  if (top[0] != digits_int8_argmax(0) || scores[0] < scores[1] || scores[1] < scores[2]) return 18;
  printf("sin(1)=%.3f digits top=%d,%d,%d\n", (double)y, top[0], top[1], top[2]);
  return 0;
}
"""


def test_two_generated_models_link_into_one_host_binary(api_projects, tmp_path):
    need("gcc")
    digits, sine = api_projects["digits_c"] / "src", api_projects["sine_c"] / "src"
    assert (digits / "mcuq_kernels.c").read_bytes() == (sine / "mcuq_kernels.c").read_bytes()
    assert (digits / "mcuq_api.h").read_bytes() == (sine / "mcuq_api.h").read_bytes()
    objects = []
    for src, own in ((digits, "digits"), (sine, "sine")):
        names = ["mcuq_model.c", "mcuq_golden.c", "mcuq_selftest.c", "mcuq_api.c"]
        folder = tmp_path / own
        folder.mkdir()
        objects += _compile([src / n for n in names], [src], folder)
    objects += _compile([digits / "mcuq_kernels.c"], [digits], tmp_path)  # the kernels: one shared copy
    driver = tmp_path / "driver" / "src" / "main.cpp"
    driver.parent.mkdir(parents=True)
    driver.write_text(DRIVER)
    shutil.copy(digits / "mcuq_platform.h", driver.parent)
    objects += _compile([driver], [driver.parent, digits, sine], tmp_path)
    run = _link_and_run(objects, tmp_path / "two")
    assert run.returncode == 0, f"exit {run.returncode}: {run.stdout}{run.stderr}"
    assert run.stdout.count("selftest PASS") == 2
    value = float(run.stdout.split("sin(1)=")[1].split()[0])
    assert abs(value - 0.841) < 0.15


TFLM_DRIVER = r"""
#include <stdio.h>
#include "hand_model.h"
#include "wave_model.h"

int main() {
  /* Two TFLite Micro interpreters in one program, each with its own arena and resolver. */
  if (hand_invoke() != MCUQ_ERR_NOT_INITIALIZED || wave_input(0) != NULL) return 10;
  if (hand_init() != MCUQ_OK || wave_init() != MCUQ_OK) return 11;
  /* Each self-test checks its own golden vectors bit for bit; hand runs again after wave
     to show that the second interpreter did not disturb the first. */
  if (hand_selftest() != MCUQ_OK) return 12;
  if (wave_selftest() != MCUQ_OK) return 13;
  if (hand_selftest() != MCUQ_OK) return 14;
  printf("two TFLite Micro models PASS\n");
  return 0;
}
"""


def test_two_tflm_models_link_into_one_host_binary(digits_tflite, sine_tflite, tmp_path):
    """Two TFLite Micro projects (--name hand, --name wave), their src/ compiled as they are
    and linked with one x86 build of the board's library; both run and pass their golden vectors."""
    from mcuq.backends.tflm import toolchain as tb

    need("g++")
    if not TFLM_LIB.is_dir():
        pytest.skip(f"TFLite Micro sources not found at {TFLM_LIB} (../shared/tflm-libs)")
    projects, ops = {}, set()
    for name, model in (("hand", digits_tflite), ("wave", sine_tflite)):
        # A roomy arena: the declared one is sized for the 32-bit ESP32, this build is x86-64.
        result = deploy(DeployRequest(model=str(model), board="esp32", name=name, out=str(tmp_path / name), arena_size=32 * 1024))
        assert result.ok, [c for c in result.validation.checks if not c.passed]
        projects[name] = tmp_path / name / "src"
        ops |= set(result.lock.model.ops)
    assert (projects["hand"] / "mcuq_model.cpp").is_file() and (projects["wave"] / "mcuq_model.cpp").is_file()
    tree = tb.find_library_tree("esp-tflite-micro", None, TFLM_LIB.parent)
    units = [([p for p in tb.project_sources(src.parent) if p.name not in ("main.cpp", "app.cpp")], [src]) for src in projects.values()]
    driver = tmp_path / "driver" / "main.cpp"
    driver.parent.mkdir()
    driver.write_text(TFLM_DRIVER)
    units.append(([driver], list(projects.values())))
    fw = tb.build_units(units, tree, tb.HOST, sorted(ops))
    try:
        run = tb.run_firmware(fw)
    finally:
        fw.close()
    assert run.returncode == 0, f"exit {run.returncode}: {run.log[-2000:]}"
    assert run.log.count("mcuq: selftest PASS") == 3 and "FAIL" not in run.log, run.log
    assert len(re.findall(r"mcuq: golden \d+ PASS max_abs_diff=0\b", run.log)) == 12, run.log
    assert "two TFLite Micro models PASS" in run.log


def test_app_cpp_buffer_follows_the_model_and_a_hand_sized_one_fails_the_build(api_projects, tmp_path):
    """app.cpp is the user's (never rewritten): its input buffer is sized by the generated header,
    and when someone sizes it by hand too small for the model, the build stops with the reason."""
    need("g++")
    src = api_projects["digits_c"] / "src"
    app = (src / "app.cpp").read_text()
    assert "input_values[DIGITS_INT8_MAX_INPUT_SIZE]" in app
    assert "#define DIGITS_INT8_MAX_INPUT_SIZE 64u" in (src / "digits_int8_model.h").read_text()
    shrunk = tmp_path / "app.cpp"
    shrunk.write_text(app.replace("input_values[DIGITS_INT8_MAX_INPUT_SIZE]", "input_values[16]"))
    cmd = ["g++", "-std=c++11", "-fsyntax-only", "-DMCUQ_HOST", f"-I{src}"]
    assert subprocess.run([*cmd, str(src / "app.cpp")], capture_output=True, text=True, check=False).returncode == 0
    proc = subprocess.run([*cmd, str(shrunk)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "smaller than the model's largest input" in proc.stderr


# PlatformIO's Unity, as far as the generated native tests use it: runs, counts and names failures.
UNITY = """#pragma once
#include <stdint.h>
#include <stdio.h>
void setUp(void);
void tearDown(void);
static int unity_failures;
#define UNITY_BEGIN() (unity_failures = 0)
#define UNITY_END() (printf("unity failures %d\\\\n", unity_failures), unity_failures)
#define RUN_TEST(f) do { setUp(); f(); tearDown(); } while (0)
#define TEST_ASSERT_TRUE(c) do { if (!(c)) { ++unity_failures; printf("FAIL %s:%d\\\\n", __FILE__, __LINE__); } } while (0)
#define TEST_ASSERT_EQUAL_UINT32(a, b) TEST_ASSERT_TRUE((uint32_t)(a) == (uint32_t)(b))
#define TEST_ASSERT_EQUAL_HEX32(a, b) TEST_ASSERT_EQUAL_UINT32(a, b)
#define TEST_ASSERT_EQUAL_INT32(a, b) TEST_ASSERT_TRUE((int32_t)(a) == (int32_t)(b))
"""


def _run_native_test(project: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`pio test -e native` without PlatformIO: the sources its build_src_filter names plus
    test/test_native, built with the env's own flags (and -Werror) and run."""
    import configparser

    ini = configparser.ConfigParser()
    ini.read(project / "platformio.ini")
    env = ini["env:native"]
    sources = [project / "src" / name for name in re.findall(r"\+<([^>]+)>", env["build_src_filter"])]
    test = next((project / "test" / "test_native").glob("test_main.*"))
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "unity.h").write_text(UNITY)
    compiler = "gcc" if test.suffix == ".c" else "g++"
    exe = tmp_path / "native"
    cmd = [compiler, *env["build_flags"].split(), "-Werror", f"-I{project / 'src'}", f"-I{tmp_path}", *map(str, sources), str(test)]
    build = subprocess.run([*cmd, "-o", str(exe), "-lm"], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr[-2000:]
    return subprocess.run([str(exe)], capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("key", ["digits_c", "digits_tflm"])
def test_native_test_checks_the_one_quantize_helper_the_app_uses(api_projects, tmp_path, key):
    """One float->int8 implementation per project (mcuq_api.h, behind <prefix>_set_input_float),
    and the generated native test checks that one: it passes as generated and fails when the
    helper truncates instead of rounding."""
    need("gcc")
    need("g++")
    project = api_projects[key]
    files = [p for p in (project / "src").iterdir() if p.suffix in (".c", ".cpp", ".h")]
    assert [p.name for p in files if "roundf(" in p.read_text()] == ["mcuq_api.h"]
    assert not (project / "src" / "quant_helpers.h").exists()
    run = _run_native_test(project, tmp_path / "as_generated")
    assert run.returncode == 0 and "unity failures 0" in run.stdout, run.stdout
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    api = broken / "src" / "mcuq_api.h"
    text = api.read_text()
    assert text.count("roundf(x / t->scale)") == 1
    api.write_text(text.replace("roundf(x / t->scale)", "(float)(int32_t)(x / t->scale)"))
    run = _run_native_test(broken, tmp_path / "b")
    assert run.returncode != 0 and "FAIL" in run.stdout, run.stdout


def _macros(project: Path) -> dict[str, str]:
    """Every macro the generated project defines (#define in its sources, -D in platformio.ini
    and CMake files, outside comments) -> the file defining it; include guards left out."""
    found: dict[str, str] = {}
    for path in sorted(p for p in project.rglob("*") if p.is_file() and p.suffix in (".c", ".cpp", ".h", ".ini", ".txt")):
        text = path.read_text()
        guards = set(re.findall(r"#ifndef\s+(\w+)\s*\n\s*#define\s+\1\b", text))
        defined = set(re.findall(r"^\s*#\s*define\s+(\w+)", text, re.M)) - guards
        if path.suffix in (".ini", ".txt"):
            lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith((";", "#"))]
            defined |= {m for ln in lines for m in re.findall(r"-D(\w+)", ln)}
        for macro in sorted(defined):
            found.setdefault(macro, path.name)
    return found


@pytest.mark.parametrize("key", ["digits_c", "digits_tflm"])
def test_every_macro_the_project_defines_is_read(api_projects, key):
    """No macro that nothing reads (the MCUQ_BOARD_<id>, MCUQ_NATIVE kind): each one the
    sources or platformio.ini define is used in some generated file. The model header's
    <PREFIX>_* names are the application's API, and -DMCUQ_NO_LINK the documented option."""
    project = api_projects[key]
    texts = {p: p.read_text() for p in project.rglob("*") if p.is_file() and p.suffix in (".c", ".cpp", ".h")}
    prefix = "DIGITS_INT8_"
    unread = []
    for macro, where in _macros(project).items():
        uses = sum(len(re.findall(rf"\b{macro}\b", t)) for t in texts.values())
        defined = sum(len(re.findall(rf"#\s*define\s+{macro}\b", t)) for t in texts.values())
        if uses - defined <= 0 and not macro.startswith(prefix):
            unread.append(f"{macro} ({where})")
    assert not unread, unread
    assert "MCUQ_NO_LINK" in (project / "platformio.ini").read_text()  # the option is documented there


def test_weight_arrays_are_named_after_layers_on_readable_lines(api_projects):
    """mcuq_model.c: each constant array named after its Keras layer and role, wrapped to short
    lines (never a whole layer on one line); golden vectors wrapped alike in both runtimes; the
    op that writes the model output is labelled with its readable name, not the converter's."""
    src = api_projects["digits_c"] / "src"
    model = (src / "mcuq_model.c").read_text()
    arrays = re.findall(r"^static const \w+ (\w+)\[\d+\]", model, re.M)
    for layer in ("conv1", "dw2", "pw2", "fc1", "probs"):
        assert {f"{layer}_weights", f"{layer}_bias", f"{layer}_multipliers", f"{layer}_shifts"} <= set(arrays), arrays
    assert not [a for a in arrays if re.fullmatch(r"[a-z]+\d+(_\d+)?", a)], arrays
    assert re.search(r"^static const int8_t fc1_weights\[8192\][^\n]*= \{\n(  (-?\d+, ){15}-?\d+,\n){512}\};", model, re.M)
    assert "/* op 7 SOFTMAX ('probs') */" in model
    assert max(len(line) for line in model.splitlines()) <= 110  # kernel calls wrapped too
    for project in (api_projects["digits_c"], api_projects["digits_tflm"]):
        for path in (project / "src").iterdir():
            text = path.read_text() if path.suffix in (".c", ".cpp", ".h") else ""
            assert "StatefulPartitionedCall" not in text and "serving_default" not in text, path.name
            if path.name in ("mcuq_model.c", "mcuq_golden.c", "golden_vectors.cpp", "model_data.cpp"):
                assert max(len(line) for line in text.splitlines() if re.match(r"\s+-?\d", line)) <= 100, path.name
