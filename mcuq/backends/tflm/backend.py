"""TensorFlow Lite Micro backend: op resolver, arena plan, fit check, template context.

Everything that can make a generated project fail on the device is decided here, before a
single file is written: an op the board's library lacks, an arena that does not fit, a
model too big for flash.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcuq.backends.tflm.arena import ArenaPlan, plan_arena
from mcuq.backends.tflm.ops import TflmLibrary, add_method_name, load_library
from mcuq.boards import Board, list_boards
from mcuq.common.errors import FitError, UnsupportedOpError
from mcuq.model.info import ModelInfo, TensorInfo
from mcuq.reference.host_tflm import measure_min_arena

# Code-size estimates (bytes of flash) for the fit check; perf_anchors.md section 4:
# interpreter + allocator + planner ~10 KB on Cortex-M3, 20 KB on x86-64; kernels add
# several KB each, CMSIS-NN ~20 KB more in total. Stated as estimates in every output.
TFLM_CORE_FLASH = 40 * 1024
KERNEL_FLASH = {"CONV_2D": 12 * 1024, "DEPTHWISE_CONV_2D": 12 * 1024, "FULLY_CONNECTED": 8 * 1024,
                "TRANSPOSE_CONV": 10 * 1024, "SOFTMAX": 6 * 1024, "UNIDIRECTIONAL_SEQUENCE_LSTM": 20 * 1024}
DEFAULT_KERNEL_FLASH = 4 * 1024
# RAM besides the arena: MicroInterpreter + allocator objects + resolver (TFLMRegistration
# 28 B + code + parser pointer per op on 32-bit), rounded up.
INTERPRETER_RAM = 1024
RESOLVER_RAM_PER_OP = 40

LIBRARY_HEADERS = {"chirale-tensorflowlite": "Chirale_TensorFlowLite.h"}


@dataclass(frozen=True)
class ResolverEntry:
    op: str
    method: str
    count: int


@dataclass(frozen=True)
class FitReport:
    ram_bytes: int
    ram_budget: int
    flash_bytes: int
    flash_budget: int
    arena_in_psram: bool
    psram_budget: int
    estimate: str

    @property
    def fits(self) -> bool:
        return self.ram_bytes <= self.ram_budget and self.flash_bytes <= self.flash_budget

    def as_dict(self) -> dict[str, Any]:
        return {"ram_bytes": self.ram_bytes, "ram_budget": self.ram_budget, "flash_bytes": self.flash_bytes,
                "flash_budget": self.flash_budget, "arena_in_psram": self.arena_in_psram,
                "psram_budget": self.psram_budget, "fits": self.fits, "method": self.estimate}


def resolver_entries(info: ModelInfo) -> list[ResolverEntry]:
    return [ResolverEntry(op, add_method_name(op), sum(1 for o in info.ops if o.name == op)) for op in info.op_names]


def check_library_ops(info: ModelInfo, library: TflmLibrary, board: Board) -> None:
    missing = library.missing_ops(info.op_names)
    if missing:
        layers = {op: info.layer_of_op(next(o for o in info.ops if o.name == op)) for op in missing}
        detail = ", ".join(f"{op} ({add_method_name(op)}, Keras layer '{layers[op]}')" for op in missing)
        raise UnsupportedOpError(
            f"board {board.id}: {library.name} {library.version} has no kernel for {detail}; "
            "replace those layers, or pick a board whose library has them (see 'mcuq boards')"
        )


def flash_estimate(info: ModelInfo, board: Board) -> int:
    kernels = sum(KERNEL_FLASH.get(op, DEFAULT_KERNEL_FLASH) for op in info.op_names)
    return len(info.raw) + TFLM_CORE_FLASH + kernels + board.framework_flash_bytes


def fit_report(info: ModelInfo, board: Board, arena: ArenaPlan) -> FitReport:
    runtime_ram = INTERPRETER_RAM + RESOLVER_RAM_PER_OP * len(info.op_names)
    flash = flash_estimate(info, board)
    internal_need = arena.target_bytes + runtime_ram + board.framework_ram_bytes
    in_psram = board.is_esp_idf and board.psram_bytes > 0 and internal_need > board.sram_bytes
    ram = (runtime_ram + board.framework_ram_bytes) if in_psram else internal_need
    return FitReport(ram, board.sram_bytes, flash, board.flash_bytes, in_psram, board.psram_bytes,
                     "estimate: arena + interpreter objects + framework RAM; model + TFLM core + kernels + framework flash")


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB"


def nearest_fitting_boards(info: ModelInfo, host_min: int, exclude: str) -> list[str]:
    fitting = []
    for other in list_boards():
        if other.id == exclude or other.default_runtime != "tflm" or not other.tflm:
            continue
        plan = plan_arena(info, host_min, other.tflm["kernels"])
        report = fit_report(info, other, plan)
        if report.fits and (not report.arena_in_psram or plan.target_bytes <= report.psram_budget):
            fitting.append((other.sram_bytes + other.psram_bytes, other.id))
    return [b for _, b in sorted(fitting)]


def check_fit(info: ModelInfo, board: Board, arena: ArenaPlan, report: FitReport) -> None:
    psram_short = report.arena_in_psram and arena.target_bytes > report.psram_budget
    if report.fits and not psram_short:
        return
    others = nearest_fitting_boards(info, arena.host_min_bytes, board.id)
    fits = f"fits: {', '.join(others[:3])}" if others else "no shipped board fits: shrink the model"
    if report.ram_bytes > report.ram_budget or psram_short:
        raise FitError(
            f"model needs {_kb(report.ram_bytes)} RAM, {board.id} has {_kb(board.sram_bytes)} "
            f"(arena {_kb(arena.target_bytes)}, framework {_kb(board.framework_ram_bytes)}); {fits}"
        )
    raise FitError(
        f"model needs {_kb(report.flash_bytes)} flash, {board.id} has {_kb(board.flash_bytes)} "
        f"(model {_kb(len(info.raw))}, estimated code and framework {_kb(report.flash_bytes - len(info.raw))}); {fits}"
    )


C_TYPES = {"int8": ("int8_t", "b", -128, 127), "uint8": ("uint8_t", "B", 0, 255),
           "int16": ("int16_t", "h", -32768, 32767), "float32": ("float", "f", 0, 0)}


def tensor_context(t: TensorInfo) -> dict[str, Any]:
    ctype, code, qmin, qmax = C_TYPES[t.dtype]
    size = 1
    for d in t.shape:
        size *= d
    scale = t.quant.scale[0] if t.quant else 1.0
    return {
        "name": t.name, "shape": list(t.shape), "dtype": t.dtype, "ctype": ctype, "typecode": code,
        "size": size, "nbytes": t.nbytes, "scale": scale, "scale_literal": f"{scale!r}f",
        "zero_point": t.quant.zero_point[0] if t.quant else 0, "qmin": qmin, "qmax": qmax,
    }


@dataclass(frozen=True)
class TflmPlan:
    """What the templates need besides the model: library, resolver, arena, fit."""

    library: TflmLibrary
    resolver: list[ResolverEntry]
    arena: ArenaPlan
    fit: FitReport

    @property
    def library_header(self) -> str | None:
        return LIBRARY_HEADERS.get(self.library.id)


def plan_tflm(info: ModelInfo, board: Board, sample: list, arena_override: int | None = None) -> TflmPlan:
    """Check ops, measure and plan the arena, check the fit. Raises before anything is written."""
    assert board.tflm is not None
    library = load_library(board.tflm["library"])
    check_library_ops(info, library, board)
    host_min = measure_min_arena(info.raw, sample)
    arena = plan_arena(info, host_min, board.tflm["kernels"], arena_override)
    fit = fit_report(info, board, arena)
    check_fit(info, board, arena, fit)
    return TflmPlan(library, resolver_entries(info), arena, fit)
