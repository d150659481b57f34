"""Boards are data: one TOML file per board in ``boards/``, checked against a schema on load.

A typo in a board file must fail loudly with the file and the key, not generate a project
that fails to build an hour later on the user's desk. This module knows nothing about the
backends: whether ``default_runtime`` names a registered runtime that can serve the board is
checked where runtimes are resolved (``mcuq.backends.base.backend_for``), so the dependency
runs one way, backends -> boards.
"""

from __future__ import annotations

import hashlib
import re
import types
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from mcuq.common.compat import tomllib
from mcuq.common.errors import BoardError
from mcuq.common.files import BOARD_LIMIT, read_regular
from mcuq.common.resources import boards_dir
from mcuq.libraries import load_library

ARCHITECTURES = ("avr8", "armv6m", "armv7em", "armv8m", "xtensa-lx6", "xtensa-lx7", "riscv32")
KERNEL_SETS = ("reference", "cmsis-nn-dsp", "cmsis-nn-nodsp", "esp-nn", "esp-nn-s3")
API_FLAVOURS = ("esp-idf", "arduino-2023")


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


@dataclass(frozen=True)
class CpuSection:
    """[cpu] of a board file: how the plain-C runtime is compiled and emulated for this
    processor (compiler flags, DSP extension, which emulator and qemu machine)."""

    core: str
    cflags: list[str]
    emulator: str  # one of EMULATORS
    dsp: bool = False
    qemu_machine: str | None = None


EMULATORS = ("simavr", "qemu", "none")


@dataclass(frozen=True)
class TflmSection:
    """[tflm] of a board file: the TensorFlow Lite Micro library the board's project pulls in."""

    library: str
    api_flavour: str
    kernels: str
    # The Arduino core's architecture as library.properties names it (mbed_nano, stm32, ...):
    # compared with the library's declared architectures (item shown by `mcuq boards`).
    core_architecture: str | None = None
    component: str | None = None
    component_version: str | None = None


@dataclass(frozen=True)
class Board:
    """One board file. Its fields are the file's schema (``schema_of``): declare a new key here only."""

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
    platformio: dict[str, Any]  # checked against PlatformIOSection
    tflm: dict[str, Any] | None = None  # checked against TflmSection
    psram_bytes: int = 0
    notes: str = ""
    cpu: dict[str, Any] | None = None  # checked against CpuSection
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
        return self.platformio["framework"] == "espidf"

    @property
    def needs_progmem(self) -> bool:
        return self.architecture == "avr8"

    def as_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in NOT_IN_FILE}
        return {**data, "file": str(self.path), "sha256": self.sha256}


Schema = dict[str, tuple[type, bool]]
NOT_IN_FILE = ("path", "sha256")  # filled in by the loader


def schema_of(cls: type) -> Schema:
    """key -> (type, required), read off a dataclass: each board field is declared once, on the class."""
    hints = get_type_hints(cls)
    schema: Schema = {}
    for f in fields(cls):
        if f.name in NOT_IN_FILE:
            continue
        hint = hints[f.name]
        kinds = [k for k in get_args(hint) if k is not type(None)] if isinstance(hint, types.UnionType) else [hint]
        kind = get_origin(kinds[0]) or kinds[0]
        required = f.default is MISSING and f.default_factory is MISSING and not isinstance(hint, types.UnionType)
        schema[f.name] = (kind, required)
    return schema


def _check_section(data: dict[str, Any], schema: Schema, where: str) -> None:
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
_FLAG = r"-[A-Za-z0-9_.=+,/:-]*"  # a compiler flag: starts with '-', no quotes, spaces, '!' or '$'
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
    "platformio.build_flags": (_FLAG, "flags starting with '-' (letters, digits, _.=+,/:-; no quotes, spaces, '!' or '$')"),
    "platformio.build_unflags": (_FLAG, "flags starting with '-' (letters, digits, _.=+,/:-; no quotes, spaces, '!' or '$')"),
    "platformio.lib_compat_mode": (r"off|soft|strict", "off, soft or strict"),
    "platformio.sdkconfig": (r"CONFIG_[A-Z0-9_]+=[A-Za-z0-9_.+-]{0,60}", "CONFIG_NAME=value entries (value: letters, digits, ._+-)"),
    "cpu.core": (r"[a-z0-9][a-z0-9_+-]{0,39}", "lower-case letters, digits, _+-"),
    "cpu.cflags": (_FLAG, "flags starting with '-' (letters, digits, _.=+,/:-; no quotes, spaces, '!' or '$')"),
    "cpu.qemu_machine": (r"[a-z0-9][a-z0-9_.-]{0,39}", "a qemu machine name (lower-case letters, digits, ._-)"),
    "tflm.library": (r"[a-z0-9][a-z0-9_-]{0,59}", "a library id of boards/libraries (lower-case letters, digits, _-)"),
    "tflm.core_architecture": (r"[a-z0-9_]{1,40}", "an Arduino architecture name (lower-case letters, digits, '_')"),
    "tflm.component": (r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "owner/name of an ESP-IDF component"),
    "tflm.component_version": (r"[~^=<>!]{0,2}[0-9][0-9A-Za-z.+*-]{0,39}", "a version (range), e.g. ~1.4.0"),
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


