"""Compile targets of the TFLite Micro library builds: the host, or a board's Cortex-M in qemu.

The boards' ``[cpu]`` tables are the one CPU table; this module only turns one into flags,
tools and a qemu machine, and says where compiled objects are cached.
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcuq.common.errors import MCUQError
from mcuq.common.resources import templates_dir

if TYPE_CHECKING:
    from mcuq.boards import CpuSection

CACHE_ENV = "MCUQ_CACHE_DIR"
JOBS_ENV = "MCUQ_BUILD_JOBS"
COMPILE_TIMEOUT = 600
HOST_RUN_TIMEOUT = 120
QEMU_RUN_TIMEOUT = 300
PROBE_TIMEOUT = 60
QEMU_RAM_BYTES = 4 * 1024 * 1024


class BuildError(MCUQError):
    """The library or the project did not compile or link (message names the file)."""


@dataclass(frozen=True)
class Cpu:
    """A compile target: x86-64 (native) or a Cortex-M run in qemu."""

    name: str
    prefix: str  # "" (host g++) or "arm-none-eabi-"
    flags: tuple[str, ...]
    machine: str | None = None  # qemu -M

    @property
    def is_host(self) -> bool:
        return self.machine is None

    @property
    def label(self) -> str:
        return "x86-64 (host)" if self.is_host else f"{self.name} in qemu {self.machine}"

    def tool(self, name: str) -> str:
        return self.prefix + name


HOST = Cpu("x86-64", "", ())


def cpu_target(cpu: CpuSection | None) -> Cpu | None:
    """The compile target of a board's ``[cpu]`` table, or None where no emulator runs it here.

    The boards' data is the one CPU table: the library is built with the very ``cflags`` (float
    ABI included) and run in the ``qemu_machine`` the plain-C runtime uses for the same board, so
    both runtimes are checked on the same CPU. AVR, Xtensa and RISC-V boards give None.
    """
    if cpu is None or cpu.emulator != "qemu":
        return None
    return Cpu(cpu.core, "arm-none-eabi-", tuple(cpu.cflags), str(cpu.qemu_machine))


def shipped_cpu(core: str) -> Cpu:
    """The target of the first shipped board with this ``[cpu] core`` (e.g. the Cortex-M4 that
    stands in for 32-bit Xtensa when measuring an ESP32 arena)."""
    from mcuq.boards import list_boards

    for board in list_boards():
        target = cpu_target(board.cpu)
        if target is not None and target.name == core:
            return target
    raise BuildError(f"no shipped board has a [cpu] core '{core}' run in qemu")


COMMON_CXX = ("-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-fno-use-cxa-atexit")
COMMON_C = ("-std=gnu11",)
# -Os on the MCU (what Arduino/PlatformIO and ESP-IDF builds use, so flash sizes are real);
# -O2 on the host. The library's own warnings are not ours to fix: -w.
OPT = ("-ffunction-sections", "-fdata-sections", "-w")
# Library files never needed by a firmware (tests, the all-ops resolver, audio front end).
EXCLUDE = re.compile(
    r"(_test\.|test_helper|/testing/|/tools/|/examples?/|all_ops_resolver|mock_micro_graph|fake_micro_context|"
    r"kernel_runner|microfrontend|kissfft|/signal/|hexdump)"
)
# Framework files an interpreter + op resolver firmware does not reference (checked with a
# link map); compiled only if a link needs them (see build_* fallbacks).
OPTIONAL = re.compile(
    r"(recording_|micro_profiler|micro_time|linear_memory_planner|non_persistent_buffer_planner_shim|"
    r"/peripherals/|lstm_eval|micro_tensor_utils|/esp/)"
)
# Headers most library files include: compiled once into a precompiled header per build
# (parsing them is 2/3 of the compile time; the generated code is the same).
PCH_HEADERS = (
    "tensorflow/lite/schema/schema_generated.h",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h",
    "tensorflow/lite/micro/micro_interpreter.h",
    "tensorflow/lite/micro/kernels/kernel_util.h",
    "tensorflow/lite/kernels/internal/common.h",
    "tensorflow/lite/kernels/kernel_util.h",
)
REGISTER = re.compile(r"(?:TfLiteRegistration|TFLMRegistration|TfLiteRegistration_V1)\s*\*?\s+Register_([A-Z0-9_]+)\s*\(\s*\)\s*\{")


def cache_root() -> Path:
    """Where compiled library objects are kept (``$MCUQ_CACHE_DIR`` or ``~/.cache/mcuq``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mcuq"


def missing_tools(cpu: Cpu) -> list[str]:
    tools = [cpu.tool("g++"), cpu.tool("gcc")] + ([] if cpu.is_host else [cpu.tool("size"), "qemu-system-arm"])
    return [t for t in tools if shutil.which(t) is None]


def shim_dir() -> Path:
    return templates_dir() / "tflm" / "shim"
