"""``mcuq validate``: the host-side proof of a generated project.

Every generated file is first checked against its sha256 in the manifest (the C model array
included). The project's backend (named in its manifest) then checks what it generated: for
TFLite Micro the model is read from mcuq/model_int8.tflite, checked against the manifest and
run on x86 TFLite Micro with the planned arena; for the plain-C runtime the project's own C is
built and run. Both must reproduce the golden vectors bit for bit. With validation data the
float and int8 models are compared, layer by layer, and the report is written. Validation data
deploy read from outside the project is recorded by name and sha256 only: without --data that
is reported as "not checked" with the file to pass, never silently left out of a PASS.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from mcuq.backends.base import OptionValues, ValidateOptions, check_option_values, declared_options, get_backend, options_for
from mcuq.checks.accuracy import check_accuracy, diagnose, evaluate_outputs, pair_layers, per_layer_error
from mcuq.checks.golden import golden_or_problem
from mcuq.checks.outcome import Check, ValidationReport
from mcuq.checks.report import ReportWriteError, write_project_reports
from mcuq.common.console import SILENT, Console
from mcuq.common.errors import UsageError
from mcuq.device.check import DeviceRequest, check_on_device
from mcuq.frontend.calibration import load_validation_data
from mcuq.model.info import parse_model
from mcuq.project.integrity import check_project_files, generated_files_check
from mcuq.project.lock import project_lock
from mcuq.project.manifest import (
    VALIDATION_DATA,
    Manifest,
    find_validation_data,
    read_float_reference,
    rewrites_note,
)
from mcuq.project.manifest import read_manifest as load_manifest

__all__ = ["Check", "ValidationReport", "format_validation", "read_manifest", "validate_project"]

ROOMY_ARENA = 16 * 1024 * 1024
GENERATED_FILES = "generated files"


def read_manifest(project: Path) -> Manifest:
    """The project's manifest, checked against its typed definition (a one-line ManifestError otherwise)."""
    return load_manifest(project)


def validate_project(
    project: str | Path,
    data: str | None = None,
    max_drop: float | None = None,
    min_snr: float | None = None,
    write_report: bool = True,
    console: Console = SILENT,
    labels: str | None = None,
    device: DeviceRequest | None = None,
    backend_options: OptionValues | None = None,
) -> ValidationReport:
    """Re-check a generated project: file hashes against ``mcuq.lock.json``, golden vectors bit
    for bit on x86 TFLite Micro (or the plain-C build), and with ``data`` the float-vs-int8
    metrics and ``report.html``/``report.json``. ``backend_options`` are the validate options the
    runtimes declare (``emulate`` for plain C, ``build`` and ``tflm_source`` for TFLite Micro): the
    emulator and board-library builds. A check that cannot run is reported as not checked, never as passed.
    Raises :class:`MCUQError` when the project cannot be read at all.
    ``device``: also run the golden vectors and validation samples on the board at that serial port
    (mcuq/device/check.py) and report them as the "on the device" checks.
    """
    project = Path(project)
    options = {k: v for k, v in (backend_options or {}).items() if v is not None}
    check_option_values("validate", options)
    for _, option in declared_options("validate"):
        value = option.read(options)
        if option.path and isinstance(value, str) and not Path(value).exists():
            raise UsageError(f"{option.flag} {value}: no such {'folder' if option.metavar == 'DIR' else 'file'}")
    # The lock keeps a deploy from swapping the project in mid-check (deploy validates under its own lock).
    with project_lock(project, required=False) if project.is_dir() else nullcontext():
        return _validate_locked(project, data, max_drop, min_snr, write_report, console, labels, options, device)


def _validate_locked(
    project: Path,
    data: str | None,
    max_drop: float | None,
    min_snr: float | None,
    write_report: bool,
    console: Console,
    labels: str | None,
    options: OptionValues,
    device: DeviceRequest | None = None,
) -> ValidationReport:
    """The checks in order, each handed to the stage that owns it: the project's files (manifest),
    the runtime's own checks (backend), validation data (front end), accuracy (checks), the board
    (device), the reports (checks); nothing comes back here for a decision."""
    manifest = load_manifest(project)
    generated = generated_files_check(project, manifest)
    check_project_files(project, manifest)
    backend = get_backend(manifest.runtime)
    mine, foreign = options_for(backend, "validate", options)
    report = ValidationReport(project)
    report.add(GENERATED_FILES, *generated)
    for flag in foreign:  # asked for, and not run: a failed check, never a silent skip
        report.add(flag.lstrip("-"), False, f"{flag} is an option of another runtime; this project's runtime is {backend.name}")
    raw = backend.validate(project, manifest, report, ValidateOptions(mine), console)
    if raw is None:
        return report
    float_model = read_float_reference(project, manifest)
    notes = rewrites_note(manifest)
    found = find_validation_data(project, data, manifest)
    for note in [*notes, *found.notes]:
        report.note(note)
    info = parse_model(raw, "the project's model")
    float_info = parse_model(float_model, "float reference") if float_model else None
    q = manifest.quantization
    samples = (
        load_validation_data(found.path, info, q.get("calibration_seed", 0), q.get("image_scale", "0..1"), labels) if found.path else None
    )
    pairs = pair_layers(info, float_info) if float_info is not None else []  # float and int8 layers, for the weight pictures
    evaluation = None
    arena_check = report.check("arena")
    # Accuracy is still worth knowing when the planned arena failed: measure it with a roomy one.
    arena = ROOMY_ARENA if arena_check is not None and not arena_check.passed else int(manifest.arena["host_bytes"])
    if samples is not None:
        with console.step(f"float vs int8 on {samples.count} validation samples"):
            evaluation = evaluate_outputs(info, float_info, samples, arena)
            report.metrics = evaluation.metrics
        if float_info is not None and float_model is not None:
            with console.step("per-layer error"):
                report.per_layer = per_layer_error(info, float_info, pairs, samples, arena)
        check_accuracy(report, report.metrics, max_drop, min_snr)
        backend.check_samples(project, info, evaluation.int8_inputs, evaluation.int8_outputs, report)
    else:
        asked = [flag for flag, value in (("--max-drop", max_drop), ("--min-snr", min_snr), ("--labels", labels)) if value is not None]
        if asked:  # the user asked for a check on validation data: it not running is a failure
            report.add(
                VALIDATION_DATA,
                False,
                f"{'/'.join(asked)} need{'s' if len(asked) == 1 else ''} validation data: {found.missing or 'pass --data VAL.npz'}",
            )
        elif found.missing:
            report.skip(VALIDATION_DATA, found.missing)
    if device is not None:
        check_on_device(report, project, manifest, info, device, golden_or_problem(project, info), evaluation, console)
    if write_report:
        with console.step("writing report.html and report.json"):
            try:
                report.report_files = write_project_reports(
                    project, report, manifest, backend.report_section(manifest), info, float_info, float_model, found.name, pairs
                )
            except ReportWriteError as exc:  # a full disk: the report is missing, and the run says so
                report.add("report", False, f"could not write {exc.strerror} in {project}; free space (or fix the folder), then rerun")
                return report
            report.kept_reports = [n for n in ("report.html", "report.json") if n not in report.report_files]
    return report


