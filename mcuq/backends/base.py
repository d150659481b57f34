"""The one interface every runtime implements, and the registry that finds it by name.

``deploy``, ``validate`` and the report only talk to a :class:`Backend`; they never test
the runtime's name. A new runtime is one package under ``mcuq/backends/`` (``backend.py``
defining ``BACKEND``, ``section.py`` defining ``SECTION``: the dataclass of its part of
``mcuq.lock.json``), its templates under ``firmware_templates/``, and one line in
:data:`mcuq.backends.registry.BUILTIN_BACKENDS` (or an entry point in the group ``mcuq.backends``).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from mcuq.backends.registry import BackendOption, backend_names, backend_packages, declared_options, section_type
from mcuq.common.errors import BoardError, MCUQError, UsageError
from mcuq.model.state import reset_points
from mcuq.project.escape import check_path_text
from mcuq.project.integrity import inside_project
from mcuq.project.manifest import MANIFEST
from mcuq.project.render import golden_array_name

if TYPE_CHECKING:
    import numpy as np

    from mcuq.boards import Board
    from mcuq.checks.outcome import ValidationReport
    from mcuq.common.console import Console
    from mcuq.frontend.converter import QuantizedModel
    from mcuq.model.info import ModelInfo
    from mcuq.project.manifest import Manifest, RuntimeSection
    from mcuq.project.records import ArenaJSON, FitJSON

# Re-exported: the registry, and the golden-array naming every runtime must follow (a contract).
__all__ = ["BackendOption", "backend_names", "backend_packages", "declared_options", "golden_array_name", "section_type"]

Samples = list[list["np.ndarray"]]
# Values of the options the backends declare (BackendOption), by option name: str or bool.
OptionValues = Mapping[str, "str | bool"]


@dataclass(frozen=True)
class FitReport:
    """RAM and flash a project needs on its board, and how that was found (estimate or measured)."""

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

    def as_dict(self) -> FitJSON:
        return {
            "ram_bytes": self.ram_bytes,
            "ram_budget": self.ram_budget,
            "flash_bytes": self.flash_bytes,
            "flash_budget": self.flash_budget,
            "arena_in_psram": self.arena_in_psram,
            "psram_budget": self.psram_budget,
            "fits": self.fits,
            "method": self.estimate,
        }


class ArenaRecord(Protocol):
    """The arena every runtime reports: bytes on the device and for validate's x86 TFLite Micro runs."""

    @property
    def target_bytes(self) -> int: ...

    @property
    def host_bytes(self) -> int: ...

    @property
    def host_min_bytes(self) -> int: ...

    @property
    def overridden(self) -> bool: ...

    @property
    def how(self) -> str: ...

    def as_dict(self) -> ArenaJSON: ...


@dataclass(frozen=True)
class ArenaSummary:
    """An :class:`ArenaRecord` for runtimes whose arena is not derived from a TFLite Micro measurement."""

    target_bytes: int
    host_bytes: int
    host_min_bytes: int
    explanation: str
    overridden: bool = False

    @property
    def how(self) -> str:
        return self.explanation

    def as_dict(self) -> ArenaJSON:
        return {
            "target_bytes": self.target_bytes,
            "host_bytes": self.host_bytes,
            "host_min_bytes": self.host_min_bytes,
            "overridden": self.overridden,
            "how": self.how,
        }


class SelfTestRecord(Protocol):
    """The firmware's self-test run on the board's CPU in an emulator during deploy (the plain-C
    runtime's ``EmulationRecord``); deploy fails when it ran and did not pass."""

    @property
    def target(self) -> str | None: ...  # what ran it ("ATmega328P in simavr"); None: it did not run

    @property
    def passed(self) -> bool | None: ...


@dataclass(frozen=True)
class ReportSection:
    """What the report says about a runtime (the contract of :meth:`Backend.report_section`)."""

    library: str  # one line: runtime or library, version, kernel set
    optimized_ops: tuple[str, ...] = ()  # ops that run an optimized kernel on this board
    sizes: tuple[tuple[str, Any], ...] = ()  # (what, value) rows of the runtime's sizes table
    sizes_title: str = ""
    per_channel_note: str = ""  # what per-channel Dense costs this runtime


