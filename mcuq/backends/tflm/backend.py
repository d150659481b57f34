"""TensorFlow Lite Micro backend: op resolver, arena plan, fit check, template context.

Everything that can make a generated project fail on the device is decided here, before a
single file is written: an op the board's library lacks, an arena that does not fit, a
model too big for flash.
"""

from __future__ import annotations

import hashlib
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mcuq.backends.base import (
    BackendPlan,
    DeployJob,
    FitReport,
    LinkIdentity,
    OptionValues,
    RenderedProject,
    ReportSection,
    Samples,
    ValidateOptions,
)
from mcuq.backends.tflm.arena import ArenaPlan, plan_arena, plan_arena_from_library
from mcuq.backends.tflm.build_check import UNVERIFIED_NOTE, LibraryMeasurement, measure_with_library
from mcuq.backends.tflm.ops import check_library_rules, cmsis_svdf_departures, optimized_kernel_ops, unlisted_core_note
from mcuq.backends.tflm.section import (
    BUILD,
    BUILD_SOURCE,
    TFLM_SOURCE,
    LibraryCheck,
    LibraryRecord,
    ResolverRecord,
    TflmBoardSection,
    TflmSection,
)
from mcuq.backends.tflm.toolchain import BuildError, cpu_target, find_library_tree
from mcuq.boards import Board, list_boards
from mcuq.checks.golden import read_golden, reproducible_golden
from mcuq.checks.outcome import ValidationReport
from mcuq.common.console import Console
from mcuq.common.errors import FitError, MCUQError, NativeCrashError, UnsupportedOpError, UsageError, ValidationFailed
from mcuq.libraries import TflmLibrary, add_method_name, installed_tflm_ops, load_library, signal_op
from mcuq.model.info import ModelInfo, parse_model
from mcuq.project.api import render_api
from mcuq.project.context import common_context
from mcuq.project.escape import c_identifier, c_include, code
from mcuq.project.manifest import INT8_MODEL_PATH, MANIFEST, Manifest, project_relative
from mcuq.project.render import c_byte_array, environment
from mcuq.reference.host_tflm import measure_min_arena, run_tflm

# Code-size estimates (bytes of flash) for the fit check, from TFLite Micro's published code-size figures:
# interpreter + allocator + planner ~10 KB on Cortex-M3, 20 KB on x86-64; kernels add
# several KB each, CMSIS-NN ~20 KB more in total. Stated as estimates in every output.
TFLM_CORE_FLASH = 40 * 1024
KERNEL_FLASH = {
    "CONV_2D": 12 * 1024,
    "DEPTHWISE_CONV_2D": 12 * 1024,
    "FULLY_CONNECTED": 8 * 1024,
    "TRANSPOSE_CONV": 10 * 1024,
    "SOFTMAX": 6 * 1024,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": 20 * 1024,
}
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


def board_tflm(board: Board) -> TflmBoardSection | None:
    """The board's [tflm] table (None: the board names no TFLite Micro library)."""
    return board.section(TflmBoardSection)


def resolver_entries(info: ModelInfo) -> list[ResolverEntry]:
    return [ResolverEntry(op, add_method_name(op), sum(1 for o in info.ops if o.name == op)) for op in info.op_names]


def check_library_ops(info: ModelInfo, library: TflmLibrary, board: Board) -> None:
    missing = library.missing_ops(info.op_names)
    signal = [op for op in missing if signal_op(op)]
    if signal:
        raise UnsupportedOpError(
            f"board {board.id}: {library.label} does not include TFLite Micro's signal library "
            f"({', '.join(op.removeprefix('CUSTOM:') for op in signal)}); deploy to a board whose library has it "
            f"({', '.join(_boards_with_ops(info.op_names)) or 'none'}), or compute these features in your application"
        )
    if missing:
        layers = {op: info.layer_of_op(next(o for o in info.ops if o.name == op)) for op in missing}
        detail = ", ".join(f"{op} ({add_method_name(op)}, Keras layer '{layers[op]}')" for op in missing)
        raise UnsupportedOpError(
            f"board {board.id}: {library.name} {library.version} has no kernel for {detail}; "
            "replace those layers, or pick a board whose library has them (see 'mcuq boards')"
        )


def _boards_with_ops(ops: list[str]) -> list[str]:
    """The shipped TFLite Micro boards whose library registers every one of ``ops``."""
    sections = [(b.id, board_tflm(b)) for b in list_boards()]
    return [board_id for board_id, t in sections if t is not None and not load_library(t.library).missing_ops(ops)]


