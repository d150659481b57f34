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

import io
import os
import stat
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from mcuq.backends.base import Backend, OptionValues, ValidateOptions, check_option_values, declared_options, get_backend, options_for
from mcuq.checks.accuracy import Evaluation, diagnose, evaluate_outputs, pair_layers, per_layer_error
from mcuq.checks.outcome import Check, ValidationReport
from mcuq.checks.report import ReportWriteError
from mcuq.common.console import SILENT, Console
from mcuq.common.errors import MCUQError, UsageError, ValidationFailed
from mcuq.common.files import DATA_LIMIT, read_regular, regular_file
from mcuq.device.check import DeviceRequest
from mcuq.frontend.calibration import InputSpec, SampleSet, check_label_range, load_samples
from mcuq.model.info import ModelInfo, parse_model
from mcuq.project.lock import project_lock
from mcuq.project.manifest import MANIFEST, Manifest, file_sha256, project_relative, resolve_from_project
from mcuq.project.manifest import read_manifest as load_manifest
from mcuq.project.records import MetricsJSON
from mcuq.project.writer import inside_project, sha256_file

__all__ = ["Check", "ValidationReport", "format_validation", "read_manifest", "validate_project"]

ROOMY_ARENA = 16 * 1024 * 1024
GENERATED_FILES = "generated files"
VALIDATION_DATA = "validation data"


def read_manifest(project: Path) -> Manifest:
    """The project's manifest, checked against its typed definition (a one-line ManifestError otherwise)."""
    return load_manifest(project)


def check_generated_files(report: ValidationReport, project: Path, manifest: Manifest) -> bool:
    """Every generated file must still be byte-identical to what mcuq wrote (sha256 in the manifest).

    This is what makes the later checks mean something: the arena size in the sources, the model
    array, the golden vectors and the runtime code are all covered, not only the parts a check parses."""
    changed, missing = [], []
    for rel, digest in sorted(manifest.files.items()):
        if not inside_project(rel):
            changed.append(f"{rel} (outside the project)")
            continue
        actual = sha256_file(project / rel)
        if actual is None:
            missing.append(rel)
        elif actual != digest:
            changed.append(rel)
    if not changed and not missing:
        return report.add(GENERATED_FILES, True, f"{len(manifest.files)} generated files match the hashes in {MANIFEST}")
    parts = ([f"edited since deploy: {', '.join(changed)}"] if changed else []) + ([f"missing: {', '.join(missing)}"] if missing else [])
    return report.add(
        GENERATED_FILES,
        False,
        f"{'; '.join(parts)}; put your code in src/app.cpp (or your own files) and regenerate with 'mcuq deploy --force'",
    )


def _short(digest: str) -> str:
    return f"sha256 {digest[:12]}..."


def find_validation_data(report: ValidationReport, project: Path, data: str | None, manifest: Manifest) -> tuple[str | None, str | None]:
    """The validation data to run on, or why the data deploy recorded cannot be used.

    ``--data`` wins (a one-line note when it is not the file deploy recorded). Otherwise the
    recorded data is used when it is still in the project. A file outside the project is recorded
    by name and sha256 only (no ../.. paths), so validate cannot find it by itself: the second value
    then names the file and says what to pass, for the caller to report instead of a silent PASS."""
    recorded, digest = manifest.validation_data, manifest.validation_data_sha256
    if data:
        actual = file_sha256(data)
        if recorded and digest and actual and actual != digest:
            given = project_relative(data, project)  # named like the manifest does: the note goes into the reports too
            report.note(
                f"{VALIDATION_DATA}: --data {given} ({_short(actual)}) is not the file deploy recorded ('{recorded}', {_short(digest)}); "
                f"checked on {given}"
            )
        return data, None
    if not recorded:
        return None, None
    path = resolve_from_project(recorded, project)
    what = f"'{recorded}'" + (f" ({_short(digest)})" if digest else "")
    if path is None or path == recorded:  # 'random' or module:function: not a file in the project
        return None, f"{what} is not a file in the project, so float vs int8 accuracy was not measured; pass --data {recorded}"
    if not Path(path).exists():
        where = "is missing from the project (moved or deleted since deploy)" if "/" in recorded else "is outside the project"
        return None, f"{what} {where}, so float vs int8 accuracy was not measured; pass --data <path>/{Path(recorded).name}"
    actual = file_sha256(path)
    if digest and actual and actual != digest:
        report.note(
            f"{VALIDATION_DATA}: {recorded} changed since deploy ({_short(actual)}, recorded {_short(digest)}); checked on it as it is"
        )
    return path, None