def _num(v: Any, pct: bool = False) -> str:
    if not isinstance(v, (int, float)):
        return "-"
    return f"{100 * v:.2f}%" if pct else f"{v:.4g}"


def _device_lines(device: dict[str, Any] | None) -> list[str]:
    """The board's measurements (mcuq validate --device) in a few lines."""
    if not device:
        return []
    ident = device["identity"]
    lines = [
        f"  on the device ({device['port']}): {ident['runtime']} ({ident['library']}), arena {device['arena_used_bytes']:,} of "
        f"{device['arena_bytes']:,} B used, stack peak {device['stack_peak_bytes']:,} B"
        + (f", {device['retries']} commands retried" if device.get("retries") else "")
    ]
    lat = device.get("latency") or {}
    if lat:
        per_mac = f", {lat['cycles_per_mac']:.2f} cycles/MAC" if lat.get("cycles_per_mac") else ""
        lines.append(
            f"    latency over {lat['runs']} runs: median {lat['median_ms']:.3f} ms, p95 {lat['p95_ms']:.3f} ms "
            f"({lat['median_cycles']:,.0f} cycles at {lat['cpu_hz'] / 1e6:g} MHz{per_mac})"
        )
    elif device.get("latency_note"):
        lines.append(f"    latency: {device['latency_note']}")
    emulator = device.get("emulator")
    if emulator:
        lines.append(f"    emulator at deploy: {emulator['ticks']:,} {emulator['unit']} per inference (self-test, worst golden vector)")
    for row in (device.get("samples") or {}).get("float_vs_device", []):
        agree = f", top-1 vs float {100 * row['top1_agreement_float']:.2f}%" if "top1_agreement_float" in row else ""
        lines.append(
            f"    float vs device ({row['name']}): RMSE {_num(row.get('RMSE'))}, COS {_num(row.get('COS'))}, SNR {_num(row.get('SNR_dB'))} dB{agree}"
        )
    return lines


def format_validation(report: ValidationReport) -> str:
    lines = [f"validate {report.project}: {report.verdict}"]
    for c in report.checks:
        lines.append(f"  [{'ok' if c.passed else 'FAIL'}] {c.name}: {c.detail}")
    for c in report.not_checked:
        lines.append(f"  [not checked] {c.name}: {c.detail}")
    for note in report.notes:
        lines.append(f"  note: {note}")
    if report.metrics.get("outputs"):
        lines.append(f"  float vs int8 on {report.metrics['samples']} samples ({report.metrics['source']}):")
        lines.append(
            f"    {'output':<28} {'ACC float':>9} {'ACC int8':>9} {'top1 agr':>9} {'RMSE':>9} {'MAE':>9} {'L2R':>9} {'COS':>9} {'SNR dB':>8}"
        )
        for o in report.metrics["outputs"]:
            lines.append(
                f"    {o['name'][:28]:<28} {_num(o.get('ACC_float'), True):>9} {_num(o.get('ACC_int8'), True):>9} "
                f"{_num(o.get('top1_agreement'), True):>9} {_num(o.get('RMSE')):>9} {_num(o.get('MAE')):>9} "
                f"{_num(o.get('L2R')):>9} {_num(o.get('COS')):>9} {_num(o.get('SNR_dB')):>8}"
            )
    lines += _device_lines(report.metrics.get("device"))
    worst = diagnose(report.per_layer)
    if worst:
        lines.append("  layers that lose the most precision:")
        for w in worst:
            lines.append(
                f"    op {w['op_index']} {w['op']} '{w['layer']}': SNR {w['SNR_dB']:.1f} dB (loses {w['drop_dB']:.1f} dB here). {w['advice']}"
            )
    elif report.per_layer:
        lines.append(f"  per-layer: every layer keeps SNR >= 30 dB (lowest {min(r['SNR_dB'] for r in report.per_layer):.1f} dB)")
    if report.report_files:
        lines.append(f"  report: {report.project / report.report_files[0]}")
    if report.kept_reports:
        lines.append(
            f"  not written: {', '.join(report.kept_reports)} exist and mcuq did not write them (kept; move them away to get mcuq's report)"
        )
    return "\n".join(lines)
