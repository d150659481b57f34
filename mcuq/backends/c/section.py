"""The plain-C runtime's declarations: its typed part of ``mcuq.lock.json`` (under the key
``c_runtime``) and its deploy/validate options.

Kept apart from ``backend.py`` and importing only the registry (which imports nothing of mcuq),
so that the manifest and the CLI read it without loading the backend. ``validate`` and the
report read these fields, never keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from mcuq.backends.registry import BackendOption

AVR_KERNELS = BackendOption(
    "avr_kernels",
    str,
    "AVR boards (plain-C runtime): 'generated' (default) writes assembly for this model's layers within the "
    "flash the board has left, several times faster; 'generic' keeps the shared kernels only (less flash)",
    choices=("generated", "generic"),
)
EMULATE = BackendOption(
    "emulate", bool, "plain-C projects: also build for the MCU and run the self-test in simavr/qemu", commands=("validate",)
)
OPTIONS = (AVR_KERNELS, EMULATE)


@dataclass(frozen=True)
class EmulationRecord:
    """The deploy-time self-test on the board's CPU in an emulator; ``target`` None: not run,
    and ``not_emulated`` says why."""

    target: str | None
    passed: bool | None = None
    ticks: int | None = None
    unit: str | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    clock_mhz: int | None = None
    latency_ms: float | None = None
    latency_note: str | None = None
    not_emulated: str | None = None

    @property
    def latency_text(self) -> str:
        """The emulator's latency estimate in words ('' when there is none)."""
        if self.latency_ms is None:
            return ""
        basis = "cycles" if self.unit == "cycles" else "instructions counted as one cycle each"
        return f"{self.latency_ms:.3g} ms at {self.clock_mhz} MHz (emulator estimate: {basis})"


@dataclass(frozen=True)
class CRuntimeSection:
    KEY: ClassVar[str] = "c_runtime"

    arena_bytes: int  # the one static activation buffer
    lower_bound_bytes: int  # liveness lower bound of any plan
    tflm_host_min_bytes: int  # what x86 TFLite Micro needs for the same model (validate runs it)
    flash_constant_bytes: int
    int8_reference: str  # the model file validate checks, relative to the project
    emulation: EmulationRecord
    # AVR: the ops written as generated assembly (mcuq_model.c) and their code bytes; the
    # others run the generic kernels. Only the emulator's self-test runs this code.
    generated_ops: list[int] = field(default_factory=list)
    generated_bytes: int = 0

    @property
    def generated_ops_text(self) -> str:
        """'0, 2, 3': the generated ops as the summary, the report and validate name them."""
        return ", ".join(map(str, self.generated_ops))


SECTION = CRuntimeSection
# The plain-C runtime has no board table of its own: it reads the shared [cpu] table (mcuq.boards.CpuSection).
BOARD_SECTION = None
