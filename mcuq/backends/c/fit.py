"""Fit check for the plain-C runtime. Measured numbers come from the emulator build
(`avr-size`/`arm-none-eabi-size` of the real firmware minus the Arduino core, whose cost is the
board file's framework_* figures); without a toolchain they are estimated."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mcuq.backends.base import FitReport

if TYPE_CHECKING:
    from mcuq.boards import Board
from mcuq.backends.c.ir import CProgram

KERNEL_CODE_ESTIMATE = 6 * 1024
STACK_ALLOWANCE = 256


def estimate_c_fit(program: CProgram, board: Board, golden_bytes: int) -> FitReport:
    generated = sum(k.code_bytes for k in program.avr_kernels.values())
    flash = (
        program.flash_constant_bytes
        + program.ram_constant_bytes
        + golden_bytes
        + KERNEL_CODE_ESTIMATE
        + generated
        + board.framework_flash_bytes
    )
    ram = program.arena_bytes + program.ram_constant_bytes + program.state_bytes + STACK_ALLOWANCE + board.framework_ram_bytes
    return FitReport(
        ram,
        board.sram_bytes,
        flash,
        board.flash_bytes,
        False,
        0,
        "estimate: constants + golden vectors + ~6 KB kernels + framework; RAM = buffer + RAM constants + state + stack + framework",
    )


def measured_c_fit(flash: int, ram: int, board: Board, tool: str) -> FitReport:
    return FitReport(
        ram + STACK_ALLOWANCE + board.framework_ram_bytes,
        board.sram_bytes,
        flash + board.framework_flash_bytes,
        board.flash_bytes,
        False,
        0,
        f"measured with {tool} on the built firmware, plus the board's framework figures and {STACK_ALLOWANCE} B of stack",
    )


def check_c_fit(program: CProgram, board: Board, report: FitReport, golden_bytes: int) -> None:
    from mcuq.boards import list_boards
    from mcuq.common.errors import FitError

    if report.fits:
        return
    others = [
        b.id
        for b in sorted(list_boards(), key=lambda b: b.sram_bytes)
        if b.id != board.id and estimate_c_fit(program, b, golden_bytes).fits
    ]
    fits = f"fits: {', '.join(others[:3])}" if others else "no shipped board fits: shrink the model"
    if report.ram_bytes > report.ram_budget:
        raise FitError(
            f"model needs {report.ram_bytes} B RAM, {board.id} has {board.sram_bytes} B "
            f"(activation buffer {program.arena_bytes} B, framework {board.framework_ram_bytes} B; {report.estimate.split(':')[0]}); {fits}"
        )
    raise FitError(
        f"model needs {report.flash_bytes} B flash, {board.id} has {board.flash_bytes} B "
        f"(weights {program.flash_constant_bytes} B; {report.estimate.split(':')[0]}); {fits}"
    )
