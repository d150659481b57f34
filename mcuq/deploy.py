"""``mcuq deploy``: model -> full int8 -> backend plan -> rendered project -> written -> validated.

This module only orchestrates the stages (front end, inspected model, backend, project
writer, validator); each decision lives in its stage. It never tests the runtime's name:
the backend chosen by name from the registry (``mcuq.backends.base``) does the rest.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, cast

from mcuq.backends.base import (
    Backend,
    BackendPlan,
    DeployJob,
    OptionValues,
    backend_for,
    check_option_values,
    declared_options,
    deploy_options,
)
from mcuq.boards import Board, get_board
from mcuq.checks.accuracy import evaluate_outputs
from mcuq.checks.golden import choose_golden_inputs, golden_files
from mcuq.checks.outcome import ValidationReport
from mcuq.common.console import SILENT, Console
from mcuq.common.errors import MCUQError, UsageError
from mcuq.frontend.calibration import load_validation_data
from mcuq.frontend.config import ConfigValues, load_config
from mcuq.frontend.converter import QuantizedModel, quantize_model
from mcuq.frontend.dense_scales import EVALUATION_ARENA, weigh_dense_scales
from mcuq.frontend.loader import model_display_name
from mcuq.frontend.options import QuantizeOptionFields, QuantizeOptions
from mcuq.project.api import model_prefix, project_labels
from mcuq.project.escape import check_path_text
from mcuq.project.lock import project_lock
from mcuq.project.manifest import FLOAT_MODEL_PATH, INT8_MODEL_PATH, Manifest, build_manifest
from mcuq.project.writer import WriteResult, check_output_dir, mark_validated, project_dir, write_project

DEFAULT_BOARD = "esp32"
DEFAULT_GOLDEN = 4


@dataclass
class DeployRequest:
    """What one deploy is asked to do, as the CLI and ``mcuq.toml`` spell it.

    Only ``model`` is required (``board`` defaults to the board in ``mcuq.toml``, else esp32).
    Every ``None`` means "use the default"; ``options`` holds :class:`QuantizeOptions` fields
    (``per_channel``, ``io``, ``activations`` ...); ``backend_options`` the deploy options the
    runtimes declare (``tflm_source`` for TFLite Micro, ``avr_kernels`` for plain C: see
    ``mcuq deploy --help``). Values are checked by :func:`deploy`, not here, so a request can be
    built from untrusted text and still fail with one line.
    """

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
    options: QuantizeOptionFields = field(default_factory=lambda: QuantizeOptionFields())
    config: str | None = None
    name: str | None = None  # C prefix of the generated API (default: from the model's name)
    labels: str | None = None  # class names file (else 'label_names' in the validation .npz)
    backend_options: OptionValues = field(default_factory=dict)
    # Python API: the result of mcuq.quantize() for ``model`` (same options), so one conversion
    # serves several boards; deploy then skips converting.
    quantized: QuantizedModel | None = None

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> DeployRequest:
        """CLI values win over mcuq.toml, which is read when no MODEL is given (or --config)."""
        config: ConfigValues = {}
        config_path = args.config or (None if args.model else "mcuq.toml")
        if config_path:
            config = load_config(config_path)

        def pick(name: str, cli_value: Any) -> Any:
            return cli_value if cli_value is not None else config.get(name)

        _refuse_config_code(config, config_path, args)

        options = cast(  # the keys are QuantizeOptions fields; load_config checked mcuq.toml's types
            QuantizeOptionFields,
            {
                k: v
                for k, v in {
                    "io": pick("io", args.io),
                    "activations": pick("activations", args.activations),
                    "per_channel": ("none" if args.per_tensor else _per_channel(pick("per_channel", args.per_channel))),
                    "calibration_samples": pick("calibration_samples", args.calibration_samples),
                    "seed": pick("seed", args.seed),
                    "image_scale": pick("image_scale", args.image_scale),
                }.items()
                if v is not None
            },
        )
        return cls(
            model=pick("model", args.model),
            board=pick("board", args.board),
            board_file=pick("board_file", args.board_file),
            out=pick("out", args.out),
            runtime=pick("runtime", args.runtime),
            arena_size=pick("arena_size", args.arena_size),
            calibration=pick("calibration", args.calibration),
            data=pick("data", args.data),
            golden=pick("golden", args.golden),
            force=args.force,
            options=options,
            config=config_path,
            name=pick("name", getattr(args, "name", None)),
            labels=pick("labels", getattr(args, "labels", None)),
            backend_options=_backend_options(config, args),
        )


def _per_channel(value: object) -> object:
    """Older configs say per_channel = true/false: the modes 'all'/'none'."""
    return ("all" if value else "none") if isinstance(value, bool) else value


def _backend_options(config: ConfigValues, args: argparse.Namespace) -> dict[str, str | bool]:
    """The deploy options the runtimes declare: the command line's, else mcuq.toml's."""
    values: dict[str, str | bool] = {}
    for _, option in declared_options("deploy"):
        value = getattr(args, option.name, None)
        value = value if value is not None else config.get(option.name)
        if isinstance(value, (str, bool)):
            values[option.name] = value
    return values


def _refuse_config_code(config: ConfigValues, config_path: str | None, args: argparse.Namespace) -> None:
    """A ``module:function`` in mcuq.toml is Python code from the config's folder: a cloned project
    must not run it on a plain ``mcuq deploy``. It runs when the user asks: --allow-code, or the
    same spec given on the command line."""
    from mcuq.frontend.calibration import is_function_spec

    if getattr(args, "allow_code", False):
        return
    for key in ("calibration", "data"):
        value = config.get(key)
        if isinstance(value, str) and getattr(args, key, None) is None and is_function_spec(value):
            raise MCUQError(
                f"{config_path}: {key} = {value!r} would import and run Python code from {Path(str(config_path)).resolve().parent}; "
                f"pass --allow-code if you trust that folder, or give --{key} on the command line"
            )


@dataclass
class DeployResult:
    """What a finished deploy wrote and proved: the project folder, the board, the int8 model,
    the backend's plan (arena, fit), the manifest written as ``mcuq.lock.json`` and the host
    validation (``validation.passed`` is True only when every check that ran passed)."""

    out_dir: Path
    board: Board
    quantized: QuantizedModel
    plan: BackendPlan
    write: WriteResult
    lock: Manifest  # mcuq.lock.json, typed (what the backends read)
    validation: ValidationReport | None = None
    runtime: str = ""
    runtime_line: str = ""
    extra_summary: list[str] = field(default_factory=list)

    @property
    def manifest(self) -> dict[str, object]:
        """``mcuq.lock.json`` as JSON (what ``--json`` prints), derived from :attr:`lock`; code reads :attr:`lock`."""
        return self.lock.as_dict()

    @property
    def emulator_passed(self) -> bool | None:
        """The self-test the backend ran on the board's CPU during deploy (None: none ran)."""
        emulation = self.plan.emulation
        return None if emulation is None else bool(emulation.passed)

    @property
    def ok(self) -> bool:
        """False (exit 1) when validation or the emulator self-test failed: deploy must not claim
        success for firmware that failed its own boot check."""
        return self.emulator_passed is not False and (self.validation is None or bool(self.validation.passed))

    @property
    def emulator_failure(self) -> str | None:
        """What failed on the board's CPU, said once for the summary and the quiet line (None: nothing)."""
        if self.emulator_passed is not False:
            return None
        target = self.plan.emulation.target if self.plan.emulation else None
        return f"the firmware's self-test failed on {target or 'the emulator'}"

    @property
    def result_line(self) -> str:
        """The outcome in one line (what ``deploy --quiet`` prints): PASS, or what failed first."""
        if self.ok:
            verdict = self.validation.verdict if self.validation is not None else "PASS"
            return f"deploy {self.out_dir}: {verdict}"
        reason = self.emulator_failure
        if reason is None:
            reason = self.validation.result_line if self.validation is not None else "validation failed"
        return f"deploy {self.out_dir}: FAIL: {reason}; do not upload this project (mcuq validate {self.out_dir} lists every check)"

    def summary(self) -> dict[str, object]:
        """What ``deploy --json`` prints: the outcome, with the runtime's section under its key."""
        return {
            "out_dir": str(self.out_dir),
            "board": self.board.id,
            "runtime": self.runtime,
            "model_bytes": len(self.quantized.tflite),
            "ops": self.quantized.info.op_names,
            "arena": self.lock.arena,
            "fit": self.lock.fit,
            self.plan.section.KEY: self.manifest.get(self.plan.section.KEY),
            "golden": asdict(self.lock.golden),
            "kept_user_files": self.write.kept_user_files,
            "edited_generated_files_replaced": self.write.edited_generated,
            "validation": self.validation.as_dict() if self.validation is not None else None,
            "random_calibration": self.quantized.random_calibration,
        }


