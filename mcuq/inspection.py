"""``mcuq inspect``: what is inside a .tflite, and whether TFLite Micro can run each op.

An orchestrator like ``deploy`` and ``validate`` (it asks the front end and every backend),
so it sits beside them rather than in ``mcuq.model``, which the backends build on.

The same dictionary feeds the terminal table, ``--json`` and the deploy report, so
machines and people see identical numbers.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

from mcuq.common.console import SILENT, Console
from mcuq.common.errors import ModelLoadError
from mcuq.common.files import MODEL_LIMIT, read_regular
from mcuq.frontend.calibration import DEFAULT_SAMPLES
from mcuq.model.info import ModelInfo, TensorInfo, parse_model
from mcuq.project.escape import terminal


class TensorJSON(TypedDict):
    index: int
    name: str  # the readable (signature) name
    tensor: str
    shape: list[int]
    dtype: str
    scale: list[float] | None
    zero_point: list[int] | None


class OpJSON(TypedDict):
    index: int
    op: str
    version: int
    inputs: list[int]
    outputs: list[int]
    macs: int
    layer: str
    support: dict[str, bool]  # runtime name -> has a kernel for this op


class RuntimeColumnJSON(TypedDict):
    name: str
    title: str
    column: str


class InspectionJSON(TypedDict):
    """What ``mcuq inspect`` reports (``--json`` prints it as is; the table is drawn from it)."""

    model: str
    size_bytes: int
    subgraphs: int
    inputs: list[TensorJSON]
    outputs: list[TensorJSON]
    ops: list[OpJSON]
    op_counts: dict[str, int]
    tensor_count: int
    weight_bytes: int
    total_macs: int
    runtimes: list[RuntimeColumnJSON]
    supported_by: dict[str, bool]


def _tensor_dict(t: TensorInfo, name: str | None = None) -> TensorJSON:
    return {
        "index": t.index,
        "name": name or t.name,
        "tensor": t.name,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "scale": list(t.quant.scale) if t.quant else None,
        "zero_point": list(t.quant.zero_point) if t.quant else None,
    }


def inspect_info(info: ModelInfo, source: str) -> InspectionJSON:
    """One column per registered runtime: ``support[name]`` per op, ``supported_by[name]`` overall."""
    from mcuq.backends.base import all_backends

    backends = all_backends()
    supported = {b.name: b.supported_ops() for b in backends}
    support = [{name: op.name in names for name, names in supported.items()} for op in info.ops]
    ops: list[OpJSON] = [
        {
            "index": op.index,
            "op": op.name,
            "version": op.version,
            "inputs": [i for i in op.inputs if i >= 0],
            "outputs": list(op.outputs),
            "macs": op.macs,
            "layer": info.layer_of_op(op),
            "support": op_support,
        }
        for op, op_support in zip(info.ops, support)
    ]
    return {
        "model": source,
        "size_bytes": len(info.raw),
        "subgraphs": info.num_subgraphs,
        "inputs": [_tensor_dict(t, n) for t, n in zip(info.input_tensors, info.input_names)],
        "outputs": [_tensor_dict(t, n) for t, n in zip(info.output_tensors, info.output_names)],
        "ops": ops,
        "op_counts": {name: sum(1 for o in info.ops if o.name == name) for name in info.op_names},
        "tensor_count": len(info.tensors),
        "weight_bytes": info.weight_bytes,
        "total_macs": info.total_macs,
        "runtimes": [{"name": b.name, "title": b.title, "column": b.column} for b in backends],
        "supported_by": {name: all(s[name] for s in support) for name in supported},
    }


def inspect_model(
    model: str | Path, calibration: str | None = None, console: Console = SILENT, calibration_samples: int = DEFAULT_SAMPLES
) -> InspectionJSON:
    """Inspect a .tflite directly, or a Keras/SavedModel after converting it to full int8."""
    path = Path(model)
    if path.suffix.lower() == ".tflite" and path.is_file():
        raw = read_regular(path, "a model file", MODEL_LIMIT, ModelLoadError)
        return inspect_info(parse_model(raw, str(path)), str(path))
    from mcuq.frontend.converter import QuantizeOptions, quantize

    result = quantize(path, calibration, options=QuantizeOptions(calibration_samples=calibration_samples), console=console)
    return inspect_info(result.info, str(path))


def _q(t: TensorJSON) -> str:
    if t["scale"] is None or t["zero_point"] is None:
        return "-"
    if len(t["scale"]) > 1:
        return f"per-channel ({len(t['scale'])})"
    return f"scale={t['scale'][0]:.6g} zp={t['zero_point'][0]}"


def format_inspection(report: InspectionJSON) -> str:
    """The terminal table; every name from the model is shown with its control characters
    escaped (a tensor named "\\x1b[2J" must not clear the screen). --json escapes them too."""
    lines = [f"model: {terminal(report['model'])}  ({report['size_bytes']} bytes, {report['subgraphs']} subgraph)"]
    for kind in ("inputs", "outputs"):
        for t in report[kind]:
            lines.append(f"  {kind[:-1]:6} {terminal(t['name']):<32} {tuple(t['shape'])!s:<16} {t['dtype']:<7} {_q(t)}")
    lines.append("")
    runtimes = report["runtimes"]
    columns = "  ".join(f"{r['column']:<4}" for r in runtimes)
    header = f"  {'#':>3}  {'op':<22} {'v':>2}  {'inputs':<14} {'outputs':<8} {'MACs':>10}  {columns}  layer"
    lines.append(header)
    for op in report["ops"]:
        ins = ",".join(map(str, op["inputs"]))
        outs = ",".join(map(str, op["outputs"]))
        support = "  ".join(f"{'yes' if op['support'][r['name']] else 'NO':<{max(4, len(r['column']))}}" for r in runtimes)
        lines.append(
            f"  {op['index']:>3}  {op['op']:<22} {op['version']:>2}  {ins:<14} {outs:<8} {op['macs']:>10,}  {support}  {terminal(op['layer'])}"
        )
    lines.append("")
    lines.append(f"  tensors: {report['tensor_count']}   weights: {report['weight_bytes']:,} bytes   total MACs: {report['total_macs']:,}")
    for r in runtimes:
        verdict = "every op is supported" if report["supported_by"][r["name"]] else "SOME OPS ARE NOT SUPPORTED"
        lines.append(f"  {r['title']}: {verdict}")
    return "\n".join(lines)