def _validation_data(path: str, manifest: Manifest, info: ModelInfo, labels: str | None = None) -> SampleSet:
    specs = [InputSpec(n, t.shape[1:]) for n, t in zip(info.input_names, info.input_tensors)]
    q = manifest.quantization
    samples = load_samples(
        path, specs, max_samples=None, seed=q.get("calibration_seed", 0), image_scale=q.get("image_scale", "0..1"), what="validation data"
    )
    if labels is not None:
        try:
            values = np.load(io.BytesIO(read_regular(labels, "validation labels (--labels)", DATA_LIMIT)), allow_pickle=False).reshape(-1)
        except (OSError, ValueError) as exc:
            raise MCUQError(f"{labels}: cannot read the labels as .npy ({exc})") from None
        if len(values) != samples.count:
            raise MCUQError(f"{labels}: {len(values)} labels for {samples.count} validation samples; give one integer label per sample")
        samples.labels = values
    check_label_range(samples, classifier_classes(info), labels)
    return samples


def classifier_classes(info: ModelInfo) -> list[int]:
    """Class counts of the outputs labels can apply to (batch x classes, more than one class)."""
    return [int(t.shape[1]) for t in info.output_tensors if len(t.shape) == 2 and t.shape[1] > 1]


def _float_reference(project: Path, manifest: Manifest) -> bytes | None:
    rel = manifest.model.float_reference
    return (project / rel).read_bytes() if rel and (project / rel).is_file() else None


def _check_accuracy(report: ValidationReport, metrics: MetricsJSON, max_drop: float | None, min_snr: float | None) -> None:
    for out in metrics["outputs"]:
        if max_drop is not None and "ACC_float" in out:
            drop = 100.0 * (out["ACC_float"] - out["ACC_int8"])
            report.add(
                f"accuracy drop ({out['name']})",
                drop <= max_drop,
                f"int8 {100 * out['ACC_int8']:.2f}% vs float {100 * out['ACC_float']:.2f}%: drop {drop:.2f} points (limit {max_drop})",
            )
        elif max_drop is not None:
            report.add(f"accuracy drop ({out['name']})", False, "--max-drop needs labels in the validation data and the float reference")
        if min_snr is not None:
            snr = out.get("SNR_dB")
            ok = snr is not None and snr >= min_snr
            report.add(
                f"output SNR ({out['name']})",
                ok,
                f"SNR {snr:.1f} dB (limit {min_snr} dB)" if snr is not None else "no float reference to compare with",
            )


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


def check_project_files(project: Path, manifest: Manifest) -> None:
    """Refuse a project file validate would read that is not the project's own regular file.

    A symbolic link out of the project (``mcuq/model_int8.tflite -> /etc/shadow`` in a cloned
    project) would make validate read, run or hash any file; a FIFO would hang it."""
    root = Path(os.path.realpath(project))
    extra = [manifest.model.float_reference, manifest.validation_data]
    for rel in [MANIFEST, *manifest.files, *(r for r in extra if r)]:
        path = project / rel
        if not inside_project(rel) or (not path.exists() and not path.is_symlink()):
            continue  # outside or missing: reported by check_generated_files / find_validation_data
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(root):
            raise ValidationFailed(
                f"{path} is a symbolic link to {real}, outside the project; validate reads only the project's own files: "
                "remove the link and regenerate with 'mcuq deploy --force'"
            )
        kind = os.stat(path).st_mode
        if not stat.S_ISREG(kind):
            regular_file(path, "a project file", 1 << 62, ValidationFailed)  # raises, naming what it is


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
    manifest = load_manifest(project)
    check_project_files(project, manifest)
    backend = get_backend(manifest.runtime)
    report = ValidationReport(project)
    check_generated_files(report, project, manifest)
    mine, foreign = options_for(backend, "validate", options)
    for flag in foreign:  # asked for, and not run: a failed check, never a silent skip
        report.add(flag.lstrip("-"), False, f"{flag} is an option of another runtime; this project's runtime is {backend.name}")
    raw = backend.validate(project, manifest, report, ValidateOptions(mine), console)
    if raw is None:
        return report
    info = parse_model(raw, "the project's model")
    float_model = _float_reference(project, manifest)
    float_info = parse_model(float_model, "float reference") if float_model else None
    rewrites = manifest.quantization.get("rewrites")
    check = rewrites["float_check"] if rewrites else None
    if rewrites and check:
        report.note(
            f"mcuq rewrote {', '.join(r['layer'] for r in rewrites['layers'])} into int8-kernel ops before quantizing "
            f"(float outputs within {check['max_abs_diff']:.2g} of the original, limit {check['tolerance']:.2g}); "
            "float vs int8 below compares with the rewritten model in float"
        )
    path, missing = find_validation_data(report, project, data, manifest)
    samples = _validation_data(path, manifest, info, labels) if path else None
    evaluation = None
    arena_check = report.check("arena")
    # Accuracy is still worth knowing when the planned arena failed: measure it with a roomy one.
    arena = ROOMY_ARENA if arena_check is not None and not arena_check.passed else int(manifest.arena["host_bytes"])
    if samples is not None:
        with console.step(f"float vs int8 on {samples.count} validation samples"):
            evaluation = evaluate_outputs(info, float_model, samples, arena)
            report.metrics = evaluation.metrics
        if float_info is not None and float_model is not None:
            with console.step("per-layer error"):
                report.per_layer = per_layer_error(info, float_info, float_model, samples, arena)
        _check_accuracy(report, report.metrics, max_drop, min_snr)
        backend.check_samples(project, info, evaluation.int8_inputs, evaluation.int8_outputs, report)
    else:
        asked = [flag for flag, value in (("--max-drop", max_drop), ("--min-snr", min_snr), ("--labels", labels)) if value is not None]
        if asked:  # the user asked for a check on validation data: it not running is a failure
            report.add(
                VALIDATION_DATA,
                False,
                f"{'/'.join(asked)} need{'s' if len(asked) == 1 else ''} validation data: {missing or 'pass --data VAL.npz'}",
            )
        elif missing:
            report.skip(VALIDATION_DATA, missing)
    if device is not None:
        _check_on_device(report, project, manifest, info, device, evaluation, console)
    if write_report:
        with console.step("writing report.html and report.json"):
            try:
                report.report_files = _write_reports(project, report, manifest, backend, info, float_info, float_model)
            except ReportWriteError as exc:  # a full disk: the report is missing, and the run says so
                report.add("report", False, f"could not write {exc.strerror} in {project}; free space (or fix the folder), then rerun")
                return report
            report.kept_reports = [n for n in ("report.html", "report.json") if n not in report.report_files]
    return report