MAX_GOLDEN = 256  # each vector is compiled into flash and checked at boot; more proves nothing new
MAX_ARENA = 1 << 30


def check_request(request: DeployRequest) -> int:
    """Refuse impossible numbers before any work; return the golden vector count."""
    golden = DEFAULT_GOLDEN if request.golden is None else request.golden
    if not 1 <= golden <= MAX_GOLDEN:
        raise UsageError(f"--golden {golden}: give between 1 and {MAX_GOLDEN} golden vectors (default {DEFAULT_GOLDEN})")
    check_option_values("deploy", request.backend_options)
    if request.arena_size is not None and not 0 < request.arena_size <= MAX_ARENA:
        raise UsageError(f"--arena-size {request.arena_size}: give a positive byte count up to {MAX_ARENA:,}")
    for what, value in (
        ("model", request.model),
        ("--out folder", request.out),
        ("calibration file", request.calibration),
        ("--data file", request.data),
        ("--labels file", request.labels),
        ("--board-file", request.board_file),
    ):
        if value is not None:
            check_path_text(value, what)  # recorded in the manifest and reports: fail now, not after the work
    samples = request.options.get("calibration_samples")
    if samples is not None and samples < 1:
        raise UsageError(f"--calibration-samples {samples}: give at least 1")
    QuantizeOptions(**request.options).validate()
    return golden


