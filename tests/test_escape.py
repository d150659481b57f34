"""The escaping helpers (mcuq.project.escape), each checked against the real reader of its
context: gcc/g++ for C strings, comments and identifiers, configparser and PlatformIO for
platformio.ini, markdown-it for Markdown, the render environment for the raw-text guard."""

from __future__ import annotations

import configparser
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import need
from mcuq.project import escape
from mcuq.project.escape import EscapeError, Safe

HOSTILE = [
    "",
    'x"); evil(); mcuq_log("',
    "*/ int evil; /*",
    "a\nb\r\nc",
    "line\\",
    "trail??/",
    "??=??(??)??'??<??!??>??-",
    "\x1b[31mred\x1b[0m",
    "\x00nul\x00",
    "\\x41BC",  # a hex escape would swallow the following hex digits
    "\x7f\x80\xff",
    "é ü 日本 🙂",
    "\u202eevil\u202c",
    "%s%n%d",
    "// comment",
    "/* open",
    "a*/b/*c//d",
    "\t\v\f",
    "caf\udce9.tflite",  # os.fsdecode of a Latin-1 file name: the C string holds the original byte
]
# Printable text plus the characters C, INI and Markdown care about.
names = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list('"\\?*/;#$%{}[]\n\r\t\x1b\x00`<>&_|')), max_size=30)


def _run_c(tmp_path: Path, body: str, lang: str = "c") -> bytes:
    """Compile a program with warnings as errors (C99 keeps trigraphs on) and return its stdout."""
    src = tmp_path / ("t.c" if lang == "c" else "t.cpp")
    src.write_text("#include <stdio.h>\n" + body)
    compiler = ["gcc", "-std=c99"] if lang == "c" else ["g++", "-std=c++11"]
    proc = subprocess.run(
        [*compiler, "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", str(src), "-o", str(tmp_path / "t")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:] + "\n" + body[:3000]
    return subprocess.run([str(tmp_path / "t")], capture_output=True, check=True, timeout=30).stdout


def _strings_program(items: list[str]) -> str:
    lines = ["int main(void) {"]
    for item in items:
        lit = escape.c_string(item)
        lines.append(f'  {{ static const char s[] = {lit}; fwrite(s, 1, sizeof(s) - 1, stdout); fputs("|END|", stdout); }}')
    lines.append("  return 0;\n}\n")
    return "\n".join(lines)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_c_string_round_trips_hostile_text_through_gcc(tmp_path, lang):
    need("gcc" if lang == "c" else "g++")
    out = _run_c(tmp_path, _strings_program(HOSTILE), lang)
    assert out.split(b"|END|")[:-1] == [_utf8(s) for s in HOSTILE]
    for s in HOSTILE:
        lit = escape.c_string(s)
        assert isinstance(lit, Safe) and lit.startswith('"') and lit.endswith('"')
        # printable ASCII; the only escapes: \" \\ \? and exactly three octal digits
        assert re.fullmatch(r'"(?:[ !#->@-\[\]-~]|\\[0-7]{3}|\\["\\?])*"', lit), lit
    assert re.fullmatch(r'"[\x20-\x7e]*"', escape.c_string("\ud800"))  # any lone surrogate: no crash


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(names, min_size=1, max_size=20))
def test_c_string_round_trips_random_text(tmp_path, items):
    need("gcc")
    out = _run_c(tmp_path, _strings_program(items))
    assert out.split(b"|END|")[:-1] == [_utf8(s) for s in items]


def _comments_program(items: list[str]) -> str:
    """Each text in a block comment and a line comment, each followed by code that must run."""
    lines = ["int main(void) {", "  int seen = 0;"]
    for k, item in enumerate(items):
        text = escape.c_comment(item)
        lines += [f"  /* {text} */ seen += {k};", f"  // '{text}'", f"  seen += {k};", f"  //{text}", f"  seen += {k};"]
    lines += ['  printf("%d", seen);', "  return 0;", "}"]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("lang", ["c", "cpp"])
def test_c_comment_never_ends_the_comment_or_the_line(tmp_path, lang):
    need("gcc" if lang == "c" else "g++")
    out = _run_c(tmp_path, _comments_program(HOSTILE), lang)
    assert int(out) == 3 * sum(range(len(HOSTILE)))  # every line of code after a comment ran
    for s in HOSTILE:
        text = escape.c_comment(s)
        assert re.fullmatch(r"[\x20-\x7e]*", text) and not text.endswith("\\")
        assert not any(bad in text for bad in ("*/", "/*", "//", "??"))
    assert escape.c_comment("plain name_1.tflite") == "plain name_1.tflite"  # readable when harmless


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(names, min_size=1, max_size=20))
def test_c_comment_random_text(tmp_path, items):
    need("gcc")
    out = _run_c(tmp_path, _comments_program(items))
    assert int(out) == 3 * sum(range(len(items)))


