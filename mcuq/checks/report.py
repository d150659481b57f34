"""report.html (one self-contained file, pictures inline) and report.json of a validation.

Render functions return text; ``write_report`` is the thin writer. Pictures are drawn with
matplotlib's Agg backend and embedded as base64 PNG, so the file can be mailed or archived.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import jinja2
import numpy as np

from mcuq.checks.accuracy import diagnose
from mcuq.checks.outcome import ValidationReport
from mcuq.model.info import ModelInfo, TensorInfo
from mcuq.project.manifest import Manifest
from mcuq.project.records import FitJSON, LayerErrorJSON, ReportJSON, WeightPictureJSON, WeightScalesJSON

if TYPE_CHECKING:
    from mcuq.backends.base import ReportSection
    from mcuq.checks.accuracy import LayerPair


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(width: float, height: float) -> Any:
    return _pyplot().subplots(figsize=(width, height))


def budget_chart(fit: FitJSON, arena_bytes: int) -> str:
    fig, ax = _figure(6.5, 1.8)
    rows = [("RAM", fit["ram_bytes"], fit["ram_budget"]), ("flash", fit["flash_bytes"], fit["flash_budget"])]
    for y, (_label, used, budget) in enumerate(rows):
        ax.barh(y, budget / 1024, color="#e5e7eb")
        ax.barh(y, used / 1024, color="#2563eb" if used <= budget else "#dc2626")
        ax.text(budget / 1024, y, f" {used / 1024:.0f} / {budget / 1024:.0f} KB", va="center", fontsize=8)
    ax.barh(0, arena_bytes / 1024, color="#f59e0b", height=0.35, label="tensor arena")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.set_xlabel("KB")
    ax.legend(loc="lower right", fontsize=7)
    ax.margins(x=0.25)
    return _png(fig)


def layer_chart(rows: list[LayerErrorJSON]) -> str:
    fig, ax = _figure(7.0, max(1.8, 0.32 * len(rows) + 0.8))
    labels = [f"{r['op_index']} {r['layer']}"[:28] for r in rows]
    values = [min(r["SNR_dB"], 80.0) for r in rows]
    colors = ["#dc2626" if v < 20 else ("#f59e0b" if v < 30 else "#16a34a") for v in values]
    ax.barh(range(len(rows)), values, color=colors)
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("SNR of dequantized int8 vs float (dB, capped at 80)")
    return _png(fig)


def confusion_chart(matrix: list[list[int]], title: str, labels: list[str] | None = None) -> str:
    """Rows: true class, columns: predicted; axes carry the class names when the project has them."""
    m = np.asarray(matrix)
    named = bool(labels) and labels is not None and len(labels) == len(m)
    fig, ax = _figure(3.4 if not named else 4.6, 3.0 if not named else 4.2)
    if named and labels is not None:
        ax.set_xticks(range(len(labels)), [str(label)[:12] for label in labels], rotation=90, fontsize=6)
        ax.set_yticks(range(len(labels)), [str(label)[:12] for label in labels], fontsize=6)
    ax.imshow(m, cmap="Blues")
    for (i, j), v in np.ndenumerate(m):
        if v:
            ax.text(j, i, str(v), ha="center", va="center", fontsize=6, color="white" if v > m.max() / 2 else "black")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("label")
    return _png(fig)


def weight_histogram(float_w: np.ndarray, q: TensorInfo) -> str:
    assert q.data is not None and q.quant is not None
    scales = np.asarray(q.quant.scale, dtype=np.float32)
    zps = np.asarray(q.quant.zero_point, dtype=np.float32)
    shape = [1] * q.data.ndim
    if len(scales) > 1:
        shape[q.quant.axis] = len(scales)
    deq = (q.data.astype(np.float32) - zps.reshape(shape)) * scales.reshape(shape)
    fig, (a, b) = _pyplot().subplots(1, 2, figsize=(7.0, 1.9), sharex=True)
    bins = np.linspace(float(min(float_w.min(), deq.min())), float(max(float_w.max(), deq.max())) + 1e-12, 81)
    a.hist(float_w.reshape(-1), bins=bins, color="#2563eb")
    a.set_title("float weights", fontsize=8)
    b.hist(deq.reshape(-1), bins=bins, color="#f59e0b")
    b.set_title("int8, dequantized (on the 256-level grid)", fontsize=8)
    for ax in (a, b):
        ax.tick_params(labelsize=7)
    return _png(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return f"{v:.4g}"
    return str(v)


def render_report_json(data: ReportJSON) -> str:
    return json.dumps(data, indent=2, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:18px;color:#111}
h1{font-size:22px;margin:0 0 6px} h2{font-size:17px;border-bottom:1px solid #ddd;padding-bottom:3px;margin-top:26px}
table{border-collapse:collapse;font-size:12px;margin:6px 0;max-width:100%} td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}
th{background:#f3f4f6} .pass{color:#15803d;font-weight:600} .fail{color:#b91c1c;font-weight:600}
img{max-width:100%;height:auto} .wrap{overflow-x:auto} code{font-size:12px;word-break:break-all} .grid{display:flex;flex-wrap:wrap;gap:12px}
"""


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).parent)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fmt"] = _fmt
    return env


