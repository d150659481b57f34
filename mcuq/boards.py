"""Boards are data: one TOML file per board in ``boards/``, checked against a schema on load.

A typo in a board file must fail loudly with the file and the key, not generate a project
that fails to build an hour later on the user's desk. This module holds the generic part of
a board (sizes, ``[platformio]``, ``[cpu]``); a table owned by one runtime (``[tflm]``) is
declared by that backend (``BOARD_SECTION`` in its ``section.py``, found through the registry,
which loads no backend) and parsed here against that declaration. Whether ``default_runtime``
names a registered runtime that can serve the board is checked where runtimes are resolved
(``mcuq.backends.base.backend_for``), so the code dependency runs one way, backends -> boards.
"""

from __future__ import annotations

import hashlib
import re
import types
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar, get_args, get_origin, get_type_hints

from mcuq.common.compat import tomllib
from mcuq.common.errors import BoardError
from mcuq.common.files import BOARD_LIMIT, read_regular
from mcuq.common.resources import boards_dir

ARCHITECTURES = ("avr8", "armv6m", "armv7em", "armv8m", "xtensa-lx6", "xtensa-lx7", "riscv32")


@dataclass(frozen=True)
class PlatformIOSection:
    """[platformio] of a board file: what goes into platformio.ini (versions pinned)."""

    platform: str
    board: str
    framework: str
    monitor_speed: int = 115200
    lib_deps: list[str] = field(default_factory=list)
    build_flags: list[str] = field(default_factory=list)
    build_unflags: list[str] = field(default_factory=list)
    lib_compat_mode: str | None = None
    sdkconfig: list[str] = field(default_factory=list)


EMULATORS = ("simavr", "qemu", "none")


@dataclass(frozen=True)
class CpuSection:
    """[cpu] of a board file, the one CPU table: how code is compiled and emulated for this processor
    (compiler flags, DSP extension, which emulator and qemu machine). Shared by every runtime: the
    plain-C self-test and the TFLite Micro library build run on the same CPU."""

    core: str
    cflags: list[str]
    emulator: str  # one of EMULATORS
    dsp: bool = False
    qemu_machine: str | None = None


class BoardSectionType(Protocol):
    """What a backend declares for its own table of a board file (``BOARD_SECTION`` in its
    ``section.py``, e.g. ``[tflm]``): a frozen dataclass whose fields are the table's schema.

    ``TABLE`` names the table; ``TEXT_RULES`` (key -> (pattern, what it allows)) and ``CHOICES``
    (key -> allowed values) constrain its values; ``check`` runs what needs more than that (a
    library id that must exist) and raises :class:`BoardError` naming ``where``."""

    TABLE: ClassVar[str]
    TEXT_RULES: ClassVar[dict[str, tuple[str, str]]]
    CHOICES: ClassVar[dict[str, tuple[str, ...]]]

    def check(self, where: str) -> None: ...


S = TypeVar("S", bound=BoardSectionType)


@dataclass(frozen=True)
class Board:
    """One board file. Its fields are the file's schema (``schema_of``): declare a new key here only.

    The tables owned by a runtime (``[tflm]``) are not fields: each registered backend declares
    its table's dataclass, and ``runtime_sections`` holds the parsed ones by table name (read them
    typed with :meth:`section`)."""

    id: str
    name: str
    mcu: str
    architecture: str
    word_size: int
    clock_mhz: int
    sram_bytes: int
    flash_bytes: int
    framework_ram_bytes: int
    framework_flash_bytes: int
    default_runtime: str
    platformio: PlatformIOSection
    psram_bytes: int = 0
    notes: str = ""
    cpu: CpuSection | None = None
    runtime_sections: Mapping[str, BoardSectionType] = field(default_factory=dict, compare=False)
    path: Path = field(default=Path(), compare=False)
    sha256: str = field(default="", compare=False)

    @property
    def ram_budget(self) -> int:
        """RAM left to the model after the framework (internal SRAM only)."""
        return self.sram_bytes - self.framework_ram_bytes

    @property
    def flash_budget(self) -> int:
        return self.flash_bytes - self.framework_flash_bytes

    @property
    def is_esp_idf(self) -> bool:
        return self.platformio.framework == "espidf"

    @property
    def needs_progmem(self) -> bool:
        return self.architecture == "avr8"

    def section(self, kind: type[S]) -> S | None:
        """The board's table of type ``kind`` (a backend's ``BOARD_SECTION``), None when the file has none."""
        value = self.runtime_sections.get(kind.TABLE)
        return value if isinstance(value, kind) else None

    def as_json(self) -> dict[str, object]:
        """The board as ``mcuq boards --json`` prints it: the file's values (defaults filled in)."""
        data: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_IN_FILE}
        data["platformio"] = asdict(self.platformio)
        data["cpu"] = asdict(self.cpu) if self.cpu else None
        for table in board_section_types():
            value = self.runtime_sections.get(table)
            data[table] = asdict(value) if is_dataclass(value) and not isinstance(value, type) else None
        return {**data, "file": str(self.path), "sha256": self.sha256}


