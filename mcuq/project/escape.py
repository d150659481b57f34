"""One escaping discipline for every generated file: a helper per output context.

A user string (model file name, tensor, signature and layer names, class labels, board
fields) reaches a generated file only through the helper of the context it lands in:

- ``c_string``: a complete C/C++ string literal (quotes included). Every byte outside
  printable ASCII becomes a 3-digit octal escape (``\\ooo`` never swallows a following digit
  the way ``\\x`` swallows hex digits), ``"`` and ``\\`` are escaped and ``?`` is ``\\?`` so no
  trigraph can form.
- ``c_comment``: text for inside ``/* ... */`` or after ``//``: one line of printable ASCII,
  never ``*/``, ``/*``, ``//``, ``??`` or a trailing backslash.
- ``c_identifier``: an identifier *derived* from the text (never the text itself):
  letters, digits and single underscores, not starting with a digit, not a C/C++ keyword,
  and made unique against the names already taken.
- ``ini_value``/``ini_comment``: PlatformIO's ``platformio.ini``. A value that cannot be
  written so that it reads back the same (newline, inline comment, ``$`` interpolation) is
  refused with one line naming the field (``%`` is doubled for configparser); a comment is
  made one harmless line.
- ``c_int``, ``c_include``, ``config_token``, ``sdkconfig_line``: board values that land in
  code, ``#include <...>``, CMake/YAML and ``sdkconfig.defaults``: checked, never rewritten.
- ``markdown``/``markdown_code``: README text, outside and inside a code block.
- ``file_name``: a file name with no path separator, shell meta character or leading dot.
- ``terminal``: text for the user's terminal, control characters shown as escapes.
- ``check_path_text``: a path mcuq records in JSON, C or HTML must be UTF-8 text: refused
  before any work otherwise (a file name that is not UTF-8 arrives as lone surrogates).

Every helper returns ``Safe``, a ``str`` subclass; ``render.environment()`` refuses to render
a plain ``str`` (see ``finalize``), so a template can emit text only through these helpers.
Code that mcuq generates itself (numbers, C arrays, derived names) is marked with ``code``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mcuq.common.errors import MCUQError


class Safe(str):
    """Text already made safe for the context it is rendered into (or generated code)."""

    __slots__ = ()


class EscapeError(MCUQError):
    """A user string that cannot be written in its context without changing its meaning."""


def code(text: str) -> Safe:
    """Mark C/INI/CMake text that mcuq generated itself (no user text inside) as renderable."""
    return Safe(text)


def _utf8(text: str | bytes) -> bytes:
    if isinstance(text, bytes):
        return text
    try:
        return text.encode("utf-8", "surrogateescape")  # file names decoded by os.fsdecode
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace")


# --- C/C++ -------------------------------------------------------------------------------

_C_PLAIN = frozenset(range(0x20, 0x7F)) - {ord('"'), ord("\\"), ord("?")}


def c_string(text: str | bytes) -> Safe:
    """A C/C++ string literal, quotes included, whose bytes are exactly ``text`` in UTF-8."""
    out = ['"']
    for byte in _utf8(text):
        if byte in _C_PLAIN:
            out.append(chr(byte))
        elif byte in (ord('"'), ord("\\"), ord("?")):
            out.append("\\" + chr(byte))
        else:
            out.append(f"\\{byte:03o}")
    out.append('"')
    return Safe("".join(out))


def _visible(ch: str) -> str:
    """A character outside printable ASCII (or a backslash) spelled as text."""
    n = ord(ch)
    if n < 0x100:
        return f"\\x{n:02x}"
    return f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def c_comment(text: str) -> Safe:
    """``text`` as one line that cannot end or nest a C comment, start a ``//`` comment,
    continue onto the next line or form a trigraph."""
    out: list[str] = []
    prev = " "
    for ch in str(text):
        if not (" " <= ch <= "~") or ch == "\\":
            piece = _visible(ch)
        elif (ch == "/" and prev in "*/") or (ch == "*" and prev == "/") or (ch == "?" and prev == "?"):
            piece = _visible(ch)
        else:
            piece = ch
        out.append(piece)
        prev = piece[-1]
    result = "".join(out)
    # The template text around it is unknown: never start or end with '/' or '*'.
    if result[:1] in ("/", "*"):
        result = _visible(result[0]) + result[1:]
    if result[-1:] in ("/", "*"):
        result = result[:-1] + _visible(result[-1])
    return Safe(result)


# C11 and C++17 keywords and alternative tokens, plus the entry points a firmware defines.
C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
    alignas alignof and and_eq asm bitand bitor bool catch char16_t char32_t char8_t class compl concept
    const_cast consteval constexpr constinit co_await co_return co_yield decltype delete dynamic_cast explicit
    export false friend mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected
    public reinterpret_cast requires static_assert static_cast template this thread_local throw true try typeid
    typename using virtual wchar_t xor xor_eq NULL main setup loop app_main
    """.split()
)


def c_identifier(
    text: str, taken: set[str] | None = None, *, upper: bool = False, lower: bool = False, fallback: str = "m", keywords: bool = True
) -> Safe:
    """A C identifier derived from ``text``: runs of other characters become one ``_``,
    a leading digit (or a keyword, unless ``keywords=False`` because the caller handles them)
    gets the ``fallback`` prefix, and a name already in ``taken`` gets ``_2``, ``_3``...
    (``taken`` is updated). ``My Model-v2`` -> ``My_Model_v2``."""
    ident = re.sub(r"[^0-9A-Za-z]+", "_", str(text)).strip("_")
    if upper:
        ident = ident.upper()
    elif lower:
        ident = ident.lower()
    if not ident:
        ident = fallback.upper() if upper else fallback
    if ident[0].isdigit() or (keywords and ident in C_KEYWORDS):
        ident = f"{fallback.upper() if upper else fallback}_{ident}"
    if taken is not None:
        base, n = ident, 2
        while ident in taken:
            ident = f"{base}_{n}"
            n += 1
        taken.add(ident)
    return Safe(ident)