METRIC_KEYS = ["ACC_float", "ACC_int8", "top1_agreement", "RMSE", "MAE", "L2R", "COS", "SNR_dB"]


def device_section(device: dict[str, Any] | None) -> dict[str, Any] | None:
    """The "On the device" section (mcuq validate --device): what the board computed and measured."""
    if not device:
        return None
    ident, lat = device["identity"], device.get("latency") or {}
    rows: list[list[Any]] = [
        ["serial port", device["port"]],
        ["firmware", f"{ident['runtime']} ({ident['library']}), model crc32 {ident['crc32']:08x}, {ident['model_bytes']:,} bytes"],
    ]
    for key, title in (("golden", "golden vectors bit-exact"), ("samples", "validation samples bit-exact")):
        if key in device:
            part = device[key]
            rows.append([title, f"{part['bit_exact']} of {part['count']} (max difference {part['max_lsb_diff']} LSB)"])
            rows.append([f"top-1 agreement with x86 TFLite Micro ({key})", ", ".join(f"{100 * a:.2f}%" for a in part["top1_agreement"])])
    if lat:
        rows += [
            ["latency median / p95 (ms)", f"{lat['median_ms']:.3f} / {lat['p95_ms']:.3f} over {lat['runs']} runs"],
            ["cycles per inference (median)", f"{lat['median_cycles']:,.0f} at {lat['cpu_hz'] / 1e6:g} MHz"],
            ["cycles per MAC", f"{lat['cycles_per_mac']:.2f}" if lat.get("cycles_per_mac") else "-"],
        ]
    elif device.get("latency_note"):
        rows.append(["latency", device["latency_note"]])
    rows += [
        ["arena used / size (bytes)", f"{device['arena_used_bytes']:,} / {device['arena_bytes']:,}"],
        ["stack peak of one inference (bytes)", f"{device['stack_peak_bytes']:,}"],
        ["commands retried (lost or corrupted answers)", device.get("retries", 0)],
    ]
    if device.get("emulator"):
        rows.append(["emulator count at deploy (self-test)", f"{device['emulator']['ticks']:,} {device['emulator']['unit']}"])
    float_rows = [
        [r["name"], *[r.get(k, "-") for k in DEVICE_FLOAT_KEYS]] for r in (device.get("samples") or {}).get("float_vs_device", [])
    ]
    return {"port": device["port"], "rows": rows, "float_rows": float_rows, "float_keys": DEVICE_FLOAT_KEYS}


DEVICE_FLOAT_KEYS = ["top1_agreement_float", "RMSE", "MAE", "L2R", "COS", "SNR_dB"]


def render_report_html(data: ReportJSON, q: ModelInfo, float_info: ModelInfo | None) -> str:
    """The page is laid out in report.html.j2; here only the pictures are drawn and rows picked."""
    s = data["summary"]
    metrics = data.get("metrics") or {}
    outputs = metrics.get("outputs") or []
    per_layer = data.get("per_layer") or []
    rewrites = s.get("rewrites")
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            s=s,
            passed=data["passed"],
            style=STYLE,
            checks=[[c["name"], "ok" if c["passed"] else "FAIL", c["detail"]] for c in data["checks"]]
            + [[c["name"], "not checked", c["detail"]] for c in data.get("not_checked", [])],
            not_checked=len(data.get("not_checked", [])),
            notes=data.get("notes", []),
            rewrite_rows=[
                [r["layer"], r["original"], r["replacement"], ", ".join(r["ops"]), r["reason"]]
                for r in (rewrites["layers"] if rewrites else [])
            ],
            budget_image=budget_chart(s["fit"], s["arena_bytes"]),
            ops=[[o["index"], o["op"], o["macs"], "yes" if o["optimized"] else "reference", o["layer"]] for o in data["ops"]],
            metrics=metrics if outputs else None,
            device=device_section(metrics.get("device")),
            metric_keys=METRIC_KEYS,
            metric_rows=[[o["name"], *[dict(o).get(k, "-") for k in METRIC_KEYS]] for o in outputs],
            confusion_images=[
                [
                    confusion_chart(matrix, f"{o['name']}: {t}", s.get("labels"))
                    for matrix, t in ((o.get("confusion_float"), "float"), (o.get("confusion_int8"), "int8"))
                    if matrix is not None
                ]
                for o in outputs
            ],
            per_layer=[
                [r["op_index"], r["op"], r["layer"], r["SNR_dB"], r["COS"], r["drop_dB"], f"{r['saturation']:.1%}"] for r in per_layer
            ],
            layer_image=layer_chart(per_layer) if per_layer else "",
            worst_layers=data.get("worst_layers", []),
            weights=data.get("weights", []),
            **_weight_scale_rows(s.get("weight_scales")),  # weight_headers, weight_rows
        )
    )


class WeightScaleTable(TypedDict):
    """The report's Dense-variants table (template variables)."""

    weight_headers: list[str]
    weight_rows: list[list[object]]