Schema = dict[str, tuple[type, bool]]
NOT_IN_FILE = ("path", "sha256", "runtime_sections")  # filled in by the loader
TABLES: dict[str, type] = {"platformio": PlatformIOSection, "cpu": CpuSection}  # the generic tables


def board_section_types() -> dict[str, type[BoardSectionType]]:
    """table name -> the dataclass a registered backend declares for it (``BOARD_SECTION``)."""
    from mcuq.backends.registry import board_sections  # data only: the registry and each section.py

    kinds: list[type[BoardSectionType]] = board_sections()
    return {kind.TABLE: kind for kind in kinds}


def schema_of(cls: type) -> Schema:
    """key -> (type, required), read off a dataclass: each board field is declared once, on the class.
    A field typed with a table's dataclass is a TOML table (a dict) in the file."""
    hints = get_type_hints(cls)
    schema: Schema = {}
    for f in fields(cls):
        if f.name in NOT_IN_FILE:
            continue
        hint = hints[f.name]
        kinds = [k for k in get_args(hint) if k is not type(None)] if isinstance(hint, types.UnionType) else [hint]
        kind = get_origin(kinds[0]) or kinds[0]
        required = f.default is MISSING and f.default_factory is MISSING and not isinstance(hint, types.UnionType)
        schema[f.name] = (dict if f.name in TABLES else kind, required)
    return schema


def _check_section(data: Mapping[str, object], schema: Schema, where: str) -> None:
    for key, (kind, required) in schema.items():
        if key not in data:
            if required:
                raise BoardError(f"{where}: missing required key '{key}'")
            continue
        value = data[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise BoardError(f"{where}: '{key}' must be {getattr(kind, '__name__', kind)}, got {type(value).__name__} {value!r}")
    unknown = sorted(set(data) - set(schema))
    if unknown:
        raise BoardError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(schema)}")