def _check_text(where: str, key: str, value: object) -> None:
    pattern, allowed = TEXT_RULES[key]
    values = value if isinstance(value, list) else [value]
    for v in values:
        if not isinstance(v, str):
            raise BoardError(f"{where}: {key} entries must be strings, got {type(v).__name__} {v!r}")
        if re.fullmatch(pattern, v) is None:
            raise BoardError(f"{where}: {key} {v!r} is not allowed: use {allowed}")


def _check_rules(data: dict[str, Any], where: str) -> None:
    """Character set of every text value, range of every number (keys as 'section.key')."""
    flat: dict[str, Any] = {k: v for k, v in data.items() if not isinstance(v, dict)}
    for section in ("platformio", "cpu", "tflm"):
        for k, v in (data.get(section) or {}).items():
            flat[f"{section}.{k}"] = v
    for key, value in flat.items():
        if key in TEXT_RULES:
            _check_text(where, key, value)
        elif key in NUMBER_RULES and not isinstance(value, bool) and isinstance(value, int):
            lo, hi = NUMBER_RULES[key]
            if not lo <= value <= hi:
                raise BoardError(f"{where}: {key} = {value} is out of range: give {lo:,} to {hi:,}")


def _check_values(data: dict[str, Any], where: str) -> None:
    def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise BoardError(f"{where}: {key} '{value}' is not one of {', '.join(allowed)}")

    one_of("architecture", data["architecture"], ARCHITECTURES)
    if not data["default_runtime"]:
        raise BoardError(f"{where}: default_runtime must name a runtime (see 'mcuq deploy --help' for --runtime)")
    if data["word_size"] not in (8, 16, 32, 64):
        raise BoardError(f"{where}: word_size must be 8, 16, 32 or 64, got {data['word_size']}")
    if "@" not in data["platformio"]["platform"]:
        raise BoardError(f"{where}: platformio.platform '{data['platformio']['platform']}' must pin a version (e.g. espressif32@6.13.0)")
    _check_rules(data, where)
    if data["framework_ram_bytes"] >= data["sram_bytes"]:
        raise BoardError(f"{where}: framework_ram_bytes ({data['framework_ram_bytes']}) leaves no RAM of sram_bytes ({data['sram_bytes']})")
    if data["framework_flash_bytes"] >= data["flash_bytes"]:
        raise BoardError(
            f"{where}: framework_flash_bytes ({data['framework_flash_bytes']}) leaves no flash of flash_bytes ({data['flash_bytes']})"
        )
    cpu = data.get("cpu")
    if cpu is not None:
        _check_section(cpu, schema_of(CpuSection), f"{where} [cpu]")
        one_of("cpu.emulator", cpu["emulator"], EMULATORS)
        if cpu["emulator"] == "qemu" and "qemu_machine" not in cpu:
            raise BoardError(f"{where} [cpu]: emulator qemu needs qemu_machine (e.g. mps2-an386)")
    tflm = data.get("tflm")
    if tflm:
        _check_section(tflm, schema_of(TflmSection), f"{where} [tflm]")
        one_of("tflm.kernels", tflm["kernels"], KERNEL_SETS)
        one_of("tflm.api_flavour", tflm["api_flavour"], API_FLAVOURS)
        load_library(tflm["library"])


def load_board_file(path: str | Path) -> Board:
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise BoardError(f"{path}: board file not found")
    raw = read_regular(path, "a board file", BOARD_LIMIT, BoardError)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BoardError(f"{path}: not valid TOML ({exc})") from None
    _check_section(data, schema_of(Board), str(path))
    _check_section(data["platformio"], schema_of(PlatformIOSection), f"{path} [platformio]")
    _check_values(data, str(path))
    return Board(**data, path=path, sha256=hashlib.sha256(raw).hexdigest())


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