def deploy(request: DeployRequest, console: Console = SILENT) -> DeployResult:
    """Quantize ``request.model`` to full int8, plan it for the board, write the project and
    validate it on the host (x86 TFLite Micro, and the emulators where installed).

    Promises: nothing is written unless the model fits the board and the golden vectors are
    computed; a user's own file is never overwritten. Raises :class:`MCUQError` (one line naming
    the file, tensor, layer or board and the fix) for every problem with the input.
    """
    if request.model is None:
        raise MCUQError("no model: pass MODEL, or run in a folder with an mcuq.toml that names one ('mcuq init' writes it)")
    golden_count = check_request(request)
    board = get_board(request.board or (None if request.board_file else DEFAULT_BOARD), request.board_file)
    backend = backend_for(board, request.runtime)
    options = deploy_options(backend, board, request.backend_options)
    model_path = Path(request.model)
    name = model_display_name(model_path)
    prefix = model_prefix(request.name, explicit=True) if request.name else model_prefix(name)
    out_dir = project_dir(request.out, board.id, name)
    previous = check_output_dir(out_dir, request.force)  # refuse early, before minutes of work (write_project checks again)
    notes: list[str] = []
    with project_lock(out_dir, notes):  # one mcuq per project folder until validation is done
        for note in [*notes, *(previous.interrupted if previous else ())]:
            console.info(note)
        return _deploy_locked(
            replace(request, backend_options=options), board, backend, model_path, name, prefix, out_dir, golden_count, console
        )


def _deploy_locked(
    request: DeployRequest,
    board: Board,
    backend: Backend,
    model_path: Path,
    name: str,
    prefix: str,
    out_dir: Path,
    golden_count: int,
    console: Console,
) -> DeployResult:
    """The work once the project folder is ours, one stage after the other: front end ->
    inspected model -> backend -> writer -> validator; each call hands its result on, none
    comes back here for a decision."""
    console.info(f"mcuq deploy: {model_path} -> {board.id} ({backend.name}) in {out_dir}")
    options = QuantizeOptions(**request.options)
    quantized = request.quantized or quantize_model(model_path, request.calibration, options, console)  # paths checked by check_request
    q_options = quantized.options
    validation_data = (
        load_validation_data(request.data, quantized.info, q_options.seed, q_options.image_scale) if request.data is not None else None
    )
    labels, labels_source = project_labels(request.labels, validation_data, quantized.info)
    quantized, choice = weigh_dense_scales(
        quantized,
        validation_data,
        console,
        library_rule=lambda: backend.per_channel_dense_rule(board),
        arena_of=lambda info, sample: backend.arena_bytes(info, board, sample),
        metrics_of=lambda info, float_info, data: evaluate_outputs(info, float_info, data, EVALUATION_ARENA).metrics,
    )
    golden_in, golden_source = choose_golden_inputs(quantized, validation_data, golden_count, options.seed, out_dir)
    job = DeployJob(
        quantized,
        board,
        name,
        golden_in,
        golden_source,
        request.arena_size,
        out_dir,
        runtime=backend.name,
        runtime_title=backend.title,
        prefix=prefix,
        labels=tuple(labels),
        labels_source=labels_source,
        options=request.backend_options,
    )
    plan = backend.plan(job, console)
    rendered = backend.render(job, plan)
    files: dict[str, str | bytes] = {
        **rendered.files,
        **plan.extra_files,
        **golden_files(rendered.files, quantized.info, golden_in, plan.golden_out, job.golden_resets),
    }
    files.setdefault(INT8_MODEL_PATH, quantized.info.raw)
    if quantized.float_tflite is not None:
        files[FLOAT_MODEL_PATH] = quantized.float_tflite
    manifest = build_manifest(job, plan, out_dir, request.data, choice.as_dict() if choice is not None else None)
    with console.step(f"writing the project to {out_dir}"):
        written = write_project(out_dir, files, dict(rendered.user_files), manifest, request.force, mark_unvalidated=True)
    lock = written.manifest if written.manifest is not None else manifest
    result = DeployResult(
        out_dir,
        board,
        quantized,
        plan,
        written,
        lock,
        runtime=backend.name,
        runtime_line=backend.describe(board),
        extra_summary=backend.summary_lines(lock),
    )
    from mcuq.validate import validate_project

    result.validation = validate_project(out_dir, data=request.data, console=console)
    mark_validated(out_dir)  # from here on a rerun needs --force
    return result


