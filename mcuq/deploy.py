"""``mcuq deploy``: model -> full int8 -> arena-sized TFLite Micro PlatformIO project -> host proof.

This module only orchestrates the stages (converter, inspected model, backend, render,
writer, validator); each decision lives in its own module.
"""

from __future__ import annotations

import argparse
import platform
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from mcuq import __version__
from mcuq.backends.tflm.backend import TflmPlan, plan_tflm, tensor_context
from mcuq.boards import Board, get_board
from mcuq.common.console import SILENT, Console
from mcuq.common.errors import MCUQError
from mcuq.frontend.calibration import InputSpec, SampleSet, load_samples
from mcuq.frontend.config import load_config
from mcuq.frontend.converter import QuantizedModel, QuantizeOptions, quantize
from mcuq.frontend.tf import tensorflow_version
from mcuq.model.info import ModelInfo, quantize_array
from mcuq.project.render import BANNER, c_byte_array, c_values, render_files, render_user_files
from mcuq.project.writer import WriteResult, check_output_dir, sha256_bytes, write_project
from mcuq.reference.host_tflm import measure_min_arena, run_tflm, tflm_version

DEFAULT_BOARD = "esp32"
DEFAULT_GOLDEN = 4
FLOAT_MODEL_PATH = "mcuq/float_model.tflite"
INT8_MODEL_PATH = "mcuq/model_int8.tflite"


@dataclass
class DeployRequest:
    model: str | None = None
    board: str | None = None
    board_file: str | None = None
    out: str | None = None
    runtime: str | None = None
    arena_size: int | None = None
    calibration: str | None = None
    data: str | None = None
    golden: int | None = None
    force: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    config: str | None = None

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> DeployRequest:
        """CLI values win over mcuq.toml, which is read when no MODEL is given (or --config)."""
        config: dict[str, Any] = {}
        config_path = args.config or (None if args.model else "mcuq.toml")
        if config_path:
            config = load_config(config_path)

        def pick(name: str, cli_value: Any) -> Any:
            return cli_value if cli_value is not None else config.get(name)

        options = {k: v for k, v in {
            "io": pick("io", args.io), "activations": pick("activations", args.activations),
            "per_channel": (False if args.per_tensor else config.get("per_channel")),
            "calibration_samples": pick("calibration_samples", args.calibration_samples),
            "seed": pick("seed", args.seed), "image_scale": pick("image_scale", args.image_scale),
        }.items() if v is not None}
        return cls(
            model=pick("model", args.model), board=pick("board", args.board), board_file=pick("board_file", args.board_file),
            out=pick("out", args.out), runtime=pick("runtime", args.runtime), arena_size=pick("arena_size", args.arena_size),
            calibration=pick("calibration", args.calibration), data=pick("data", args.data), golden=pick("golden", args.golden),
            force=args.force, options=options, config=config_path,
        )


@dataclass
class DeployResult:
    out_dir: Path
    board: Board
    quantized: QuantizedModel
    plan: TflmPlan | None
    write: WriteResult
    manifest: dict[str, Any]
    validation: Any = None
    runtime: str = "tflm"

    @property
    def ok(self) -> bool:
        return self.validation is None or bool(self.validation.passed)

    def summary(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir), "board": self.board.id, "runtime": self.runtime,
            "model_bytes": len(self.quantized.tflite), "ops": self.quantized.info.op_names,
            "arena": self.manifest["arena"], "fit": self.manifest["fit"], "c_runtime": self.manifest.get("c_runtime"),
            "golden": self.manifest["golden"], "kept_user_files": self.write.kept_user_files,
            "edited_generated_files_replaced": self.write.edited_generated,
            "validation": self.validation.as_dict() if self.validation is not None else None,
            "random_calibration": self.quantized.random_calibration,
        }


def model_display_name(model: Path) -> str:
    stem = model.stem if model.is_file() else model.name
    return model.resolve().parent.name if stem in ("model", "saved_model") else stem