def test_c_identifier_is_derived_unique_and_compiles(tmp_path):
    need("g++")
    taken: set[str] = set()
    sources = [*HOSTILE, "int", "class", "main", "1abc", "_Bool", "a__b", "x", "x", "x_2", "ÄÖ", "__reserved"]
    idents = [escape.c_identifier(s, taken) for s in sources]
    assert len(set(idents)) == len(idents) == len(taken)
    for ident in idents:
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*", ident), ident
        assert ident not in escape.C_KEYWORDS
    assert escape.c_identifier("My Model-v2") == "My_Model_v2"
    body = "\n".join(f"static int {i} = {k};" for k, i in enumerate(idents))
    body += "\nint main(void) { return " + " + ".join(idents) + " - " + str(sum(range(len(idents)))) + "; }\n"
    _run_c(tmp_path, body, "c")
    _run_c(tmp_path, body, "cpp")


def _pio_like_parser() -> configparser.ConfigParser:
    """What PlatformIO's ProjectConfig uses (inline comments, default % interpolation)."""
    return configparser.ConfigParser(inline_comment_prefixes=("#", ";"))


@settings(max_examples=200, deadline=None)
@given(value=names | st.sampled_from(HOSTILE + ["a ; b", "a;b", "50%", "${sysenv.HOME}", "#x", " x", "x "]))
def test_ini_value_reads_back_or_is_refused(value):
    try:
        text = escape.ini_value(value, "[platformio] board")
    except EscapeError as exc:
        assert "[platformio] board" in str(exc) and "\n" not in str(exc)
        return
    parser = _pio_like_parser()
    parser.read_string(f"[env:x]\nboard = {text}\nother = 1\n")
    assert parser.get("env:x", "board") == value
    assert parser.options("env:x") == ["board", "other"]


def test_ini_value_refuses_what_would_change_the_file():
    for value in ("esp32dev\nextra_scripts = pre:evil.py", "a ; b", "${sysenv.HOME}", "#x", "", " x"):
        with pytest.raises(EscapeError):
            escape.ini_value(value, "[platformio] board")
    assert escape.ini_value("espressif32@6.13.0", "f") == "espressif32@6.13.0"
    assert escape.ini_value("a%b", "f") == "a%%b"


def test_ini_comment_is_one_line():
    for s in HOSTILE:
        text = escape.ini_comment(s)
        assert text.isprintable() and "\n" not in text and "\r" not in text


def test_markdown_text_renders_as_itself():
    markdown_it = pytest.importorskip("markdown_it")
    import html

    md = markdown_it.MarkdownIt("commonmark")
    printable = [s for s in HOSTILE if s.isprintable()] + [
        "*bold* _it_ `code` [link](http://x) <b>html</b> &amp; # h",
        "1. item",
        "- item",
        "+ item",
        "a | b | c",
        "~~strike~~",
        "![img](x.png)",
    ]
    for s in printable:
        rendered = md.render(escape.markdown(s)).strip()
        expected = f"<p>{html.escape(s, quote=True)}</p>" if s.strip() else ""
        assert rendered.replace("&quot;", '"') == expected.replace("&quot;", '"').replace("&#x27;", "'"), (s, rendered)
    for s in HOSTILE:
        assert "\n" not in escape.markdown(s) and "\n" not in escape.markdown_code(s) and "`" not in escape.markdown_code(s)


def test_file_name_needs_no_shell_quoting():
    for s in [*HOSTILE, "../../etc/passwd", "-rf", ".hidden", "a b$(x)`y`;z"]:
        name = escape.file_name(s)
        assert shlex.quote(name) == name and "/" not in name and not name.startswith((".", "-")) and name


def test_terminal_shows_control_characters():
    assert escape.terminal("a\x1b[31mb\nc\u202ed") == "a\\x1b[31mb\\x0ac\\u202ed"
    assert escape.terminal("normal name_1 é") == "normal name_1 é"


def test_the_render_environment_refuses_raw_text():
    from mcuq.project.render import RawTextError, environment

    env = environment()
    assert env.from_string("{{ x }} {{ n }} {{ s }}").render(x=escape.c_string("a"), n=3, s=[1, 2]) == '"a" 3 [1, 2]'
    assert env.from_string("{{ x | c_comment }}").render(x="a*/b") == "a*\\x2fb"
    with pytest.raises(RawTextError):
        env.from_string("/* {{ name }} */").render(name="*/ evil(); /*")
    with pytest.raises(RawTextError):
        env.from_string("{{ name | upper }}").render(name=escape.c_identifier("ok"))  # a str method drops the mark


@pytest.mark.slow
def test_inspect_prints_hostile_names_escaped(sine_int8, tmp_path, capsys):
    """`mcuq inspect` on a model whose names carry terminal escape sequences and newlines."""
    from test_hostile_names import _renamed_model

    from mcuq.cli import main

    model = tmp_path / "m\x1b]0;title\x07.tflite"
    model.write_bytes(_renamed_model(sine_int8.tflite, "lay\x1b[2Jer", "in\x1b[31m\nFAKE LINE", "out\u202e"))
    assert main(["inspect", str(model)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out and "FAKE LINE" in out
    assert "\nFAKE LINE" not in out and "in\\x1b[31m\\x0aFAKE LINE" in out and "lay\\x1b[2Jer" in out
    assert main(["inspect", str(model), "--json"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and json.loads(text)["inputs"][0]["name"] == "in\x1b[31m\nFAKE LINE"
