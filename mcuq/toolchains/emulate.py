"""Build the plain-C firmware for the board's CPU and run it in an emulator.

The board file's ``[cpu]`` table says which: AVR boards build with avr-gcc ``-mmcu`` and run
in simavr (cycle-accurate; the harness counts cycles with Timer1); Cortex-M boards build with
arm-none-eabi-gcc and the board's ``-mcpu``/FPU flags and run in qemu-system-arm on the
board's ``qemu_machine`` (mps2-an386 Cortex-M4, mps2-an500 Cortex-M7, mps2-an385 Cortex-M3
for Cortex-M0+ code, which ARMv7-M executes), with semihosting and ``-icount shift=0`` so
SysTick counts executed instructions. Boards without an emulator (ESP32 Xtensa) say so.
The same source files as the PlatformIO project are used; only the main() differs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from mcuq.boards import Board
from mcuq.common.errors import MCUQError
from mcuq.common.resources import templates_dir
from mcuq.toolchains.qemu import qemu_command

# Flags of every self-test build, AVR and Cortex-M: C99 and no float contraction as in the generated
# platformio.ini, -Os as PlatformIO builds, and warnings as errors so generated code that warns fails here.
SELFTEST_CFLAGS = ["-std=c99", "-Os", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]
SELFTEST_SOURCES = ("mcuq_model.c", "mcuq_kernels.c", "mcuq_kernels_s16.c", "mcuq_golden.c", "mcuq_selftest.c")
OPTIONAL_SOURCES = ("mcuq_lstm.c", "mcuq_svdf.c")  # kernels a model links only when it uses them
AVR_MCUS = {"ATmega328P": "atmega328p", "ATmega2560": "atmega2560"}
QEMU_CPU_HZ = 25_000_000  # SYSCLK of qemu's mps2 boards (an385, an386, an500)
QEMU_NS_PER_INSN = 1  # -icount shift=0
EMULATOR_TIMEOUT = 300


@dataclass
class EmulationResult:
    target: str
    passed: bool
    log: str
    ticks: int | None
    unit: str  # "cycles" (exact, simavr) or "instructions" (qemu, +-40)
    flash_bytes: int
    ram_bytes: int
    clock_mhz: int = 0  # the board's clock, for the latency estimate

    @property
    def latency_ms(self) -> float | None:
        """Emulator estimate of one inference at the board's clock: simavr cycles are the
        AVR's own; qemu instructions are counted as one cycle each (real Cortex-M cores take
        1-3 cycles for loads and multiplies, and wait states add more)."""
        if self.ticks is None or not self.clock_mhz:
            return None
        return self.ticks / (self.clock_mhz * 1000.0)

    def as_dict(self) -> dict[str, object]:
        return {
            "target": self.target,
            "passed": self.passed,
            "ticks": self.ticks,
            "unit": self.unit,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "clock_mhz": self.clock_mhz,
            "latency_ms": self.latency_ms,
            "latency_note": "emulator estimate",
            "log": self.log,
        }


def toolchain_for(architecture: str) -> str | None:
    """The cross compiler for an architecture when it and its emulator are installed."""
    if architecture == "avr8":
        return "avr-gcc" if shutil.which("avr-gcc") and shutil.which("simavr") else None
    if architecture.startswith("armv"):
        return "arm-none-eabi-gcc" if shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm") else None
    return None


def no_emulator_reason(board: Board) -> str | None:
    """Why this board's firmware cannot be emulated here (None when it can)."""
    cpu = board.cpu
    if cpu is None or cpu.emulator == "none":
        return (
            f"{board.id} ({cpu.core if cpu else board.mcu}, {board.architecture}): no emulator for this CPU; "
            "the firmware is checked on the host only"
        )
    if toolchain_for(board.architecture) is None:
        return "no emulator toolchain here (AVR: gcc-avr avr-libc simavr; Cortex-M: gcc-arm-none-eabi qemu-system-arm)"
    return None


def build_and_run(files: dict[str, str], board: Board, profile: bool = False) -> EmulationResult:
    """Build the self-test firmware for the board's CPU ([cpu] in the board file) and run it."""
    cpu = board.cpu
    reason = no_emulator_reason(board)
    if reason or cpu is None:
        raise MCUQError(reason or f"{board.id}: no [cpu] table")
    if cpu.emulator == "simavr":
        result = build_and_run_avr(files, cpu.core, board.clock_mhz * 1_000_000, profile)
    else:
        result = build_and_run_qemu(files, list(cpu.cflags), str(cpu.qemu_machine), cpu.core, profile)
    result.clock_mhz = board.clock_mhz
    return result


def _write(files: dict[str, str], folder: Path) -> list[str]:
    for name, text in files.items():
        (folder / name).write_text(text)
    return [str(folder / n) for n in (*SELFTEST_SOURCES, *OPTIONAL_SOURCES) if n in files]


def _size(tool: str, elf: Path) -> tuple[int, int]:
    """(flash, RAM) from `size -A`: flash = .text + .data (+.rodata), RAM = .data + .bss."""
    out = subprocess.run([tool, "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)", out, re.M)}
    flash = sum(sections.get(s, 0) for s in (".text", ".rodata", ".data", ".isr_vector", ".ARM.exidx"))
    ram = sum(sections.get(s, 0) for s in (".data", ".bss"))
    return flash, ram