def _golden_inputs(q: QuantizedModel, data: SampleSet | None, count: int, seed: int) -> tuple[list[list[np.ndarray]], str]:
    info = q.info
    source = data if data is not None else q.calibration
    if source is not None:
        n = min(count, source.count)
        index = np.sort(np.random.default_rng(seed).choice(source.count, n, replace=False))
        samples = [[quantize_array(x, t) for x, t in zip(source.sample(int(i)), info.input_tensors)] for i in index]
        return samples, f"{'validation data' if data is not None else 'calibration set'} {source.source}"
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = []
        for t in info.input_tensors:
            info_t = np.iinfo(np.dtype(t.dtype)) if t.dtype != "float32" else None
            if info_t is None:
                sample.append(rng.uniform(-1, 1, t.shape).astype(np.float32))
            else:
                sample.append(rng.integers(info_t.min, info_t.max + 1, t.shape).astype(t.dtype))
        samples.append(sample)
    return samples, "random integer inputs (no calibration or validation data given)"


def _load_validation(path: str | None, info: ModelInfo, options: QuantizeOptions) -> SampleSet | None:
    if path is None:
        return None
    specs = [InputSpec(t.name, t.shape[1:]) for t in info.input_tensors]
    return load_samples(path, specs, max_samples=None, seed=options.seed, image_scale=options.image_scale, what="validation data")


def _resolve_board(request: DeployRequest) -> Board:
    return get_board(request.board or (None if request.board_file else DEFAULT_BOARD), request.board_file)


def _check_runtime(board: Board, runtime: str) -> None:
    if runtime == "tflm" and board.tflm is None:
        raise MCUQError(f"board {board.id} names no TFLite Micro library ([tflm] section); use --runtime c or another board")


def deploy(request: DeployRequest, console: Console = SILENT) -> DeployResult:
    if request.model is None:
        raise MCUQError("no model: pass MODEL, or run in a folder with an mcuq.toml that names one ('mcuq init' writes it)")
    board = _resolve_board(request)
    runtime = request.runtime or board.default_runtime
    _check_runtime(board, runtime)
    model_path = Path(request.model)
    name = model_display_name(model_path)
    out_dir = Path(request.out or Path("build") / f"{board.id}-{name}")
    check_output_dir(out_dir, request.force)  # refuse early, before minutes of work
    console.info(f"mcuq deploy: {model_path} -> {board.id} ({runtime}) in {out_dir}")
    options = QuantizeOptions(**request.options)
    quantized = quantize(model_path, request.calibration, options=options, console=console)
    info = quantized.info
    validation_data = _load_validation(request.data, info, quantized.options)
    golden_in, golden_source = _golden_inputs(quantized, validation_data, request.golden or DEFAULT_GOLDEN, options.seed)
    if runtime == "c":
        return _deploy_c(request, board, quantized, golden_in, golden_source, out_dir, name, console)
    with console.step("measuring the arena on x86 TFLite Micro and checking the fit"):
        plan = plan_tflm(info, board, golden_in[0], request.arena_size)
    with console.step(f"computing {len(golden_in)} golden vectors on x86 TFLite Micro"):
        golden_out = run_tflm(info.raw, golden_in, plan.arena.host_bytes, len(info.outputs)).outputs
    manifest = build_manifest(quantized, board, plan, name, golden_source, len(golden_in), request)
    context = template_context(quantized, board, plan, name, golden_in, golden_out, golden_source)
    files: dict[str, str | bytes] = dict(render_files(context, board.platformio["framework"]))
    if quantized.float_tflite is not None:
        files[FLOAT_MODEL_PATH] = quantized.float_tflite
    with console.step(f"writing the project to {out_dir}"):
        written = write_project(out_dir, files, dict(render_user_files(context)), manifest, request.force)
    result = DeployResult(out_dir, board, quantized, plan, written, manifest)
    from mcuq.validate import validate_project

    result.validation = validate_project(out_dir, data=request.data, console=console)
    return result