def c_int(value: object, field: str) -> int:
    """An integer for C code (a board's monitor speed): anything else is refused, never
    pasted as text."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise EscapeError(f"{field} = '{terminal(str(value))}': not an integer; fix the board file")
    return value


_INCLUDE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./-]*\.(h|hpp|hh)")


def c_include(path: str, field: str) -> Safe:
    """A header path for ``#include <...>``: a relative path of plain characters."""
    if not _INCLUDE_RE.fullmatch(path) or ".." in path.split("/"):
        raise EscapeError(f"{field} = '{terminal(path)}': not a plain header path (letters, digits, '_./-', ending in .h)")
    return Safe(path)


# --- INI (platformio.ini), CMake, Kconfig, YAML -------------------------------------------

_INI_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]|\$|(^|\s)[;#]|^\s|\s$")


def ini_value(text: object, field: str) -> Safe:
    """A ``platformio.ini`` value (or one line of a multi-line value) that configparser and
    PlatformIO read back unchanged (``%`` doubled for configparser's interpolation); refused
    when that is impossible (a newline, ``$`` interpolation, an inline comment)."""
    value = str(text)
    bad = _INI_FORBIDDEN.search(value)
    if bad or not value:
        why = "is empty" if not bad else f"has '{terminal(bad.group(0))}' at character {bad.start()}"
        raise EscapeError(
            f"{field} = '{terminal(value)}' {why}: a platformio.ini value is one line without control characters, "
            "'$', or ';'/'#' after a space, and without leading or trailing spaces; fix the board file"
        )
    return Safe(value.replace("%", "%%"))


def ini_comment(text: str) -> Safe:
    """Text for after ``;`` in ``platformio.ini``: one line, control characters spelled out."""
    return Safe("".join(_visible(ch) if not ch.isprintable() or ch == "\\" else ch for ch in str(text)))


_TOKEN_RE = re.compile(r"[A-Za-z0-9_~^=<>][A-Za-z0-9_.+\-/@~^=<>]*")


def config_token(text: object, field: str) -> Safe:
    """One word of CMake, YAML or a Kconfig value (component names, version ranges): a run of
    plain characters, refused otherwise."""
    value = str(text)
    if not _TOKEN_RE.fullmatch(value):
        raise EscapeError(
            f"{field} = {terminal(value)}: use only letters, digits and '_.+-/@~^=<>' (not first: '.+-/@'); fix the board file"
        )
    return Safe(value)


_SDKCONFIG_RE = re.compile(r'CONFIG_[A-Z0-9_]+=(y|n|-?[0-9]+|0x[0-9A-Fa-f]+|"[^"\\\x00-\x1f\x7f]*")')


def sdkconfig_line(text: str, field: str) -> Safe:
    """One ``CONFIG_NAME=value`` line of ``sdkconfig.defaults``."""
    if not _SDKCONFIG_RE.fullmatch(str(text)):
        raise EscapeError(f'{field}: {terminal(str(text))} is not one CONFIG_NAME=y|n|number|"text" line; fix the board file')
    return Safe(str(text))


# --- Markdown, file names, terminal -------------------------------------------------------

_MD_SPECIAL = frozenset("\\`*_{}[]<>#|~&!")


def markdown(text: str) -> Safe:
    """Inline Markdown text: one line; every character Markdown or HTML reads as markup
    (emphasis, code, links, headings, tables, raw HTML, entities) backslash-escaped, a list or
    heading marker at the start escaped, control characters spelled out."""
    out = []
    for ch in str(text):
        if not ch.isprintable():
            out.append(f"U+{ord(ch):04X}")
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    result = "".join(out)
    start = re.match(r"\s*(\d+(?=[.)])|[-+=])", result)
    if start:  # "1. x", "- x", "= x" at the start of a line would make a list or a heading
        end = start.end()
        result = result[:end] + "\\" + result[end:] if start.group(1)[0].isdigit() else result[: end - 1] + "\\" + result[end - 1 :]
    return Safe(result)


def markdown_code(text: str) -> Safe:
    """Text inside a fenced code block: one line, no backtick (which could close the fence)."""
    return Safe("".join(f"U+{ord(ch):04X}" if not ch.isprintable() or ch == "`" else ch for ch in str(text)))


def file_name(text: str, fallback: str = "model", max_length: int = 64) -> Safe:
    """A file name derived from ``text`` that needs no quoting in any shell: letters, digits
    and ``._-``, not starting with ``.`` or ``-``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).lstrip(".-")[:max_length]
    return Safe(name or fallback)


def terminal(text: str, keep_newlines: bool = False) -> str:
    """``text`` for a terminal: control characters (C0, DEL, C1, bidi overrides) shown as
    ``\\x1b``-style escapes, so a name cannot move the cursor, recolour the screen or (unless
    ``keep_newlines``: mcuq's own multi-line output) forge a line."""
    return "".join(ch if ch.isprintable() or ch == " " or (keep_newlines and ch == "\n") else _visible(ch) for ch in str(text))


def check_path_text(path: str | Path, what: str) -> None:
    """A path mcuq records (manifest, reports, generated comments) must be text: a file name
    that is not valid UTF-8 arrives as lone surrogates, which no JSON, C or HTML file can hold."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        shown = os.fsencode(str(path)).decode("utf-8", "backslashreplace")
        raise MCUQError(f"{shown}: the {what} name is not valid UTF-8; rename it (letters, digits, '-', '_', '.')") from None