def _weight_scale_rows(choice: WeightScalesJSON | None) -> WeightScaleTable:
    """Both Dense variants with their arena (and validation figure when it was measured)."""
    if not choice:
        return {"weight_headers": [], "weight_rows": []}
    measured: dict[str, object] = dict(choice["measured"])
    headers = ["Dense weights", "arena (bytes)"] + ([f"validation {measured['metric']}"] if measured else [])
    rows: list[list[object]] = [
        [variant + (" (kept)" if variant == choice["kept"] else ""), arena] + ([measured.get(variant, "-")] if measured else [])
        for variant, arena in choice["arena_bytes"].items()
    ]
    return {"weight_headers": headers, "weight_rows": rows}


def weight_pictures(q: ModelInfo, float_info: ModelInfo | None, pairs: list[LayerPair]) -> list[WeightPictureJSON]:
    if float_info is None:
        return []
    out: list[WeightPictureJSON] = []
    for p in pairs:
        if p.int8_op.name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV"):
            continue
        pos = 1
        qt, ft = q.tensors[p.int8_op.inputs[pos]], float_info.tensors[p.float_op.inputs[pos]]
        if qt.data is None or ft.data is None or qt.quant is None:
            continue
        quant = (
            f"per-channel, {len(qt.quant.scale)} scales {min(qt.quant.scale):.3g}..{max(qt.quant.scale):.3g}, zero point 0"
            if qt.quant.per_channel
            else f"scale {qt.quant.scale[0]:.4g}, zero point {qt.quant.zero_point[0]}"
        )
        out.append({"name": qt.name, "shape": list(qt.shape), "quant": quant, "image": weight_histogram(ft.data.astype(np.float32), qt)})
    return out


REPORT_RECORD = "mcuq/reports.lock.json"


def _report_hashes(project: Path) -> dict[str, str]:
    try:
        data = json.loads((project / REPORT_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)} if isinstance(data, dict) else {}


def _ours(path: Path, recorded: str | None) -> bool:
    """A report file may be replaced only when absent or byte-identical to what mcuq wrote last."""
    if not path.exists() and not path.is_symlink():
        return True
    if path.is_symlink() or not path.is_file() or recorded is None:
        return False
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest() == recorded
    except OSError:
        return False


class ReportWriteError(OSError):
    """report.html/json (or their record) could not be written: the disk's own reason, kept."""


def _write_new(path: Path, data: bytes) -> None:
    """Write ``path`` as a new file, never through a link someone left at that name."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


def write_report(project: Path, html_text: str, json_text: str) -> list[str]:
    """The reports written: report.html/report.json are written only where mcuq owns the name.

    The user may keep their own report.html in a project; mcuq records the hashes of the reports
    it wrote in ``mcuq/reports.lock.json`` and never replaces a file that does not match. A write
    that fails (a full disk) raises ``ReportWriteError`` with the file and the cause: a report that
    is not there must not be reported as the user's own file, nor the run as a success."""
    recorded = _report_hashes(project)
    written: list[str] = []
    for name, text in (("report.html", html_text), ("report.json", json_text)):
        target = project / name
        if not _ours(target, recorded.get(name)):
            continue  # the user's own file: kept
        data = text.encode("utf-8")
        tmp = project / f".{name}.mcuq-tmp"
        try:
            _write_new(tmp, data)
            tmp.replace(target)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise ReportWriteError(exc.errno, f"{name}: {exc.strerror or exc}") from None
        recorded[name] = hashlib.sha256(data).hexdigest()
        written.append(name)
    if written:
        record = project / REPORT_RECORD
        tmp = record.with_name(f".{record.name}.mcuq-tmp")
        try:
            record.parent.mkdir(exist_ok=True)
            _write_new(tmp, (json.dumps(recorded, indent=2, sort_keys=True) + "\n").encode())
            tmp.replace(record)
        except OSError as exc:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:
                pass
            raise ReportWriteError(exc.errno, f"{REPORT_RECORD}: {exc.strerror or exc}") from None
    return written


def write_project_reports(
    project: Path,
    report: ValidationReport,
    manifest: Manifest,
    section: ReportSection,
    info: ModelInfo,
    float_info: ModelInfo | None,
    float_model: bytes | None,
    data_name: str | None,
    pairs: list[LayerPair],
) -> list[str]:
    """``report.html`` and ``report.json`` of one validation, written into the project; returns the
    files written (a file mcuq did not write is kept). ``data_name``: the validation data as the
    project's files name it, so the reports carry no folder of the host; ``pairs``: the float and
    int8 layers paired (:func:`mcuq.checks.accuracy.pair_layers`) for the weight pictures."""
    optimized = set(section.optimized_ops)
    data = report.as_dict()
    # The reports live in the project: they name it and the data like the manifest does, without the host's folders.
    data["project"] = project.resolve().name
    source = data["metrics"].get("source")
    if source:
        data["metrics"] = {**data["metrics"], "source": data_name or source}
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
    json_text = render_report_json(data)
    data["weights"] = weight_pictures(info, float_info, pairs)
    return write_report(project, render_report_html(data, info, float_info), json_text)