def flash_estimate(info: ModelInfo, board: Board, golden_bytes: int = 0) -> int:
    kernels = sum(KERNEL_FLASH.get(op, DEFAULT_KERNEL_FLASH) for op in info.op_names)
    return len(info.raw) + TFLM_CORE_FLASH + kernels + board.framework_flash_bytes + golden_bytes


def golden_flash_bytes(info: ModelInfo, count: int) -> int:
    """The golden vectors are const arrays in flash: every input and output, ``count`` times."""
    return count * sum(t.nbytes for t in [*info.input_tensors, *info.output_tensors])


def fit_report(info: ModelInfo, board: Board, arena: ArenaPlan, golden_bytes: int = 0) -> FitReport:
    runtime_ram = INTERPRETER_RAM + RESOLVER_RAM_PER_OP * len(info.op_names)
    flash = flash_estimate(info, board, golden_bytes)
    internal_need = arena.target_bytes + runtime_ram + board.framework_ram_bytes
    in_psram = board.is_esp_idf and board.psram_bytes > 0 and internal_need > board.sram_bytes
    ram = (runtime_ram + board.framework_ram_bytes) if in_psram else internal_need
    return FitReport(
        ram,
        board.sram_bytes,
        flash,
        board.flash_bytes,
        in_psram,
        board.psram_bytes,
        "estimate: arena + interpreter objects + framework RAM; model + golden vectors + TFLM core + kernels + framework flash",
    )


def _kb(n: int) -> str:
    return f"{n / 1024:.0f} KB"


def nearest_fitting_boards(info: ModelInfo, host_min: int, exclude: str, golden_bytes: int = 0) -> list[str]:
    fitting = []
    for other in list_boards():
        other_tflm = board_tflm(other)
        if other.id == exclude or other.default_runtime != "tflm" or other_tflm is None:
            continue
        plan = plan_arena(info, host_min, other_tflm.kernels)
        report = fit_report(info, other, plan, golden_bytes)
        if report.fits and (not report.arena_in_psram or plan.target_bytes <= report.psram_budget):
            fitting.append((other.sram_bytes + other.psram_bytes, other.id))
    return [b for _, b in sorted(fitting)]


def check_fit(info: ModelInfo, board: Board, arena: ArenaPlan, report: FitReport, golden_bytes: int = 0) -> None:
    psram_short = report.arena_in_psram and arena.target_bytes > report.psram_budget
    if report.fits and not psram_short:
        return
    if arena.overridden and (report.ram_bytes > report.ram_budget or psram_short):
        # Other boards were planned with the measured arena, not this one: suggesting them would be wrong.
        raise FitError(
            f"--arena-size {arena.target_bytes:,} needs {_kb(report.ram_bytes)} RAM, {board.id} has "
            f"{_kb(board.sram_bytes)}; drop --arena-size to use the planned arena, or give a smaller one"
        )
    others = nearest_fitting_boards(info, arena.host_min_bytes, board.id, golden_bytes)
    fits = f"fits: {', '.join(others[:3])}" if others else "no shipped board fits: shrink the model"
    if golden_bytes and report.flash_bytes - golden_bytes <= report.flash_budget < report.flash_bytes:
        fits = f"the {golden_bytes:,} bytes of golden vectors tip it over: deploy with fewer --golden"
    if report.ram_bytes > report.ram_budget or psram_short:
        raise FitError(
            f"model needs {_kb(report.ram_bytes)} RAM, {board.id} has {_kb(board.sram_bytes)} "
            f"(arena {_kb(arena.target_bytes)}, framework {_kb(board.framework_ram_bytes)}); {fits}"
        )
    raise FitError(
        f"model needs {_kb(report.flash_bytes)} flash, {board.id} has {_kb(board.flash_bytes)} "
        f"(model {_kb(len(info.raw))}, estimated code and framework {_kb(report.flash_bytes - len(info.raw))}); {fits}"
    )


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


def plan_tflm(info: ModelInfo, board: Board, sample: list, arena_override: int | None = None, golden_count: int = 0) -> TflmPlan:
    """Check ops, measure and plan the arena, check the fit. Raises before anything is written."""
    golden_bytes = golden_flash_bytes(info, golden_count)
    section = board_tflm(board)
    assert section is not None
    library = load_library(section.library)
    check_library_ops(info, library, board)
    # Kernel features the op names cannot show (per-channel Dense, 16x8 ops): boards/libraries [features].
    check_library_rules(info, library, f"board {board.id}")
    host_min = measure_min_arena(info.raw, sample)
    arena = plan_arena(info, host_min, section.kernels, arena_override)
    fit = fit_report(info, board, arena, golden_bytes)
    check_fit(info, board, arena, fit, golden_bytes)
    return TflmPlan(library, resolver_entries(info), arena, fit)