def _run(cmd: list[str], what: str) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=EMULATOR_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise MCUQError(f"{what} did not finish within {EMULATOR_TIMEOUT} s") from None
    if proc.returncode != 0 and "mcuq:" not in proc.stdout + proc.stderr:
        first = (proc.stderr.strip().splitlines() or [""])[0]
        raise MCUQError(f"{what} failed (exit code {proc.returncode}): {first[:200]}")
    return proc.stdout + proc.stderr


def _parse(log: str) -> tuple[bool, int | None]:
    passed = "mcuq: selftest PASS" in log and "FAIL" not in log
    match = re.search(r"mcuq: inference_\w+=(\d+)", log)
    return passed, int(match.group(1)) if match else None


def op_ticks(log: str) -> dict[int, int]:
    """Per-op ticks printed by a -DMCUQ_PROFILE build (averaged over the golden vectors)."""
    return {int(m.group(1)): int(m.group(2)) for m in re.finditer(r"mcuq: op (\d+) ticks=(\d+)", log)}


def build_and_run_avr(files: dict[str, str], mcu_name: str, f_cpu: int = 16_000_000, profile: bool = False) -> EmulationResult:
    mcu = AVR_MCUS.get(mcu_name, mcu_name.lower())
    with tempfile.TemporaryDirectory(prefix="mcuq-avr-") as tmp:
        folder = Path(tmp)
        sources = _write(files, folder) + [str(templates_dir() / "c" / "emulate" / "avr_main.c")]
        name_bytes = ",".join(str(b) for b in mcu.encode()) + ",0"
        elf = folder / "firmware.elf"
        cmd = [
            "avr-gcc",
            f"-mmcu={mcu}",
            f"-DF_CPU={f_cpu}UL",
            f'-DMCUQ_MMCU_NAME="{mcu}"',
            f"-DMCUQ_MMCU_NAME_BYTES={name_bytes}",
            *SELFTEST_CFLAGS,
            "-I",
            str(folder),
            *sources,
            "-o",
            str(elf),
            "-Wl,--undefined=_mmcu,--section-start=.mmcu=0x910000",
            "-Wl,--gc-sections",
            "-ffunction-sections",
            "-fdata-sections",
            *(["-DMCUQ_PROFILE"] if profile else []),
        ]
        build = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if build.returncode != 0:
            raise MCUQError(f"avr-gcc could not build the firmware for {mcu}: {(build.stderr.strip().splitlines() or [''])[0][:240]}")
        flash, ram = _size("avr-size", elf)
        log = _run(["simavr", "-m", mcu, "-f", str(f_cpu), str(elf)], f"simavr ({mcu})")
    passed, ticks = _parse(log)
    return EmulationResult(f"{mcu} in simavr", passed, log, ticks, "cycles", flash, ram)


def build_arm(files: dict[str, str], folder: Path, cflags: list[str], profile: bool = False) -> Path:
    """Link the self-test for a Cortex-M CPU (`cflags`: -mcpu, -mthumb, float ABI/FPU)."""
    emu = templates_dir() / "c" / "emulate"
    sources = _write(files, folder) + [str(emu / "cm4_main.c")]
    elf = folder / "firmware.elf"
    cmd = [
        "arm-none-eabi-gcc",
        *cflags,
        *SELFTEST_CFLAGS,
        "-ffunction-sections",
        "-fdata-sections",
        "-I",
        str(folder),
        *sources,
        "-T",
        str(emu / "mps2_an386.ld"),
        "-nostartfiles",
        "--specs=nano.specs",
        "-Wl,--gc-sections",
        "-o",
        str(elf),
        "-lm",
        *(["-DMCUQ_PROFILE"] if profile else []),
    ]
    build = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if build.returncode != 0:
        raise MCUQError(
            f"arm-none-eabi-gcc {' '.join(cflags)} could not build the firmware: {(build.stderr.strip().splitlines() or [''])[0][:240]}"
        )
    return elf


def build_cortex_m4(files: dict[str, str], folder: Path, profile: bool = False) -> Path:
    return build_arm(files, folder, ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"], profile)


def build_and_run_qemu(files: dict[str, str], cflags: list[str], machine: str, core: str, profile: bool = False) -> EmulationResult:
    if shutil.which("qemu-system-arm") is None:
        raise MCUQError("qemu-system-arm is not installed (apt-get install qemu-system-arm)")
    with tempfile.TemporaryDirectory(prefix="mcuq-arm-") as tmp:
        elf = build_arm(files, Path(tmp), cflags, profile)
        flash, ram = _size("arm-none-eabi-size", elf)
        log = _run(
            qemu_command(machine, elf),
            f"qemu ({machine})",
        )
    passed, ticks = _parse(log)
    instructions = ticks * (1_000_000_000 // QEMU_CPU_HZ) // QEMU_NS_PER_INSN if ticks is not None else None
    return EmulationResult(f"{core} code on qemu {machine}", passed, log, instructions, "instructions", flash, ram)


def build_and_run_cortex_m4(files: dict[str, str], profile: bool = False) -> EmulationResult:
    """Cortex-M4 without FPU flags on mps2-an386 (kept for callers that have no board)."""
    return build_and_run_qemu(files, ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=soft"], "mps2-an386", "cortex-m4", profile)