@dataclass
class DeployJob:
    """Everything a backend needs to plan and render one project."""

    quantized: QuantizedModel
    board: Board
    name: str
    golden_in: Samples
    golden_source: str
    arena_override: int | None = None
    # The output folder (a TFLite Micro project's .pio/libdeps or managed_components hold the
    # board's library sources after a first build).
    out_dir: Path | None = None
    runtime: str = ""  # the backend's name, for the generated API's comments
    runtime_title: str = ""  # the backend's title, for the firmware's boot banner
    prefix: str = ""  # C prefix of the generated API (deploy --name); empty: from ``name``
    labels: tuple[str, ...] = ()  # class names for the generated label table and the report
    labels_source: str | None = None
    # The deploy options this backend declares (its section.py OPTIONS), checked against their
    # declaration; the backend reads each typed with ``OPTION.read(job.options)``.
    options: OptionValues = field(default_factory=dict)

    @property
    def info(self) -> ModelInfo:
        return self.quantized.info

    @property
    def golden_resets(self) -> list[bool]:
        """Before which golden vector the state is reset (mcuq.model.state.reset_points)."""
        return reset_points(len(self.golden_in), self.quantized.state)


@dataclass
class BackendPlan:
    """A backend's decisions, made before a single file is written.

    ``arena`` is the record every runtime fills; ``section`` is the runtime's own part of the
    manifest (its ``SECTION`` dataclass, stored under ``SECTION.KEY``); ``golden_computed_by``
    says so when the runtime computed the golden outputs with something other than the x86
    tflite-micro wheel (the board's own library); ``context`` is the whole template context: the
    runtime-independent part (:func:`mcuq.project.context.common_context`, built once, here,
    because it holds the golden outputs only the plan computes; the plain-C plan also compiles
    its self-test from it) plus the runtime's own keys. ``extra_files`` are binary files the
    project carries (reference models).
    """

    golden_out: Samples
    arena: ArenaRecord
    fit: FitReport
    section: RuntimeSection
    context: dict[str, Any] = field(default_factory=dict)
    extra_files: dict[str, bytes] = field(default_factory=dict)
    emulation: SelfTestRecord | None = None  # None: no self-test ran at deploy
    golden_computed_by: str | None = None


@dataclass(frozen=True)
class LinkIdentity:
    """What a runtime's firmware says about itself in the validation link's identify answer
    (docs/device_protocol.md). The backend declares it when it renders the shared API and link
    files (:func:`mcuq.project.api.render_api`), so those templates never test a runtime's name."""

    library: str  # the library and its version ("chirale-tensorflowlite-2.0.0", "mcuq-c-0.1.0"); reduced to [A-Za-z0-9._-]
    arena_bytes: int  # the arena the firmware declares
    # True: the bytes in use are measured at run time (the runtime's mcuq_model.h declares
    # ``<prefix>_mcuq::arena_used_bytes()``, called from src/mcuq_link_port.cpp); False: one static
    # buffer planned in full, all of ``arena_bytes`` is in use
    arena_measured: bool


@dataclass
class RenderedProject:
    """File texts of a project: generated (mcuq owns them) and created-once user files."""

    files: dict[str, str | bytes]
    user_files: dict[str, str]

    def __post_init__(self) -> None:
        """A runtime's paths land in the user's folder: plain relative ones only, checked where they are made."""
        for path in [*self.files, *self.user_files]:
            if not inside_project(path) or path == MANIFEST:
                raise ValueError(f"internal error: generated path {path!r} is not a plain relative path")


class Backend(Protocol):
    """A runtime: plan (memory, fit, golden outputs), render, and check a generated project."""

    name: str
    title: str  # what the firmware's boot banner and the summaries call it ("TFLite Micro")
    column: str  # its column heading in `mcuq inspect` ("TFLM")

    def supported_ops(self) -> frozenset[str]:
        """The ops this runtime has a kernel for on some board (``mcuq inspect``'s column); a
        board's own library may have fewer, which ``plan`` checks."""
        ...

    def describe(self, board: Board) -> str:
        """One line for summaries: which runtime and library serve this board."""
        ...

    def board_note(self, board: Board) -> str | None:
        """What is not verified about this runtime on this board (``mcuq boards`` marks it; None: nothing)."""
        ...

    def unsupported_reason(self, board: Board) -> str | None:
        """Why this runtime cannot serve the board (None when it can)."""
        ...

    def per_channel_dense_rule(self, board: Board) -> str | None:
        """Why per-channel Dense is not allowed on this board (None: it is a choice)."""
        ...

    def arena_bytes(self, info: ModelInfo, board: Board, sample: list[np.ndarray]) -> int:
        """The working memory this model would need on the board (for the per-channel choice)."""
        ...

    def plan(self, job: DeployJob, console: Console) -> BackendPlan:
        """Check ops, plan memory, compute golden outputs, build/emulate where possible, check the fit;
        the plan carries the whole template context, so ``render`` recomputes nothing."""
        ...

    def render(self, job: DeployJob, plan: BackendPlan) -> RenderedProject:
        """The project's files as text, rendered from ``plan.context`` (nothing is recomputed)."""
        ...

    def validate(
        self, project: Path, manifest: Manifest, report: ValidationReport, options: ValidateOptions, console: Console
    ) -> bytes | None:
        """Host-side proof of a generated project. Returns the int8 model bytes when they check out.
        ``manifest.runtime_section`` is this backend's ``SECTION`` (the manifest checked that)."""
        ...

    def check_samples(self, project: Path, info: ModelInfo, inputs: Samples, tflm_outputs: Samples, report: ValidationReport) -> None:
        """Runtime-specific checks on the validation samples (the TFLite Micro outputs are given)."""
        ...

    def report_section(self, manifest: Manifest) -> ReportSection:
        """What the report says about this runtime: library line, kernel set, measured sizes."""
        ...

    def summary_lines(self, manifest: Manifest) -> list[str]:
        """Extra deploy-summary lines (emulator results, measured speed)."""
        ...

    def check_options(self, board: Board, options: OptionValues) -> None:
        """Refuse, before any work, a deploy option value this runtime cannot use on ``board``
        (types and choices are already checked against the declaration); raises MCUQError."""
        ...