def _golden_context(golden_in: list[list[np.ndarray]], golden_out: list[list[np.ndarray]], source: str) -> dict[str, Any]:
    def arrays(values: list[np.ndarray]) -> list[dict[str, Any]]:
        return [{"size": int(np.asarray(v).size), "data": c_values(v)} for v in values]

    return {"count": len(golden_in), "source": source,
            "vectors": [{"inputs": arrays(i), "outputs": arrays(o)} for i, o in zip(golden_in, golden_out)]}


def _deploy_c(request: DeployRequest, board: Board, quantized: QuantizedModel, golden_in: list[list[np.ndarray]],
              golden_source: str, out_dir: Path, name: str, console: Console) -> DeployResult:
    """Plain-C runtime: compile, prove on the host, build for the MCU, fit-check, then write."""
    from mcuq.backends.c.codegen import render_c_project, run_host, selftest_sources
    from mcuq.backends.c.program import check_c_fit, compile_model, estimate_c_fit, measured_c_fit
    from mcuq.toolchains.emulate import toolchain_for

    info = quantized.info
    if quantized.options.io != "int8" or quantized.options.activations != "int8":
        raise MCUQError("the plain-C runtime runs full int8 models with int8 I/O: deploy with --io int8 --activations int8")
    program = compile_model(info)
    with console.step(f"computing {len(golden_in)} golden vectors on x86 TFLite Micro"):
        tflm_min = measure_min_arena(info.raw, golden_in[0])
        golden_out = run_tflm(info.raw, golden_in, tflm_min, len(info.outputs)).outputs
    context = template_context_c(quantized, board, program, name, golden_in, golden_out, golden_source, tflm_min)
    with console.step("checking the generated C against x86 TFLite Micro"):
        c_out = run_host(program, selftest_sources(program, name, context), golden_in)
    if any(not np.array_equal(a, b) for got, want in zip(c_out, golden_out) for a, b in zip(got, want)):
        raise MCUQError("internal error: the generated C differs from x86 TFLite Micro on the golden vectors; please report this model")
    golden_bytes = sum(x.size for s in golden_in for x in s) + sum(x.size for s in golden_out for x in s)
    check_c_fit(program, board, estimate_c_fit(program, board, golden_bytes), golden_bytes)  # cheap refusal first
    if board.architecture == "avr8":
        _check_avr_limits(program)
    emulation = None
    tool = toolchain_for(board.architecture)
    if tool is not None:
        from mcuq.toolchains.emulate import build_and_run_avr, build_and_run_cortex_m4

        with console.step(f"building with {tool} and running the self-test in the emulator"):
            sources = selftest_sources(program, name, context)
            emulation = build_and_run_avr(sources, board.mcu) if board.architecture == "avr8" else build_and_run_cortex_m4(sources)
        fit = measured_c_fit(emulation.flash_bytes, emulation.ram_bytes, board, "avr-size" if board.architecture == "avr8" else "arm-none-eabi-size")
    else:
        fit = estimate_c_fit(program, board, golden_bytes)
    check_c_fit(program, board, fit, golden_bytes)
    context["fit"] = fit.as_dict()
    context["c"]["emulation"] = emulation.as_dict() if emulation else None
    files, users = render_c_project(program, name, context)
    all_files: dict[str, str | bytes] = dict(files)
    all_files[INT8_MODEL_PATH] = info.raw
    if quantized.float_tflite is not None:
        all_files[FLOAT_MODEL_PATH] = quantized.float_tflite
    assert program.plan is not None
    manifest = build_manifest_common(quantized, board, name, golden_source, len(golden_in), request, "c")
    manifest["arena"] = {"target_bytes": program.arena_bytes, "host_bytes": tflm_min, "host_min_bytes": tflm_min,
                         "how": f"plain-C liveness plan {program.arena_bytes} B (lower bound {program.plan.lower_bound} B); "
                                f"x86 TFLite Micro would need {tflm_min} B"}
    manifest["fit"] = fit.as_dict()
    manifest["c_runtime"] = {"arena_bytes": program.arena_bytes, "lower_bound_bytes": program.plan.lower_bound,
                             "tflm_host_min_bytes": tflm_min, "flash_constant_bytes": program.flash_constant_bytes,
                             "emulation": {k: v for k, v in emulation.as_dict().items() if k != "log"} if emulation else None}
    manifest["model"]["int8_reference"] = INT8_MODEL_PATH
    with console.step(f"writing the project to {out_dir}"):
        written = write_project(out_dir, all_files, dict(users), manifest, request.force)
    result = DeployResult(out_dir, board, quantized, None, written, manifest, runtime="c")
    from mcuq.validate import validate_project

    result.validation = validate_project(out_dir, data=request.data, console=console)
    return result


