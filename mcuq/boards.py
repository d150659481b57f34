"""Boards are data: one TOML file per board in ``boards/``, checked against a schema on load.

A typo in a board file must fail loudly with the file and the key, not generate a project
that fails to build an hour later on the user's desk.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcuq.backends.base import BACKEND_MODULES
from mcuq.common.compat import tomllib
from mcuq.common.errors import BoardError
from mcuq.common.resources import boards_dir

ARCHITECTURES = ("avr8", "armv6m", "armv7em", "armv8m", "xtensa-lx6", "xtensa-lx7", "riscv32")
RUNTIMES = tuple(BACKEND_MODULES)
KERNEL_SETS = ("reference", "cmsis-nn-dsp", "cmsis-nn-nodsp", "esp-nn", "esp-nn-s3")
API_FLAVOURS = ("esp-idf", "arduino-2023")

# key: (type, required)
TOP_SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "id": (str, True), "name": (str, True), "mcu": (str, True), "architecture": (str, True),
    "word_size": (int, True), "clock_mhz": (int, True), "sram_bytes": (int, True), "flash_bytes": (int, True),
    "psram_bytes": (int, False), "framework_ram_bytes": (int, True), "framework_flash_bytes": (int, True),
    "default_runtime": (str, True), "notes": (str, False), "platformio": (dict, True), "tflm": (dict, False),
}
PIO_SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "platform": (str, True), "board": (str, True), "framework": (str, True), "monitor_speed": (int, False),
    "lib_deps": (list, False), "build_flags": (list, False), "build_unflags": (list, False), "lib_compat_mode": (str, False),
    "sdkconfig": (list, False),
}
TFLM_SCHEMA: dict[str, tuple[type | tuple[type, ...], bool]] = {
    "library": (str, True), "api_flavour": (str, True), "kernels": (str, True),
    "component": (str, False), "component_version": (str, False),
}


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    mcu: str
    architecture: str
    word_size: int
    clock_mhz: int
    sram_bytes: int
    flash_bytes: int
    psram_bytes: int
    framework_ram_bytes: int
    framework_flash_bytes: int
    default_runtime: str
    platformio: dict[str, Any]
    tflm: dict[str, Any] | None
    notes: str = ""
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
        return {
            "id": self.id, "name": self.name, "mcu": self.mcu, "architecture": self.architecture,
            "word_size": self.word_size, "clock_mhz": self.clock_mhz, "sram_bytes": self.sram_bytes,
            "flash_bytes": self.flash_bytes, "psram_bytes": self.psram_bytes,
            "framework_ram_bytes": self.framework_ram_bytes, "framework_flash_bytes": self.framework_flash_bytes,
            "default_runtime": self.default_runtime, "platformio": self.platformio, "tflm": self.tflm,
            "notes": self.notes, "file": str(self.path), "sha256": self.sha256,
        }


def _check_section(data: dict[str, Any], schema: dict[str, tuple[Any, bool]], where: str) -> None:
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


def _check_values(data: dict[str, Any], where: str) -> None:
    def one_of(key: str, value: str, allowed: tuple[str, ...]) -> None:
        if value not in allowed:
            raise BoardError(f"{where}: {key} '{value}' is not one of {', '.join(allowed)}")

    one_of("architecture", data["architecture"], ARCHITECTURES)
    one_of("default_runtime", data["default_runtime"], RUNTIMES)
    if data["word_size"] not in (8, 16, 32, 64):
        raise BoardError(f"{where}: word_size must be 8, 16, 32 or 64, got {data['word_size']}")
    for key in ("sram_bytes", "flash_bytes", "clock_mhz"):
        if data[key] <= 0:
            raise BoardError(f"{where}: {key} must be positive, got {data[key]}")
    if data["framework_ram_bytes"] >= data["sram_bytes"]:
        raise BoardError(f"{where}: framework_ram_bytes ({data['framework_ram_bytes']}) leaves no RAM of sram_bytes ({data['sram_bytes']})")
    if "@" not in data["platformio"]["platform"]:
        raise BoardError(f"{where}: platformio.platform '{data['platformio']['platform']}' must pin a version (e.g. espressif32@6.13.0)")
    tflm = data.get("tflm")
    if data["default_runtime"] == "tflm" and not tflm:
        raise BoardError(f"{where}: default_runtime is tflm but there is no [tflm] section naming the library")
    if tflm:
        _check_section(tflm, TFLM_SCHEMA, f"{where} [tflm]")
        one_of("tflm.kernels", tflm["kernels"], KERNEL_SETS)
        one_of("tflm.api_flavour", tflm["api_flavour"], API_FLAVOURS)
        from mcuq.backends.tflm.ops import load_library

        load_library(tflm["library"])


def load_board_file(path: str | Path) -> Board:
    path = Path(path)
    if not path.is_file():
        raise BoardError(f"{path}: board file not found")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BoardError(f"{path}: not valid TOML ({exc})") from None
    _check_section(data, TOP_SCHEMA, str(path))
    _check_section(data["platformio"], PIO_SCHEMA, f"{path} [platformio]")
    _check_values(data, str(path))
    return Board(
        id=data["id"], name=data["name"], mcu=data["mcu"], architecture=data["architecture"],
        word_size=data["word_size"], clock_mhz=data["clock_mhz"], sram_bytes=data["sram_bytes"],
        flash_bytes=data["flash_bytes"], psram_bytes=data.get("psram_bytes", 0),
        framework_ram_bytes=data["framework_ram_bytes"], framework_flash_bytes=data["framework_flash_bytes"],
        default_runtime=data["default_runtime"], platformio=data["platformio"], tflm=data.get("tflm"),
        notes=data.get("notes", ""), path=path, sha256=hashlib.sha256(raw).hexdigest(),
    )


def list_boards() -> list[Board]:
    return [load_board_file(p) for p in sorted(boards_dir().glob("*.toml"))]


def get_board(board_id: str | None = None, board_file: str | Path | None = None) -> Board:
    if board_file is not None:
        return load_board_file(board_file)
    path = boards_dir() / f"{board_id}.toml"
    if not board_id or not path.exists():
        known = ", ".join(p.stem for p in sorted(boards_dir().glob("*.toml")))
        raise BoardError(f"unknown board '{board_id}'; known boards: {known} (or pass --board-file my_board.toml)")
    return load_board_file(path)
