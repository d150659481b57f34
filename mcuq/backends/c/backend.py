"""The plain-C int8 runtime as a :class:`~mcuq.backends.base.Backend`.

Compile the model to C, prove it bit-exact with x86 TFLite Micro on the host (gcc), build it
for the MCU and run its self-test in an emulator when the toolchain is installed, and
fit-check with the sizes the toolchain reports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypedDict

import numpy as np

from mcuq import __version__
from mcuq.backends.base import ArenaSummary, BackendPlan, DeployJob, OptionValues, RenderedProject, ReportSection, Samples, ValidateOptions
from mcuq.backends.c.avr_codegen import attach_avr_kernels
from mcuq.backends.c.codegen import compile_sources, render_c_project, run_host, selftest_sources
from mcuq.backends.c.fit import check_c_fit, estimate_c_fit, measured_c_fit
from mcuq.backends.c.ir import CProgram
from mcuq.backends.c.program import SUPPORTED_OPS, compile_model
from mcuq.backends.c.section import AVR_KERNELS, EMULATE, CRuntimeSection, EmulationRecord
from mcuq.boards import Board
from mcuq.checks.golden import read_golden, reproducible_golden
from mcuq.checks.outcome import ValidationReport
from mcuq.common.console import Console
from mcuq.common.errors import MCUQError, ValidationFailed
from mcuq.model.info import ModelInfo, parse_model
from mcuq.project.context import common_context
from mcuq.project.integrity import sha256_bytes
from mcuq.project.manifest import INT8_MODEL_PATH, MANIFEST, Manifest
from mcuq.project.records import FitJSON
from mcuq.reference.host_tflm import measure_min_arena, run_tflm
from mcuq.toolchains.emulate import EmulationResult, build_and_run, no_emulator_reason

C_SOURCES = (
    "mcuq_model.h",
    "mcuq_model.c",
    "mcuq_kernels.h",
    "mcuq_kernels.c",
    "mcuq_kernels_s16.h",
    "mcuq_kernels_s16.c",
    "mcuq_lstm.h",
    "mcuq_lstm.c",
    "mcuq_svdf.h",
    "mcuq_svdf.c",
    "mcuq_golden.h",
    "mcuq_golden.c",
    "mcuq_selftest.h",
    "mcuq_selftest.c",
)
AVR_MAX_OBJECT = 32767  # avr-gcc: size_t is 16 bits
AVR_NEAR_FLASH = 64 * 1024  # pgm_read_* reaches the first 64 KB of flash


def check_avr_limits(program: CProgram) -> None:
    """What avr-gcc and pgm_read_* cannot address, refused before building."""
    biggest = max(program.constants, key=lambda c: c.values.nbytes, default=None)
    if biggest is not None and biggest.values.nbytes > AVR_MAX_OBJECT:
        raise MCUQError(
            f"weight array {biggest.name} is {biggest.values.nbytes} B; avr-gcc limits one object to {AVR_MAX_OBJECT} B: "
            "split or shrink that layer, or use a 32-bit board"
        )
    if program.flash_constant_bytes > AVR_NEAR_FLASH - 8 * 1024:
        raise MCUQError(
            f"{program.flash_constant_bytes} B of weights exceed the {AVR_NEAR_FLASH // 1024} KB that AVR's pgm_read_* "
            "reaches in this runtime version; shrink the model or use a 32-bit board"
        )


def emulate_sources(sources: dict[str, str], board: Board) -> EmulationResult:
    """The self-test built for the board's own CPU ([cpu] in the board file) in its emulator."""
    return build_and_run(sources, board)


def uses_simd(board: Board) -> bool:
    """Lay the weights out for the SIMD path on CPUs with the DSP extension (board data)."""
    return board.cpu is not None and board.cpu.dsp


def board_of_manifest(project: Path, manifest: Manifest) -> Board:
    """The project's board: the shipped board file of that id, or the board file it names."""
    from mcuq.boards import get_board, load_board_file

    record = manifest.board
    try:
        return get_board(record.id)
    except MCUQError:
        path = project / record.file  # a board file outside the project is recorded by name (and sha256) only
        if not path.is_file():
            raise MCUQError(
                f"board '{record.id}' is not shipped with mcuq and its file {record.file} (sha256 {record.sha256[:12]}...) "
                f"is not in {project}: copy it there to emulate"
            ) from None
        board = load_board_file(path)
        if board.sha256 != record.sha256:
            raise MCUQError(
                f"{path}: differs from the board file the project was generated for; regenerate with 'mcuq deploy --force'"
            ) from None
        return board


def project_sources(project: Path) -> dict[str, str]:
    return {name: (project / "src" / name).read_text() for name in C_SOURCES if (project / "src" / name).is_file()}