AVR_MAX_OBJECT = 32767  # avr-gcc: size_t is 16 bits
AVR_NEAR_FLASH = 64 * 1024  # pgm_read_* reaches the first 64 KB of flash


def _check_avr_limits(program: Any) -> None:
    biggest = max(program.constants, key=lambda c: c.values.nbytes, default=None)
    if biggest is not None and biggest.values.nbytes > AVR_MAX_OBJECT:
        raise MCUQError(f"weight array {biggest.name} is {biggest.values.nbytes} B; avr-gcc limits one object to {AVR_MAX_OBJECT} B: "
                        "split or shrink that layer, or use a 32-bit board")
    if program.flash_constant_bytes > AVR_NEAR_FLASH - 8 * 1024:
        raise MCUQError(f"{program.flash_constant_bytes} B of weights exceed the {AVR_NEAR_FLASH // 1024} KB that AVR's pgm_read_* "
                        "reaches in this runtime version; shrink the model or use a 32-bit board")


def _common_context(q: QuantizedModel, board: Board, name: str, golden_in: list[list[np.ndarray]],
                    golden_out: list[list[np.ndarray]], golden_source: str) -> dict[str, Any]:
    """What every project template (TFLite Micro or plain C) gets."""
    info = q.info
    return {
        "banner": BANNER, "mcuq_version": __version__,
        "generated_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "board": board, "env_name": board.id, "model_name": name,
        "pio": {"lib_deps": [], "build_flags": [], "build_unflags": [], "lib_compat_mode": None,
                "monitor_speed": 115200, "sdkconfig": [], **board.platformio},
        "inputs": [tensor_context(t) for t in info.input_tensors], "outputs": [tensor_context(t) for t in info.output_tensors],
        "golden": _golden_context(golden_in, golden_out, golden_source), "tflm_version": f"tflite-micro {tflm_version()}",
        "quant": q.manifest_entry(),
    }


def template_context_c(q: QuantizedModel, board: Board, program: Any, name: str, golden_in: list[list[np.ndarray]],
                       golden_out: list[list[np.ndarray]], golden_source: str, tflm_min: int) -> dict[str, Any]:
    return {
        **_common_context(q, board, name, golden_in, golden_out, golden_source), "fit": {},
        "c": {"arena_bytes": program.arena_bytes, "lower_bound": program.plan.lower_bound, "tflm_arena": tflm_min, "emulation": None},
    }


def build_manifest_common(q: QuantizedModel, board: Board, name: str, golden_source: str, golden_count: int,
                          request: DeployRequest, runtime: str) -> dict[str, Any]:
    info = q.info
    return {
        "mcuq_version": __version__,
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tensorflow_version": tensorflow_version(), "tflite_micro_version": tflm_version(),
        "python": platform.python_version(), "runtime": runtime,
        "board": {"id": board.id, "file": str(board.path), "sha256": board.sha256, "architecture": board.architecture, "mcu": board.mcu},
        "library": None,
        "model": {
            "name": name, "source": str(q.source), "source_kind": q.source_kind, "bytes": len(info.raw),
            "crc32": f"{zlib.crc32(info.raw) & 0xFFFFFFFF:08x}", "sha256": sha256_bytes(info.raw),
            "ops": info.op_names, "op_count": len(info.ops), "tensor_count": len(info.tensors), "macs": info.total_macs,
            "float_reference": FLOAT_MODEL_PATH if q.float_tflite is not None else None,
        },
        "quantization": q.manifest_entry(),
        "golden": {"count": golden_count, "source": golden_source, "computed_by": f"x86 tflite-micro {tflm_version()}"},
        "validation_data": request.data,
    }