def _emulator_ticks(manifest: Manifest) -> tuple[int, str] | None:
    """The cycles (or instructions) the emulator counted at deploy, when the runtime recorded them."""
    for value in manifest.as_dict().values():
        emulation = value.get("emulation") if isinstance(value, dict) else None
        if isinstance(emulation, dict) and isinstance(emulation.get("ticks"), int):
            return int(emulation["ticks"]), str(emulation.get("unit", ""))
    return None


def _check_on_device(
    report: ValidationReport,
    project: Path,
    manifest: Manifest,
    info: ModelInfo,
    device: DeviceRequest,
    evaluation: Evaluation | None,
    console: Console,
) -> None:
    from mcuq.checks.golden import golden_from_project
    from mcuq.device.check import check_device

    try:
        golden = golden_from_project(project, info)
    except MCUQError as exc:
        report.add("on the device", False, str(exc))
        return
    samples = (evaluation.int8_inputs, evaluation.int8_outputs, evaluation.float_outputs) if evaluation is not None else None
    count = len(golden[0]) + (min(device.samples, len(samples[0])) if samples else 0)
    with console.step(f"running {count} inputs on the board at {device.port}"):
        check_device(report, project, manifest, info, device, golden, samples, _emulator_ticks(manifest))


def _write_reports(
    project: Path,
    report: ValidationReport,
    manifest: Manifest,
    backend: Backend,
    info: ModelInfo,
    float_info: ModelInfo | None,
    float_model: bytes | None,
) -> list[str]:
    from mcuq.checks.report import render_report_html, render_report_json, weight_pictures
    from mcuq.checks.report import write_report as write_report_files

    section = backend.report_section(manifest)
    optimized = set(section.optimized_ops)
    data = report.as_dict()
    # The reports live in the project: they name it and the data like the manifest does, without the host's folders.
    data["project"] = project.resolve().name
    source = data["metrics"].get("source")
    if source:
        data["metrics"] = {**data["metrics"], "source": project_relative(source, project) or source}
    q = manifest.quantization
    data["summary"] = {
        "model": manifest.model.name,
        "board": manifest.board.id,
        "runtime": manifest.runtime,
        "library": section.library,
        "activations": q["activations"],
        "io": q["io"],
        "int8_bytes": len(info.raw),
        "float_bytes": len(float_model) if float_model else None,
        "arena_bytes": manifest.arena["target_bytes"],
        "arena_how": manifest.arena["how"],
        "fit": manifest.fit,
        "random_calibration": q.get("random_calibration", False),
        "runtime_sizes": [list(row) for row in section.sizes],
        "runtime_sizes_title": section.sizes_title,
        "weight_scales": manifest.weight_scales,
        "per_channel_note": section.per_channel_note,
        "labels": manifest.api["labels"] if manifest.api else [],
        "rewrites": q.get("rewrites"),
    }
    data["ops"] = [
        {"index": op.index, "op": op.name, "macs": op.macs, "optimized": op.name in optimized, "layer": info.layer_of_op(op)}
        for op in info.ops
    ]
    data["worst_layers"] = diagnose(report.per_layer)
    pairs = pair_layers(info, float_info) if float_info is not None else []
    json_text = render_report_json(data)
    data["weights"] = weight_pictures(info, float_info, pairs)
    return write_report_files(project, render_report_html(data, info, float_info), json_text)


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