# Every text value of a board file reaches code or config (C strings, platformio.ini, sdkconfig,
# idf_component.yml, file names): each key has a strict character set, so a board file can only
# describe a board, never add a line, a comment or a command. (key, pattern, what it allows).
# A backend's own table declares its rules on its BOARD_SECTION (keys there without the table).
FLAG = r"-[A-Za-z0-9_.=+,/:-]*"  # a compiler flag: starts with '-', no quotes, spaces, '!' or '$'
FLAG_RULE = "flags starting with '-' (letters, digits, _.=+,/:-; no quotes, spaces, '!' or '$')"
TEXT_RULES: dict[str, tuple[str, str]] = {
    "id": (r"[a-z0-9][a-z0-9_-]{0,39}", "lower-case letters, digits, '_' and '-' (up to 40, starting with a letter or digit)"),
    "name": (r"[A-Za-z0-9][A-Za-z0-9 ()\[\]_.,:+/&'-]{0,79}", "letters, digits, spaces and ()[]_.,:+/&'- (up to 80)"),
    "mcu": (r"[A-Za-z0-9][A-Za-z0-9 ._+-]{0,39}", "letters, digits, spaces and ._+- (up to 40)"),
    "default_runtime": (r"[a-z][a-z0-9_]{0,19}", "a runtime name (lower-case letters, digits, '_')"),
    "notes": (r"[^\x00-\x1f\x7f-\x9f]{0,400}", "one line of text without control characters (up to 400)"),
    "platformio.platform": (
        r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?@[0-9][0-9A-Za-z.+-]{0,39}",
        "[owner/]name@version, e.g. espressif32@6.13.0 (letters, digits, ._-)",
    ),
    "platformio.board": (r"[A-Za-z0-9_.-]{1,60}", "a PlatformIO board id (letters, digits, ._-)"),
    "platformio.framework": (r"[a-z0-9_-]+(, ?[a-z0-9_-]+)*", "PlatformIO framework names (lower-case, comma-separated)"),
    "platformio.lib_deps": (
        r"[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)?(@[~^=<>]{0,2}[0-9][0-9A-Za-z.+*-]{0,39})?",
        "[owner/]name[@version] entries (letters, digits, ._-, no spaces)",
    ),
    "platformio.build_flags": (FLAG, FLAG_RULE),
    "platformio.build_unflags": (FLAG, FLAG_RULE),
    "platformio.lib_compat_mode": (r"off|soft|strict", "off, soft or strict"),
    "platformio.sdkconfig": (r"CONFIG_[A-Z0-9_]+=[A-Za-z0-9_.+-]{0,60}", "CONFIG_NAME=value entries (value: letters, digits, ._+-)"),
    "cpu.core": (r"[a-z0-9][a-z0-9_+-]{0,39}", "lower-case letters, digits, _+-"),
    "cpu.cflags": (FLAG, FLAG_RULE),
    "cpu.qemu_machine": (r"[a-z0-9][a-z0-9_.-]{0,39}", "a qemu machine name (lower-case letters, digits, ._-)"),
}
# Every number: (smallest, largest). The upper bounds are generous for any microcontroller;
# what they stop is a typo or a hostile file (10**30 bytes of RAM, a negative baud rate).
NUMBER_RULES: dict[str, tuple[int, int]] = {
    "clock_mhz": (1, 10_000),
    "sram_bytes": (1, 2**32),
    "flash_bytes": (1, 2**32),
    "psram_bytes": (0, 2**32),
    "framework_ram_bytes": (0, 2**32),
    "framework_flash_bytes": (0, 2**32),
    "platformio.monitor_speed": (1, 20_000_000),
}


def _check_text(where: str, key: str, value: object, rule: tuple[str, str]) -> None:
    pattern, allowed = rule
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, str):
            raise BoardError(f"{where}: {key} entries must be strings, got {type(v).__name__} {v!r}")
        if re.fullmatch(pattern, v) is None:
            raise BoardError(f"{where}: {key} {v!r} is not allowed: use {allowed}")


def _check_rules(data: Mapping[str, object], where: str, rules: Mapping[str, tuple[str, str]]) -> None:
    """Character set of every text value, range of every number (keys as 'section.key')."""
    flat: dict[str, object] = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for section in TABLES:
        table = data.get(section)
        for k, v in table.items() if isinstance(table, dict) else ():
            flat[f"{section}.{k}"] = v
    for key, value in flat.items():
        if key in rules:
            _check_text(where, key, value, rules[key])
        elif key in NUMBER_RULES and not isinstance(value, bool) and isinstance(value, int):
            lo, hi = NUMBER_RULES[key]
            if not lo <= value <= hi:
                raise BoardError(f"{where}: {key} = {value} is out of range: give {lo:,} to {hi:,}")