# (template under firmware_templates/, output path, when) for the TFLM runtime.
TFLM_FILES: list[tuple[str, str, str]] = [
    ("tflm/platformio.ini.j2", "platformio.ini", "always"),
    ("tflm/README.md.j2", "README.md", "always"),
    ("tflm/src/model_data.h.j2", "src/model_data.h", "always"),
    ("tflm/src/model_data.cpp.j2", "src/model_data.cpp", "always"),
    ("tflm/src/golden_vectors.h.j2", "src/golden_vectors.h", "always"),
    ("tflm/src/golden_vectors.cpp.j2", "src/golden_vectors.cpp", "always"),
    ("tflm/src/mcuq_checks.h.j2", "src/mcuq_checks.h", "always"),
    ("tflm/src/mcuq_checks.cpp.j2", "src/mcuq_checks.cpp", "always"),
    ("tflm/src/op_resolver.h.j2", "src/op_resolver.h", "always"),
    ("tflm/src/mcuq_model.h.j2", "src/mcuq_model.h", "always"),
    ("tflm/src/mcuq_model.cpp.j2", "src/mcuq_model.cpp", "always"),
    ("tflm/src/mcuq_selftest.cpp.j2", "src/mcuq_selftest.cpp", "always"),
    ("tflm/src/main.cpp.j2", "src/main.cpp", "always"),
    ("tflm/test/test_native/test_main.cpp.j2", "test/test_native/test_main.cpp", "always"),
    ("tflm/tests/test_host.py.j2", "tests/test_host.py", "always"),
    ("tflm/espidf/CMakeLists.txt.j2", "CMakeLists.txt", "espidf"),
    ("tflm/espidf/src_CMakeLists.txt.j2", "src/CMakeLists.txt", "espidf"),
    ("tflm/espidf/idf_component.yml.j2", "src/idf_component.yml", "espidf"),
    ("tflm/espidf/sdkconfig.defaults.j2", "sdkconfig.defaults", "espidf"),
]
# Created once, then owned by the user: never overwritten, not even with --force.
TFLM_USER_FILES: list[tuple[str, str]] = [("api/app.cpp.j2", "src/app.cpp")]


ARRAY_RE = re.compile(r"g_\w+_model_data\[\][^=]*=\s*\{(?P<body>[^}]*)\}")
MODEL_SOURCE = "src/model_data.cpp"


def model_bytes_from_c_text(text: str, where: str = MODEL_SOURCE) -> bytes:
    """The bytes of the g_mcuq_model_data array in a model_data.cpp text."""
    match = ARRAY_RE.search(text)
    if match is None:
        raise ValidationFailed(f"{where}: no g_<name>_model_data array found")
    tokens = [tok for tok in re.split(r"[\s,]+", match.group("body")) if tok]
    try:
        return bytes(int(tok, 0) for tok in tokens)
    except ValueError as exc:
        raise ValidationFailed(f"{where}: the model array holds a non-byte value ({exc})") from None


def model_bytes_from_c_array(source: Path) -> bytes:
    """The bytes the firmware will flash, parsed back out of model_data.cpp (tests and tools)."""
    if not source.is_file():
        raise ValidationFailed(f"{source}: missing; regenerate the project with 'mcuq deploy --force'")
    return model_bytes_from_c_text(source.read_text(), str(source))


