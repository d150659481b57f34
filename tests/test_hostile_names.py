"""Issue 23: no user string ever becomes code. Projects are deployed, for both runtimes, from a
model whose file name, tensor names, signature names (and so Keras layer names) are hostile,
with hostile class labels and a --board-file whose name and PlatformIO fields are hostile.
Every generated C/C++ source must compile with -Wall -Wextra -Werror, and platformio.ini must
read (configparser and PlatformIO's own ProjectConfig) to the same sections and keys as a
benign project, each hostile PlatformIO value reading back as itself. A PlatformIO value that
cannot be written without changing the file is refused with one line naming the field."""

from __future__ import annotations

import configparser
import re
import subprocess
from pathlib import Path

import pytest
import tomllib
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import ROOT, need
from mcuq.boards import load_board_file
from mcuq.common.errors import BoardError, MCUQError

pytestmark = pytest.mark.slow

TFLM_LIB = ROOT.parent / "shared" / "tflm-libs" / "esp-tflite-micro"
FLAGS = ["-Wall", "-Wextra", "-Werror", "-DMCUQ_HOST"]
# Code that must never reach the compiler as code: wherever an escape fails, MCUQ_INJECTED
# becomes a C/C++ token (an error, and found by _code_outside_comments_and_strings).
MARK = "MCUQ_INJECTED"
PAYLOADS = [
    f'x"); {MARK}(); mcuq_log("',
    f"*/ int {MARK}; /*",
    f"\n{MARK};\n",
    f"\\\n{MARK};",
    f"??/\n{MARK};",
    f"'; {MARK}; '",
    f"\r\n#define {MARK} 1\n",
]
INJECTION = PAYLOADS[0]
HOSTILE_CHARS = list("\"'\\?*/;#$%{}[]<>&|`\n\r\t\x1b\x00\x7f") + ["*/", "/*", "//", "??/", "${", "\u202e", "é", "🙂"]
name_text = st.lists(st.sampled_from(HOSTILE_CHARS + PAYLOADS) | st.characters(codec="utf-8"), min_size=1, max_size=8).map("".join)
# A file name: no '/', no NUL, not '.' or '..' (the file system allows anything else).
file_text = name_text.map(lambda s: s.replace("/", "_").replace("\x00", "_")).filter(
    lambda s: s not in (".", "..") and len(s.encode()) < 200
)


def _toml_string(text: str) -> str:
    """A TOML basic string holding exactly ``text`` (control characters as \\u escapes)."""
    out = []
    for ch in text:
        if ch in '"\\' or ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_value(value: object) -> str:
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return repr(value).lower() if isinstance(value, bool) else repr(value)


def _schema_safe(name: str, pio_board: str, flag: str) -> tuple[str, str, str]:
    """The hostile values reduced to what the board schema accepts (mcuq.boards.TEXT_RULES):
    the name keeps quotes, slashes, brackets and '&'; the notes keep everything but control
    characters (see _board_file)."""
    safe_name = re.sub(r"[^A-Za-z0-9 ()\[\]_.,:+/&'-]", "", name)[:79]
    safe_board = re.sub(r"[^A-Za-z0-9_.-]", "", pio_board)[:60]
    safe_flag = "-D" + re.sub(r"[^A-Za-z0-9_.-]", "", flag.lstrip("-"))[:60]  # also a lib_deps entry here
    return "B" + safe_name, safe_board or "esp32dev", safe_flag