def _one_of(where: str, key: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise BoardError(f"{where}: {key} '{value}' is not one of {', '.join(allowed)}")


def _check_values(data: Mapping[str, Any], where: str) -> None:
    _one_of(where, "architecture", data["architecture"], ARCHITECTURES)
    if not data["default_runtime"]:
        raise BoardError(f"{where}: default_runtime must name a runtime (see 'mcuq deploy --help' for --runtime)")
    if data["word_size"] not in (8, 16, 32, 64):
        raise BoardError(f"{where}: word_size must be 8, 16, 32 or 64, got {data['word_size']}")
    if "@" not in data["platformio"]["platform"]:
        raise BoardError(f"{where}: platformio.platform '{data['platformio']['platform']}' must pin a version (e.g. espressif32@6.13.0)")
    _check_rules(data, where, TEXT_RULES)
    if data["framework_ram_bytes"] >= data["sram_bytes"]:
        raise BoardError(f"{where}: framework_ram_bytes ({data['framework_ram_bytes']}) leaves no RAM of sram_bytes ({data['sram_bytes']})")
    if data["framework_flash_bytes"] >= data["flash_bytes"]:
        raise BoardError(
            f"{where}: framework_flash_bytes ({data['framework_flash_bytes']}) leaves no flash of flash_bytes ({data['flash_bytes']})"
        )
    cpu = data.get("cpu")
    if cpu is not None:
        _check_section(cpu, schema_of(CpuSection), f"{where} [cpu]")
        _one_of(where, "cpu.emulator", cpu["emulator"], EMULATORS)
        if cpu["emulator"] == "qemu" and "qemu_machine" not in cpu:
            raise BoardError(f"{where} [cpu]: emulator qemu needs qemu_machine (e.g. mps2-an386)")


def parse_runtime_section(kind: type[S], table: object, where: str) -> S:
    """A backend's table of a board file, checked against the dataclass the backend declares:
    keys and types, character sets, allowed values, then the section's own ``check``."""
    name = kind.TABLE
    if not isinstance(table, dict):
        raise BoardError(f"{where}: '{name}' must be a table [{name}], got {type(table).__name__}")
    _check_section(table, schema_of(kind), f"{where} [{name}]")
    for key, value in table.items():
        if key in kind.TEXT_RULES:
            _check_text(where, f"{name}.{key}", value, kind.TEXT_RULES[key])
    for key, allowed in kind.CHOICES.items():
        _one_of(where, f"{name}.{key}", table[key], allowed)
    section = kind(**table)
    section.check(where)
    return section


def _runtime_sections(data: Mapping[str, object], where: str) -> dict[str, BoardSectionType]:
    kinds = board_section_types()
    return {table: parse_runtime_section(kind, data[table], where) for table, kind in kinds.items() if data.get(table)}


def load_board_file(path: str | Path) -> Board:
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise BoardError(f"{path}: board file not found")
    raw = read_regular(path, "a board file", BOARD_LIMIT, BoardError)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BoardError(f"{path}: not valid TOML ({exc})") from None
    where = str(path)
    kinds = board_section_types()
    schema = {**schema_of(Board), **{table: (dict, False) for table in kinds}}
    _check_section(data, schema, where)
    _check_section(data["platformio"], schema_of(PlatformIOSection), f"{where} [platformio]")
    _check_values(data, where)
    generic = {k: v for k, v in data.items() if k not in kinds and k not in TABLES}
    cpu = data.get("cpu")
    return Board(
        **generic,
        platformio=PlatformIOSection(**data["platformio"]),
        cpu=CpuSection(**cpu) if cpu is not None else None,
        runtime_sections=_runtime_sections(data, where),
        path=path,
        sha256=hashlib.sha256(raw).hexdigest(),
    )


def list_boards() -> list[Board]:
    """Every board shipped in ``boards/*.toml``, sorted by id; raises BoardError on a bad file."""
    return [load_board_file(p) for p in sorted(boards_dir().glob("*.toml"))]


def get_board(board_id: str | None = None, board_file: str | Path | None = None) -> Board:
    """The board ``board_id`` from ``boards/``, or the one described by ``board_file``.

    Raises :class:`BoardError` (one line listing the known boards) for an unknown id, and for a
    board file that breaks the schema.
    """
    if board_file is not None:
        return load_board_file(board_file)
    path = boards_dir() / f"{board_id}.toml"
    if not board_id or not path.exists():
        known = ", ".join(p.stem for p in sorted(boards_dir().glob("*.toml")))
        raise BoardError(f"unknown board '{board_id}'; known boards: {known} (or pass --board-file my_board.toml)")
    return load_board_file(path)