def check_option_values(command: str, values: OptionValues) -> None:
    """Every given value names an option some runtime declares for ``command`` and fits its
    declaration (type, choices, the option it requires); raises UsageError in one line. None
    counts as not given."""
    declared = {option.name: option for _, option in declared_options(command)}
    for name, value in values.items():
        option = declared.get(name)
        if value is None:  # the Python API's "not given"
            continue
        if option is None:
            raise UsageError(f"unknown {command} option '{name}'; the runtimes declare: {', '.join(declared) or 'none'}")
        problem = option.problem(value)
        if problem:
            raise UsageError(f"{option.flag}: {problem}")
        if option.requires and not values.get(option.requires):
            needed = declared[option.requires].flag if option.requires in declared else option.requires
            raise UsageError(f"{option.flag} {value}: it is used by {needed} only; add {needed} or drop {option.flag}")
        if option.path and isinstance(value, str):
            check_path_text(value, f"{option.flag} {'folder' if option.metavar == 'DIR' else 'file'}")


def options_for(backend: Backend, command: str, values: OptionValues) -> tuple[dict[str, str | bool], list[str]]:
    """The values ``backend`` declares, and the flags of given ones only another runtime declares."""
    mine = {option.name for runtime, option in declared_options(command) if runtime == backend.name}
    used = {k: v for k, v in values.items() if k in mine and v is not None}
    flags = {option.name: option.flag for _, option in declared_options(command)}
    foreign = [flags.get(k, k) for k, v in values.items() if k not in mine and v not in (None, False)]
    return used, foreign


def deploy_options(backend: Backend, board: Board, values: OptionValues) -> dict[str, str | bool]:
    """The deploy options of ``backend``, checked against ``board``; an option only another
    runtime declares is refused (it would be silently ignored otherwise)."""
    options, foreign = options_for(backend, "deploy", values)
    if foreign:
        raise UsageError(f"{', '.join(foreign)}: not an option of runtime {backend.name} (board {board.id}); drop it")
    backend.check_options(board, options)
    return options


@dataclass(frozen=True)
class ValidateOptions:
    """What the user asked ``mcuq validate`` to do beyond the always-on checks: the values of the
    validate options the project's backend declares (read typed with ``OPTION.read(options.values)``)."""

    values: OptionValues = field(default_factory=dict)


def get_backend(name: str) -> Backend:
    """The registered backend called ``name`` (one line naming the known ones otherwise)."""
    packages = backend_packages()
    package = packages.get(name)
    if package is None:
        raise MCUQError(f"unknown runtime '{name}'; known runtimes: {', '.join(packages)}")
    backend: Backend = importlib.import_module(f"{package}.backend").BACKEND
    return backend


def all_backends() -> list[Backend]:
    """Every registered backend, in registry order (``mcuq inspect`` shows one column each)."""
    return [get_backend(name) for name in backend_packages()]


def backend_for(board: Board, runtime: str | None = None) -> Backend:
    """The backend that serves ``board``: ``runtime`` when the user chose one, else the board
    file's ``default_runtime``. Checked here rather than in ``mcuq.boards``, which is plain data
    and must not depend on the registry; a bad ``default_runtime`` still names the board file."""
    if runtime:
        backend = get_backend(runtime)
        reason = backend.unsupported_reason(board)
        if reason:
            raise MCUQError(reason)
        return backend
    name = board.default_runtime
    if name not in backend_packages():
        raise BoardError(f"{board.path}: default_runtime '{name}' is not one of {', '.join(backend_packages())}")
    backend = get_backend(name)
    reason = backend.unsupported_reason(board)
    if reason:
        raise BoardError(f"{board.path}: default_runtime '{name}': {reason}")
    return backend