def format_summary(result: DeployResult) -> str:
    q, m = result.quantized, result.lock
    f, a = m.fit, m.arena
    runtime = result.runtime_line or result.runtime
    lines = [
        f"project: {result.out_dir}   (board {result.board.id}, {runtime})",
        f"model:   {len(q.tflite):,} bytes full {q.options.activations}, io {q.options.io}, ops {', '.join(q.info.op_names)}",
        f"arena:   {a['target_bytes']:,} bytes {'in PSRAM' if f['arena_in_psram'] else 'static'}  [{a['how']}]",
        f"fit:     RAM {f['ram_bytes']:,} / {f['ram_budget']:,}   flash {f['flash_bytes']:,} / {f['flash_budget']:,}  ({f['method'].split(':')[0]})",
    ]
    for layer in q.rebuilt_layers:  # mcuq.frontend.recurrent: what was rebuilt, checked in float
        lines.append(f"rebuilt: recurrent layer {layer}, weights copied, checked in float against the model")
    scales = m.weight_scales
    if scales:
        arenas = ", ".join(f"{k} {v:,} B" for k, v in scales["arena_bytes"].items())
        lines.append(f"weights: conv per-channel; {scales['kept']} kept: {scales['reason']}  [arena: {arenas}]")
    rewrites = m.quantization.get("rewrites")
    check = rewrites["float_check"] if rewrites else None
    if rewrites and check:
        layers = "; ".join(f"'{r['layer']}' {r['original']} -> {r['replacement']}" for r in rewrites["layers"])
        lines.append(f"rewrote: {layers}  [float max diff {check['max_abs_diff']:.2g} <= {check['tolerance']:.2g}]")
    api = m.api
    if api:
        labels = f", {len(api['labels'])} labels" if api["labels"] else ""
        lines.append(f"api:     {api['header']} ({api['prefix']}_init/_invoke/_input/_output/_argmax{labels})")
        if q.state == "streaming":
            lines.append(
                f"state:   carried across invokes (variable tensors); {api['prefix']}_reset() clears it; "
                "the golden vectors are sequences with reset points"
            )
        elif q.state == "per_invoke":
            lines.append(f"state:   recurrent state within one invoke: {api['prefix']}_invoke() starts from cleared state, as Keras did")
    lines.extend(result.extra_summary)
    if q.random_calibration:
        lines.append("WARNING: calibrated on random data: ACCURACY UNVERIFIED")
    if result.write.kept_user_files:
        lines.append(f"kept your files: {', '.join(result.write.kept_user_files)}")
    if result.write.edited_generated:
        lines.append(f"regenerated files you had edited: {', '.join(result.write.edited_generated)}")
    if result.write.ignored_manifest_paths:
        lines.append(f"ignored manifest entries outside the project: {', '.join(result.write.ignored_manifest_paths)}")
    if result.validation is not None:
        from mcuq.validate import format_validation

        lines.append(format_validation(result.validation))
    if result.emulator_failure:
        lines.append(f"deploy: FAIL: {result.emulator_failure}; the project is written but does not compute the golden vectors there")
    if result.ok:
        lines.append(f"next:    cd {result.out_dir} && pio run -t upload && pio device monitor")
    else:
        lines.append("next:    do not upload this project: fix what FAILED above, then 'mcuq deploy --force'")
    return "\n".join(lines)