def build_manifest(
    q: QuantizedModel, board: Board, plan: TflmPlan, name: str, golden_source: str, golden_count: int, request: DeployRequest
) -> dict[str, Any]:
    manifest = build_manifest_common(q, board, name, golden_source, golden_count, request, "tflm")
    manifest["library"] = {"id": plan.library.id, "name": plan.library.name, "version": plan.library.version,
                           "snapshot": plan.library.snapshot, "kernels": board.tflm["kernels"] if board.tflm else None}
    manifest["arena"] = plan.arena.as_dict()
    manifest["fit"] = plan.fit.as_dict()
    manifest["resolver"] = [{"op": e.op, "method": e.method, "count": e.count} for e in plan.resolver]
    return manifest


def template_context(
    q: QuantizedModel, board: Board, plan: TflmPlan, name: str,
    golden_in: list[list[np.ndarray]], golden_out: list[list[np.ndarray]], golden_source: str,
) -> dict[str, Any]:
    raw = q.info.raw
    return {
        **_common_context(q, board, name, golden_in, golden_out, golden_source),
        "tflm": board.tflm or {}, "board_notes": board.notes, "project_name": f"mcuq_{name}".replace("-", "_"),
        "model_size": len(raw), "model_crc32": zlib.crc32(raw) & 0xFFFFFFFF, "model_sha256": sha256_bytes(raw),
        "model_array": c_byte_array(raw),
        "resolver": plan.resolver, "library": plan.library, "library_header": plan.library_header,
        "arena": {"target_bytes": plan.arena.target_bytes, "how": plan.arena.how, "in_psram": plan.fit.arena_in_psram},
        "fit": plan.fit.as_dict(),
    }


def format_summary(result: DeployResult) -> str:
    q, m = result.quantized, result.manifest
    f, a = m["fit"], m["arena"]
    runtime = (f"TFLite Micro {result.plan.library.name} {result.plan.library.version}" if result.plan else "plain-C int8 runtime")
    lines = [
        f"project: {result.out_dir}   (board {result.board.id}, {runtime})",
        f"model:   {len(q.tflite):,} bytes full {q.options.activations}, io {q.options.io}, ops {', '.join(q.info.op_names)}",
        f"arena:   {a['target_bytes']:,} bytes {'in PSRAM' if f['arena_in_psram'] else 'static'}  [{a['how']}]",
        f"fit:     RAM {f['ram_bytes']:,} / {f['ram_budget']:,}   flash {f['flash_bytes']:,} / {f['flash_budget']:,}  ({f['method'].split(':')[0]})",
    ]
    emulation = (m.get("c_runtime") or {}).get("emulation")
    if emulation:
        lines.append(f"emulated: {emulation['target']}: self-test {'PASS' if emulation['passed'] else 'FAIL'}, "
                     f"{emulation['ticks']:,} {emulation['unit']} per inference")
    if q.random_calibration:
        lines.append("WARNING: calibrated on random data: ACCURACY UNVERIFIED")
    if result.write.kept_user_files:
        lines.append(f"kept your files: {', '.join(result.write.kept_user_files)}")
    if result.write.edited_generated:
        lines.append(f"replaced generated files you had edited: {', '.join(result.write.edited_generated)}")
    if result.validation is not None:
        from mcuq.validate import format_validation

        lines.append(format_validation(result.validation))
    lines.append(f"next:    cd {result.out_dir} && pio run -t upload && pio device monitor")
    return "\n".join(lines)