def generated_sources(manifest: Manifest) -> list[str]:
    """The project's generated C/C++ sources under src/ (names relative to src/), from the
    manifest: what validate compiles. The user's app.cpp is not among them."""
    return sorted(path[4:] for path in manifest.files if path.startswith("src/") and path.endswith((".c", ".cpp")))


class CContext(TypedDict):
    """The ``c`` key of a plain-C project's template context."""

    arena_bytes: int
    lower_bound: int
    tflm_arena: int
    emulation: dict[str, object] | None  # the deploy-time self-test (EmulationResult.as_dict), None: not run
    not_emulated: str | None


class CTemplateKeys(TypedDict):
    """What the plain-C runtime adds to the common template context."""

    fit: FitJSON | None  # None in the self-test build, before the fit is measured
    c: CContext


def c_template_context(program: CProgram, tflm_min: int) -> CTemplateKeys:
    assert program.plan is not None
    c: CContext = {
        "arena_bytes": program.arena_bytes,
        "lower_bound": program.plan.lower_bound,
        "tflm_arena": tflm_min,
        "emulation": None,
        "not_emulated": None,
    }
    return {"fit": None, "c": c}


class CBackend:
    """Plain C99: one call per op with TFLite Micro's integer arithmetic, one static buffer."""

    name = "c"
    title = "plain-C int8 runtime"
    column = "C"

    def supported_ops(self) -> frozenset[str]:
        return SUPPORTED_OPS

    def describe(self, board: Board) -> str:
        return self.title

    def board_note(self, board: Board) -> str | None:
        return None

    def unsupported_reason(self, board: Board) -> str | None:
        return None

    def per_channel_dense_rule(self, board: Board) -> str | None:
        return None

    def arena_bytes(self, info: ModelInfo, board: Board, sample: list[np.ndarray]) -> int:
        """The activation buffer: per-channel multipliers and shifts are const arrays in flash,
        so per-channel Dense costs this runtime no RAM (both answers are equal)."""
        program = compile_model(info, simd=uses_simd(board))
        return program.arena_bytes

    def plan(self, job: DeployJob, console: Console) -> BackendPlan:
        info, board, q = job.info, job.board, job.quantized
        if q.options.io != "int8":  # int16 activations (16x8) come with int16 I/O: both run here
            what = f"{q.options.io} input/output"
            fix = (
                "re-export the .tflite from its source model with int8 I/O, or run mcuq on the source model with --io int8"
                if q.source_kind == "tflite"
                else "deploy with --io int8"
            )
            raise MCUQError(
                f"{q.source.name}: the plain-C runtime runs integer models with integer I/O, this one has {what}; "
                f"{fix} (or choose a TFLite Micro board, which runs it as it is)"
            )
        program = compile_model(info, simd=uses_simd(board), state_mode=q.state)
        assert program.plan is not None
        resets = job.golden_resets
        with console.step(f"computing {len(job.golden_in)} golden vectors on x86 TFLite Micro"):
            tflm_min = measure_min_arena(info.raw, job.golden_in[0])
            golden_out = reproducible_golden(info, job.golden_in, tflm_min, job.quantized.source.name, resets)
        common = common_context(job, golden_out)  # built once: the self-test below and render() share it

        def self_test_sources() -> dict[str, str]:
            return selftest_sources(program, job.name, {**common, **c_template_context(program, tflm_min)})

        golden_bytes = sum(x.nbytes for s in job.golden_in for x in s) + sum(x.nbytes for s in golden_out for x in s)
        no_emulator = no_emulator_reason(board)
        if (
            board.architecture == "avr8" and no_emulator is None and (AVR_KERNELS.read(job.options) or "generated") == "generated"
        ):  # only where its self-test runs
            with console.step("generating AVR assembly for the layers with few MACs per output"):
                attach_avr_kernels(program, common["api"]["prefix"], board, golden_bytes)
        sources = self_test_sources()
        with console.step("checking the generated C against x86 TFLite Micro"):
            c_out = run_host(program, sources, job.golden_in, resets)
        if any(not np.array_equal(a, b) for got, want in zip(c_out, golden_out) for a, b in zip(got, want)):
            raise MCUQError("internal error: the generated C differs from x86 TFLite Micro on the golden vectors; please report this model")
        check_c_fit(program, board, estimate_c_fit(program, board, golden_bytes), golden_bytes)  # cheap refusal first
        if board.architecture == "avr8":
            check_avr_limits(program)
        emulation = None
        if no_emulator is None:
            with console.step(f"building for {board.cpu.core if board.cpu else None} and running the self-test in the emulator"):
                emulation = emulate_sources(sources, board)
            fit = measured_c_fit(
                emulation.flash_bytes, emulation.ram_bytes, board, "avr-size" if board.architecture == "avr8" else "arm-none-eabi-size"
            )
            if program.avr_kernels and not fit.fits:  # the generated layers pushed it over: the generic kernels only
                program.avr_kernels = {}
                sources = self_test_sources()
                with console.step("the firmware with generated layers does not fit: building it with the generic kernels"):
                    emulation = emulate_sources(sources, board)
                fit = measured_c_fit(emulation.flash_bytes, emulation.ram_bytes, board, "avr-size")
        else:
            fit = estimate_c_fit(program, board, golden_bytes)
        check_c_fit(program, board, fit, golden_bytes)
        emulated = (
            EmulationRecord(
                emulation.target,
                emulation.passed,
                emulation.ticks,
                emulation.unit,
                emulation.flash_bytes,
                emulation.ram_bytes,
                emulation.clock_mhz,
                emulation.latency_ms,
                "emulator estimate",
            )
            if emulation
            else EmulationRecord(None, not_emulated=no_emulator)
        )
        arena = ArenaSummary(
            program.arena_bytes,
            tflm_min,
            tflm_min,
            f"plain-C liveness plan {program.arena_bytes} B (lower bound {program.plan.lower_bound} B)"
            + (f" + {program.state_bytes} B of recurrent state kept across invokes" if program.state else "")
            + f"; x86 TFLite Micro would need {tflm_min} B",
        )
        section = CRuntimeSection(
            arena_bytes=program.arena_bytes,
            lower_bound_bytes=program.plan.lower_bound,
            tflm_host_min_bytes=tflm_min,
            flash_constant_bytes=program.flash_constant_bytes,
            int8_reference=INT8_MODEL_PATH,
            emulation=emulated,
            generated_ops=sorted(program.avr_kernels),
            generated_bytes=sum(k.code_bytes for k in program.avr_kernels.values()),
        )
        context = {**common, **c_template_context(program, tflm_min)}
        context["fit"] = fit.as_dict()
        context["c"]["emulation"] = emulation.as_dict() if emulation else None
        context["c"]["not_emulated"] = no_emulator
        context["program"] = program
        return BackendPlan(
            golden_out, arena, fit, section, context, {INT8_MODEL_PATH: info.raw}, emulated if emulation else None
        )  # None: not emulated (the section says why)

    def render(self, job: DeployJob, plan: BackendPlan) -> RenderedProject:
        files, users = render_c_project(plan.context["program"], job.name, plan.context)
        rendered: dict[str, str | bytes] = dict(files)
        return RenderedProject(rendered, dict(users))

    def validate(
        self, project: Path, manifest: Manifest, report: ValidationReport, options: ValidateOptions, console: Console
    ) -> bytes | None:
        """The reference model, then the project's own C built with gcc (and the firmware in an emulator)."""
        with console.step("validating the plain-C runtime against x86 TFLite Micro"):
            section = manifest.section(CRuntimeSection)
            ref = project / section.int8_reference
            raw = ref.read_bytes() if ref.is_file() else b""
            ok = sha256_bytes(raw) == manifest.model.sha256
            report.add(
                "model checksum",
                ok,
                f"{ref.name} matches {MANIFEST}"
                if ok
                else f"model checksum mismatch: {ref} is missing or differs from {MANIFEST}; regenerate with 'mcuq deploy --force'",
            )
            if not ok:
                return None
            info = parse_model(raw, str(ref))
            try:
                golden = read_golden(project, info)  # with its reset points: sequences when the model keeps state
                golden_in, golden_out, resets = golden.inputs, golden.outputs, golden.resets
                compiled = compile_sources(project / "src", generated_sources(manifest))
                c_out = run_host(CProgram(info), project_sources(project), golden_in, resets)
                tflm_out = run_tflm(raw, golden_in, int(manifest.arena["host_bytes"]), len(info.outputs), resets=resets).outputs
            except (ValidationFailed, MCUQError) as exc:
                report.add("plain-C host build", False, str(exc))
                return raw
            report.add("plain-C host build", True, f"{compiled}; mcuq_model.c and mcuq_kernels.c run on the golden vectors")
            for v, (c, t, g) in enumerate(zip(c_out, tflm_out, golden_out)):
                c_ok = all(np.array_equal(a, b) for a, b in zip(c, g))
                t_ok = all(np.array_equal(a, b) for a, b in zip(t, g))
                who = " and ".join(w for w, bad in (("C output", not c_ok), ("x86 TFLite Micro", not t_ok)) if bad)
                report.add(
                    f"golden vector {v}",
                    c_ok and t_ok,
                    "C output and x86 TFLite Micro are bit-exact with it"
                    if c_ok and t_ok
                    else f"golden vector {v} differs ({who} disagree): " + report.mismatch_cause(),
                )
        if EMULATE.read(options.values):
            self._check_emulation(report, project, manifest)
        elif section.generated_ops:
            self._report_generated_code(report, section)
        return raw

    @staticmethod
    def _report_generated_code(report: ValidationReport, section: CRuntimeSection) -> None:
        """The host build runs the generic kernels, not the AVR assembly generated for some ops:
        say what ran that code (the deploy-time self-test on these same, hash-checked files)."""
        ops = section.generated_ops_text
        emulation = section.emulation
        if emulation.target and emulation.passed:
            report.add(
                "generated AVR code",
                True,
                f"ops {ops} passed every golden vector on {emulation.target} at deploy, from these same files "
                "(hashes above); the host build runs the generic kernels instead; --emulate runs the firmware again",
            )
        else:
            report.skip(
                "generated AVR code",
                f"ops {ops} run only on the AVR and the host build runs the generic kernels instead; "
                "install gcc-avr and simavr and pass --emulate to run them",
            )

    def check_samples(self, project: Path, info: ModelInfo, inputs: Samples, tflm_outputs: Samples, report: ValidationReport) -> None:
        """The project's C on every validation sample against the TFLite Micro outputs already computed."""
        c_out = run_host(CProgram(info), project_sources(project), inputs)
        same = sum(all(np.array_equal(a, b) for a, b in zip(c, t)) for c, t in zip(c_out, tflm_outputs))
        report.add("C vs TFLite Micro on validation data", same == len(inputs), f"{same}/{len(inputs)} samples bit-exact")

    def report_section(self, manifest: Manifest) -> ReportSection:
        c = manifest.section(CRuntimeSection)
        sizes: list[tuple[str, Any]] = [
            ("activation buffer (bytes)", c.arena_bytes),
            ("liveness lower bound (bytes)", c.lower_bound_bytes),
            ("x86 TFLite Micro minimum arena (bytes)", c.tflm_host_min_bytes),
            ("weights in flash (bytes)", c.flash_constant_bytes),
        ]
        if c.generated_ops:
            sizes.append(("AVR assembly generated for ops", f"{c.generated_ops_text} ({c.generated_bytes:,} B)"))
        emulation = c.emulation
        if emulation.target:
            sizes += [
                ("emulator", emulation.target),
                ("self-test", "PASS" if emulation.passed else "FAIL"),
                (f"{emulation.unit} per inference", emulation.ticks),
                ("latency (emulator estimate)", emulation.latency_text or "-"),
                ("firmware flash (bytes)", emulation.flash_bytes),
                ("firmware static RAM (bytes)", emulation.ram_bytes),
            ]
        else:
            sizes.append(("emulator", emulation.not_emulated or "not run"))
        return ReportSection(
            library=f"plain-C int8 runtime {manifest.mcuq_version or __version__}, mcuq-c kernels",
            sizes=tuple(sizes),
            sizes_title="Plain-C runtime: measured sizes and speed",
            per_channel_note="The plain-C runtime keeps per-channel multipliers and shifts in flash (const arrays "
            "next to the weights), so per-channel Dense costs it no RAM: both arenas above are equal.",
        )

    def check_options(self, board: Board, options: OptionValues) -> None:
        """--avr-kernels needs nothing beyond its declared choices."""

    def summary_lines(self, manifest: Manifest) -> list[str]:
        section = manifest.section(CRuntimeSection)
        emulation = section.emulation
        generated = (
            [
                f"avr code: ops {section.generated_ops_text} as assembly generated for this model "
                f"({section.generated_bytes:,} B; the others run the generic kernels)"
            ]
            if section.generated_ops
            else []
        )
        if not emulation.target:
            return [*generated, f"not emulated: {emulation.not_emulated}"]
        latency = emulation.latency_text
        return [
            *generated,
            f"emulated: {emulation.target}: self-test {'PASS' if emulation.passed else 'FAIL'}, "
            f"{emulation.ticks or 0:,} {emulation.unit} per inference" + (f"; latency {latency}" if latency else ""),
        ]

    @staticmethod
    def _check_emulation(report: ValidationReport, project: Path, manifest: Manifest) -> None:
        try:
            board = board_of_manifest(project, manifest)
        except MCUQError as exc:
            report.add("emulator", False, str(exc))
            return
        reason = no_emulator_reason(board)
        if reason:
            report.add("emulator", False, reason)
            return
        try:
            result = emulate_sources(project_sources(project), board)
        except MCUQError as exc:
            report.add("emulator", False, str(exc))
            return
        report.metrics["emulation"] = {k: v for k, v in result.as_dict().items() if k != "log"}
        report.add(
            "emulator",
            result.passed,
            f"{result.target}: self-test {'PASS' if result.passed else 'FAIL'}, "
            f"{result.ticks} {result.unit} per inference, flash {result.flash_bytes} B, RAM {result.ram_bytes} B",
        )


BACKEND = CBackend()