class TflmBackend:
    """TensorFlow Lite Micro: the model as a C array, an op resolver and an arena sized from x86."""

    name = "tflm"
    title = "TFLite Micro"
    column = "TFLM"

    def supported_ops(self) -> frozenset[str]:
        return installed_tflm_ops()

    def describe(self, board: Board) -> str:
        section = board_tflm(board)
        library = load_library(section.library) if section else None
        return f"TFLite Micro {library.name} {library.version}" if library else "TFLite Micro"

    def board_note(self, board: Board) -> str | None:
        section = board_tflm(board)
        if section is None:
            return None
        return unlisted_core_note(load_library(section.library), section.core_architecture)

    def unsupported_reason(self, board: Board) -> str | None:
        if board_tflm(board) is None:
            return f"board {board.id} names no TFLite Micro library ([tflm] section); use --runtime c or another board"
        return None

    def per_channel_dense_rule(self, board: Board) -> str | None:
        """The board's library decides: Chirale 2.0.0 applies one scale to every channel."""
        section = board_tflm(board)
        if section is None:
            return None
        library = load_library(section.library)
        if library.features.per_channel_fully_connected:
            return None
        return f"{library.name} {library.version}"

    def arena_bytes(self, info: ModelInfo, board: Board, sample: list[np.ndarray]) -> int:
        """Target arena of this model on the board (x86 measurement + 32-bit and kernel corrections):
        a per-channel FULLY_CONNECTED keeps two int32 per output channel in it."""
        section = board_tflm(board)
        kernels = section.kernels if section else "reference"
        if section is not None:  # a missing kernel is the reason, not "could not allocate the model"
            check_library_ops(info, load_library(section.library), board)
        return plan_arena(info, measure_min_arena(info.raw, sample), kernels).target_bytes

    def plan(self, job: DeployJob, console: Console) -> BackendPlan:
        info, board = job.info, job.board
        with console.step("measuring the arena on x86 TFLite Micro and checking the fit"):
            tflm = plan_tflm(info, board, job.golden_in[0], job.arena_override, len(job.golden_in))
        library = tflm.library
        measured = self._measure_with_library(job, console)
        if measured is None and library.features.lstm_kernel == "legacy" and "UNIDIRECTIONAL_SEQUENCE_LSTM" in info.op_names:
            raise UnsupportedOpError(
                f"board {board.id}: {library.label} runs UNIDIRECTIONAL_SEQUENCE_LSTM with its 2022 kernel, whose arena x86 "
                "TFLite Micro cannot predict; deploy with the library sources at hand (--tflm-source DIR, or after "
                "`pio pkg install` in the output folder) so mcuq measures it and computes the golden vectors with it"
            )
        departing = cmsis_svdf_departures(info, library) if measured is None else []
        if departing:
            raise UnsupportedOpError(
                f"board {board.id}: {library.label}'s CMSIS-NN SVDF computes {departing[0]} differently from "
                "x86 TFLite Micro (it ignores the state's zero point and keeps an int8 state as clamped int16); deploy "
                "with the library sources at hand (--tflm-source DIR, or after `pio pkg install` in the output folder) "
                "so the golden vectors come from that library, or use an int16 state with zero point 0"
            )
        if measured is not None:
            golden_out = measured.golden_out
            if measured.true_min_bytes is not None:
                arena = plan_arena_from_library(
                    info,
                    tflm.arena.host_min_bytes,
                    tflm.arena.kernels,
                    measured.true_min_bytes,
                    f"{measured.library} on {measured.cpu_label}",
                    job.arena_override,
                )
                golden_bytes = golden_flash_bytes(info, len(job.golden_in))
                fit = fit_report(info, board, arena, golden_bytes)
                check_fit(info, board, arena, fit, golden_bytes)
                tflm = TflmPlan(tflm.library, tflm.resolver, arena, fit)
            check = LibraryCheck(
                golden_from_library=True,
                # .pio/libdeps inside the project: relative; --tflm-source elsewhere: its folder name only
                library_sources=project_relative(measured.source, job.out_dir or Path(measured.source).parent),
                arena_measured_on=measured.cpu_label,
                note=f"golden vectors computed by {measured.library} (x86-64 build); the library the board builds",
            )
            computed_by: str | None = f"{measured.library} (x86-64 build of the board's library)"
        else:
            with console.step(f"computing {len(job.golden_in)} golden vectors on x86 TFLite Micro"):
                golden_out = reproducible_golden(info, job.golden_in, tflm.arena.host_bytes, job.quantized.source.name, job.golden_resets)
            check = LibraryCheck(
                golden_from_library=False,
                library_sources=None,
                arena_measured_on=None,
                note=UNVERIFIED_NOTE.format(library=library.label),
            )
            computed_by = None
        section = TflmSection(
            library=LibraryRecord(
                library.id,
                library.name,
                library.version,
                library.snapshot,
                tflm.arena.kernels,  # the board's [tflm] kernels
            ),
            resolver=[ResolverRecord(e.op, e.method, e.count) for e in tflm.resolver],
            library_check=check,
        )
        raw = info.raw
        context = {
            **common_context(job, golden_out),
            "tflm": board_tflm(board),
            "board_notes": board.notes,
            "project_name": c_identifier(f"mcuq_{job.name}"),
            "model_size": len(raw),
            "model_crc32": zlib.crc32(raw) & 0xFFFFFFFF,
            "model_sha256": code(hashlib.sha256(raw).hexdigest()),
            "model_array": c_byte_array(raw),
            "resolver": [{"op": e.op, "method": c_identifier(e.method), "count": e.count} for e in tflm.resolver],
            "library": library,
            "library_header": c_include(tflm.library_header, "library header") if tflm.library_header else None,
            "arena": {"target_bytes": tflm.arena.target_bytes, "how": tflm.arena.how, "in_psram": tflm.fit.arena_in_psram},
            "fit": tflm.fit.as_dict(),
        }
        return BackendPlan(golden_out, tflm.arena, tflm.fit, section, context, golden_computed_by=computed_by)

    @staticmethod
    def _measure_with_library(job: DeployJob, console: Console) -> LibraryMeasurement | None:
        """Golden outputs and the exact arena from the board's own library, when its sources are at hand."""
        board, info = job.board, job.info
        section = board_tflm(board)
        if section is None:
            return None
        given = TFLM_SOURCE.read(job.options)
        source = Path(given) if given else None
        if source is None and job.out_dir is None:
            return None
        outputs = [(tuple(t.shape), t.dtype) for t in info.output_tensors]
        try:
            return measure_with_library(
                info.raw,
                outputs,
                section.library,
                cpu_target(board.cpu),
                job.golden_in,
                source,
                job.out_dir,
                console,
                job.golden_resets,
            )
        except BuildError as exc:
            raise MCUQError(f"board {board.id}: {exc}") from None

    @staticmethod
    def link_identity(context: dict[str, Any]) -> LinkIdentity:
        """The validation link names the board's library and reports the arena bytes the
        interpreter has in use (``arena_used_bytes()``), measured on the board."""
        library = context["library"]
        return LinkIdentity(f"{library.id}-{library.version}", int(context["arena"]["target_bytes"]), arena_measured=True)

    def render(self, job: DeployJob, plan: BackendPlan) -> RenderedProject:
        env = environment()
        context = plan.context
        framework = job.board.platformio.framework
        files: dict[str, str | bytes] = {
            path: env.get_template(template).render(**context) for template, path, when in TFLM_FILES if when in ("always", framework)
        }
        files.update(render_api(context, self.link_identity(context)))
        users = {path: env.get_template(template).render(**context) for template, path in TFLM_USER_FILES}
        # Proven once, here: the C array the firmware flashes is exactly the model. validate then
        # trusts the file hashes and reads the model from mcuq/model_int8.tflite.
        model_source = files[MODEL_SOURCE]
        if not isinstance(model_source, str) or model_bytes_from_c_text(model_source) != job.info.raw:
            raise MCUQError(f"internal error: {MODEL_SOURCE} does not render the model byte for byte; please report this")
        return RenderedProject(files, users)

    def validate(
        self, project: Path, manifest: Manifest, report: ValidationReport, options: ValidateOptions, console: Console
    ) -> bytes | None:
        with console.step("validating on x86 TFLite Micro"):
            raw = self._check_model_bytes(report, project, manifest)
            if raw is not None:
                self._check_golden(report, project, raw, manifest)
        if BUILD.read(options.values) and raw is not None:
            from mcuq.backends.tflm.build_check import add_build_checks

            add_build_checks(report, project, manifest, raw, BUILD_SOURCE.read(options.values), console)
        return raw

    def check_options(self, board: Board, options: OptionValues) -> None:
        """--tflm-source must hold the board's TFLite Micro library: a folder that does not is said to
        be one, in one line, instead of being ignored (the golden vectors would silently come from x86)."""
        source = TFLM_SOURCE.read(options)
        if source is None:
            return
        if not Path(source).is_dir():
            raise UsageError(f"--tflm-source {source}: no such folder; give the board's TFLite Micro library sources")
        section = board_tflm(board)
        if section is None:
            raise UsageError(f"--tflm-source {source}: {board.id} uses no TFLite Micro library; drop --tflm-source")
        try:
            find_library_tree(section.library, None, Path(source), check_version=False)
        except BuildError as exc:
            if "not found" not in str(exc):
                raise
            raise MCUQError(
                f"--tflm-source {source}: not a TFLite Micro library ({section.library}, the library {board.id} uses, "
                "was not found there); give the folder pio pkg install / idf.py reconfigure put it in"
            ) from None

    def check_samples(self, project: Path, info: ModelInfo, inputs: Samples, tflm_outputs: Samples, report: ValidationReport) -> None:
        """The TFLite Micro outputs are the reference itself: nothing more to compare."""

    def report_section(self, manifest: Manifest) -> ReportSection:
        section = manifest.section(TflmSection)
        library, check = section.library, section.library_check
        kernels = library.kernels or "reference"
        note = f" ({check.note})" if check.note else ""
        return ReportSection(
            library=f"{library.name} {library.version}, {kernels} kernels{note}",
            optimized_ops=tuple(sorted(optimized_kernel_ops().get(kernels, frozenset()))),
            per_channel_note="TFLite Micro keeps a multiplier and a shift (two int32) per output channel of every "
            "per-channel FULLY_CONNECTED in the arena; per-tensor Dense needs none.",
        )

    def summary_lines(self, manifest: Manifest) -> list[str]:
        check = manifest.section(TflmSection).library_check
        return [f"library: {check.note}" + (f"; arena measured on {check.arena_measured_on}" if check.arena_measured_on else "")]

    @staticmethod
    def _check_model_bytes(report: ValidationReport, project: Path, manifest: Manifest) -> bytes | None:
        path = project / INT8_MODEL_PATH
        raw = path.read_bytes() if path.is_file() else b""
        expected = manifest.model
        crc = f"{zlib.crc32(raw) & 0xFFFFFFFF:08x}"
        ok = len(raw) == expected.bytes and crc == expected.crc32 and hashlib.sha256(raw).hexdigest() == expected.sha256
        detail = (
            f"{len(raw)} bytes, crc32 {crc} match {MANIFEST}"
            if ok
            else f"model checksum mismatch: {INT8_MODEL_PATH} holds {len(raw)} bytes crc32 {crc}, "
            f"{MANIFEST} says {expected.bytes} bytes crc32 {expected.crc32}: the model file was modified or damaged; "
            "regenerate with 'mcuq deploy --force'"
        )
        report.add("model checksum", ok, detail)
        return raw if ok else None

    @staticmethod
    def _check_golden(report: ValidationReport, project: Path, raw: bytes, manifest: Manifest) -> None:
        # raw is what _check_model_bytes read from mcuq/model_int8.tflite (the firmware's C array is
        # only proven by its hash), so any parse error names that file.
        info = parse_model(raw, INT8_MODEL_PATH)
        host_arena = int(manifest.arena["host_bytes"])
        try:
            golden = read_golden(project, info)
        except ValidationFailed as exc:
            report.add("golden vectors", False, str(exc))
            return
        golden_in, golden_out, resets = golden.inputs, golden.outputs, golden.resets
        try:
            run = run_tflm(raw, golden_in, host_arena, len(info.outputs), resets=resets)  # sequences
        except NativeCrashError as exc:
            if "allocate" in str(exc):
                needed = measure_min_arena(raw, golden_in[0])
                report.add(
                    "arena",
                    False,
                    f"arena too small: planned host-equivalent {host_arena} B < x86 TFLite Micro minimum {needed} B; "
                    "redeploy without --arena-size or with a larger one",
                )
            else:
                report.add("x86 TFLite Micro run", False, str(exc))
            return
        report.add("arena", True, f"allocates and invokes with the host equivalent of the plan ({host_arena} B)")
        from_library = manifest.section(TflmSection).library_check.golden_from_library
        for v, (got, want) in enumerate(zip(run.outputs, golden_out)):
            carried = "" if resets[v] else " (state carried from the previous vector)"
            diffs = [float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64)))) if g.size else 0.0 for g, w in zip(got, want)]
            worst = max(diffs, default=0.0)
            if from_library and worst != 0.0:
                # The golden vectors are the board library's own; the wheel is a newer TFLite Micro.
                report.add(
                    f"golden vector {v}",
                    True,
                    f"x86 tflite-micro differs from the board library's golden output by "
                    f"{worst:g} (older kernel arithmetic); `mcuq validate --build` checks the library itself",
                )
                continue
            report.add(
                f"golden vector {v}",
                worst == 0.0,
                f"bit-exact on x86 TFLite Micro{carried}"
                if worst == 0.0
                else f"golden vector {v} differs from the x86 TFLite Micro output (max abs diff {worst:g}): " + report.mismatch_cause(),
            )


BACKEND = TflmBackend()