def _board_file(folder: Path, name: str, pio_board: str, flag: str, notes: str | None = None) -> Path:
    """The shipped esp32 board with a hostile name, notes and PlatformIO values."""
    base = tomllib.loads((ROOT / "boards" / "esp32.toml").read_text())
    one_line_notes = re.sub(r"[\x00-\x1f\x7f-\x9f]", "", name if notes is None else notes)[:400]
    lines = [
        'id = "hostile_board"',
        f"name = {_toml_string(name)}",
        f"notes = {_toml_string(one_line_notes)}",
        *[f"{k} = {_toml_value(v)}" for k, v in base.items() if k not in ("id", "name", "notes") and not isinstance(v, dict)],
        "[cpu]",
        *[f"{k} = {_toml_value(v)}" for k, v in base["cpu"].items()],
        "[platformio]",
        f"platform = {_toml_string(base['platformio']['platform'])}",
        f"board = {_toml_string(pio_board)}",
        'framework = "espidf"',
        "monitor_speed = 115200",
        f"lib_deps = [{_toml_string(flag)}]",
        f"build_flags = [{_toml_string(flag)}, {_toml_string('-DX=1')}]",
        "[tflm]",
        *[f"{k} = {_toml_value(v)}" for k, v in base["tflm"].items()],
    ]
    path = folder / "board.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _renamed_model(raw: bytes, layer: str, input_name: str, output_name: str) -> bytes:
    """The model with every tensor under a hostile Keras layer path and hostile signature names."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(raw, 0)
    for k, tensor in enumerate(model.subgraphs[0].tensors):
        tensor.name = f"model/{layer}/t{k}".encode()
    for sig in model.signatureDefs or []:
        for entry in sig.inputs or []:
            entry.name = input_name.encode()
        for entry in sig.outputs or []:
            entry.name = output_name.encode()
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _deploy(tmp: Path, raw: bytes, runtime: str, file_name: str, names: tuple[str, str, str], label: str, board: tuple[str, ...]) -> Path:
    from mcuq.deploy import DeployRequest, deploy

    model = tmp / f"{file_name}.tflite"
    model.write_bytes(_renamed_model(raw, *names))
    labels = tmp / "labels.json"
    import json

    labels.write_text(json.dumps([label]))
    board_file = _board_file(tmp, *board)
    out = tmp / "out"
    result = deploy(DeployRequest(model=str(model), board_file=str(board_file), out=str(out), runtime=runtime, labels=str(labels)))
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    return out


def _ini(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(inline_comment_prefixes=("#", ";"))  # as PlatformIO reads it
    parser.read(path, encoding="utf-8")
    return {s: dict(parser.items(s)) for s in parser.sections()}


def _pio_sections(path: Path) -> dict[str, list[str]]:
    config_mod = pytest.importorskip("platformio.project.config")
    config = config_mod.ProjectConfig(str(path), parse_extra=False, expand_interpolations=True)
    return {s: sorted(config.options(s)) for s in config.sections()}


def _compile_all(project: Path, runtime: str) -> list[str]:
    """Every generated .c/.cpp of src/ (main.cpp too) and test/, as the firmware would build it."""
    src = project / "src"
    files = sorted(p for p in src.iterdir() if p.suffix in (".c", ".cpp"))
    lib: list[str] = []
    if runtime == "tflm":
        if not TFLM_LIB.is_dir():
            pytest.skip(f"TFLite Micro sources not found at {TFLM_LIB}")
        lib = ["-DTF_LITE_STATIC_MEMORY"] + [
            f"-isystem{p}"
            for p in (
                TFLM_LIB,
                TFLM_LIB / "third_party" / "flatbuffers" / "include",
                TFLM_LIB / "third_party" / "gemmlowp",
                TFLM_LIB / "third_party" / "ruy",
            )
        ]
    for path in sorted(src.iterdir()):
        if path.suffix in (".c", ".cpp", ".h"):
            code = _code_outside_comments_and_strings(path)
            found = re.search(rf"\b{MARK}\b", code)  # as a token (derived identifiers may contain it)
            assert not found, f"{path.name}: user text became code: ...{code[max(0, found.start() - 200) : found.end() + 50]}"
    # The native unit test too (PlatformIO's Unity replaced by a few macros of the same names).
    shim = project / ".unity_shim"
    shim.mkdir(exist_ok=True)
    (shim / "unity.h").write_text(UNITY_SHIM)
    files += sorted(p for p in (project / "test").rglob("*") if p.suffix in (".c", ".cpp"))
    for path in files:
        cmd = ["gcc", "-std=c99"] if path.suffix == ".c" else ["g++", "-std=c++17" if runtime == "tflm" else "-std=c++11"]
        proc = subprocess.run(
            [*cmd, "-fsyntax-only", *FLAGS, *lib, f"-I{src}", f"-I{shim}", str(path)], capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"{path.name}: {proc.stderr[-3000:]}"
    return [p.name for p in files]


UNITY_SHIM = """#pragma once
#include <stdint.h>
void setUp(void);
void tearDown(void);
static int unity_failures;
#define UNITY_BEGIN() (unity_failures = 0)
#define UNITY_END() (unity_failures)
#define RUN_TEST(f) do { setUp(); f(); tearDown(); } while (0)
#define TEST_ASSERT_TRUE(c) do { if (!(c)) ++unity_failures; } while (0)
#define TEST_ASSERT_EQUAL_UINT32(a, b) TEST_ASSERT_TRUE((uint32_t)(a) == (uint32_t)(b))
#define TEST_ASSERT_EQUAL_HEX32(a, b) TEST_ASSERT_EQUAL_UINT32(a, b)
#define TEST_ASSERT_EQUAL_INT32(a, b) TEST_ASSERT_TRUE((int32_t)(a) == (int32_t)(b))
"""


def _code_outside_comments_and_strings(path: Path) -> str:
    """The file as the compiler tokenizes it (gcc removes comments, splices continued lines and
    replaces trigraphs, without expanding macros), then string and character literals removed."""
    lang = ["-x", "c", "-std=c99"] if path.suffix in (".c", ".h") else ["-x", "c++", "-std=c++11"]
    proc = subprocess.run(
        ["gcc", *lang, "-E", "-P", "-fpreprocessed", "-trigraphs", str(path)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, f"{path.name}: {proc.stderr[-2000:]}"
    return re.sub(r'"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', "", proc.stdout)


@pytest.fixture(scope="module")
def benign(tmp_path_factory, sine_int8) -> dict[str, Path]:
    """The same deploys with harmless names: the platformio.ini every hostile one must match."""
    out = {}
    for runtime in ("tflm", "c"):
        tmp = tmp_path_factory.mktemp(f"benign_{runtime}")
        out[runtime] = _deploy(tmp, sine_int8.tflite, runtime, "sine", ("dense", "x", "y"), "wave", ("ESP32", "esp32dev", "-DOK"))
    return out


def _check_hostile(
    tmp_path_factory,
    raw: bytes,
    benign: dict[str, Path],
    runtime: str,
    file_name,
    layer,
    in_name,
    out_name,
    label,
    board_name,
    pio_board,
    flag,
) -> None:
    need("gcc")
    need("g++")
    tmp = tmp_path_factory.mktemp("hostile")
    # First line of defence: a board file is input, checked field by field (mcuq.boards.TEXT_RULES).
    # A hostile value there is refused in one line naming the file and the field, before any work.
    raw_board = _board_file(tmp_path_factory.mktemp("raw_board"), board_name, pio_board, flag)
    try:
        load_board_file(raw_board)
    except BoardError as exc:
        assert "\n" not in str(exc) and "board.toml" in str(exc), str(exc)
    # Second line: what the schema lets through still reaches C, INI and Markdown only escaped.
    # notes take any one-line text, so the board's own hostile text is still rendered.
    notes = board_name
    board_name, pio_board, flag = _schema_safe(board_name, pio_board, flag)
    try:
        project = _deploy(tmp, raw, runtime, file_name, (layer, in_name, out_name), label, (board_name, pio_board, flag, notes))
    except MCUQError as exc:
        # Only a PlatformIO value may be refused (it cannot always be written as itself), in one line naming it.
        message = str(exc)
        assert "\n" not in message and "[platformio]" in message, message
        assert not (tmp / "out" / "src").exists(), "a refused deploy left files behind"
        from mcuq.project import escape

        refused = [v for v in (pio_board, flag) if _unwritable(escape, v)]
        assert refused, f"refused although every PlatformIO value can be written: {message}"
        return
    compiled = _compile_all(project, runtime)
    assert "main.cpp" in compiled and any(name.startswith("test_main") for name in compiled)
    ini = _ini(project / "platformio.ini")
    assert {s: sorted(v) for s, v in ini.items()} == {s: sorted(v) for s, v in _ini(benign[runtime] / "platformio.ini").items()}
    assert ini["env:hostile_board"]["board"] == pio_board
    assert _pio_sections(project / "platformio.ini") == _pio_sections(benign[runtime] / "platformio.ini")
    if runtime == "tflm":
        assert ini["env:hostile_board"]["lib_deps"].strip() == flag
    assert _markdown_shape(project / "README.md") == _markdown_shape(benign[runtime] / "README.md")


def _markdown_shape(path: Path) -> list[str]:
    """The README's blocks and inline markup (headings, lists, tables, code, links, emphasis,
    raw HTML): names in it must not add or remove any."""
    markdown_it = pytest.importorskip("markdown_it")
    shape = []
    for token in markdown_it.MarkdownIt("commonmark").parse(path.read_text(encoding="utf-8")):
        shape.append(token.type)
        shape += [c.type for c in token.children or [] if c.type not in ("text", "softbreak", "hardbreak")]
    return shape


def _unwritable(escape, value: str) -> bool:
    try:
        escape.ini_value(value, "x")
    except escape.EscapeError:
        return True
    return False


RUNTIME_EXAMPLE = dict(
    file_name=INJECTION,
    layer=PAYLOADS[1],
    in_name=PAYLOADS[2] + PAYLOADS[3],
    out_name="\x1b[31m" + PAYLOADS[4],
    label=PAYLOADS[5] + '"; \\',
    board_name=PAYLOADS[6] + PAYLOADS[0],
    pio_board="esp32dev;x %d",
    flag="-DA=1",
)
# One hostile-name strategy and budget for both runtimes.
HOSTILE_SETTINGS = settings(
    max_examples=2, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
HOSTILE_GIVEN = given(
    file_name=file_text,
    layer=name_text,
    in_name=name_text,
    out_name=name_text,
    label=name_text,
    board_name=name_text,
    pio_board=name_text,
    flag=name_text,
)


@HOSTILE_SETTINGS
@HOSTILE_GIVEN
@example(**RUNTIME_EXAMPLE)
@example(**{**RUNTIME_EXAMPLE, "pio_board": "esp32dev\nextra_scripts = pre:evil.py"})
def test_hostile_names_tflm(tmp_path_factory, sine_int8, benign, file_name, layer, in_name, out_name, label, board_name, pio_board, flag):
    _check_hostile(
        tmp_path_factory, sine_int8.tflite, benign, "tflm", file_name, layer, in_name, out_name, label, board_name, pio_board, flag
    )


@HOSTILE_SETTINGS
@HOSTILE_GIVEN
@example(**RUNTIME_EXAMPLE)
def test_hostile_names_c(tmp_path_factory, sine_int8, benign, file_name, layer, in_name, out_name, label, board_name, pio_board, flag):
    _check_hostile(tmp_path_factory, sine_int8.tflite, benign, "c", file_name, layer, in_name, out_name, label, board_name, pio_board, flag)
