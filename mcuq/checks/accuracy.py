"""Float versus int8: output metrics on validation data and the error of every layer.

The float reference is the same batch-1 graph converted without quantization
(``mcuq/float_model.tflite`` in the project), run on LiteRT's reference kernels; the int8
side is the project's own model on the x86 TFLite Micro. Layers are paired by walking both
op sequences (QUANTIZE/DEQUANTIZE skipped), which the converter keeps identical.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mcuq.checks.metrics import confusion_matrix, cosine, error_metrics, snr_db
from mcuq.frontend.samples import SampleSet
from mcuq.model.info import ModelInfo, OpInfo, dequantize_array, quantize_array
from mcuq.project.records import LayerErrorJSON, MetricsJSON, OutputMetricsJSON
from mcuq.reference.host_tflm import run_float_reference, run_tflm

if TYPE_CHECKING:
    from mcuq.checks.outcome import ValidationReport

LAYER_SAMPLES = 32
EDGE_OPS = {"QUANTIZE", "DEQUANTIZE"}
SATURATION_WARN = 0.05
BOUNDED_OPS = {"SOFTMAX", "LOGISTIC", "TANH"}  # outputs at the int8 limits are their normal range


@dataclass(frozen=True)
class LayerPair:
    int8_op: OpInfo
    float_op: OpInfo


def pair_layers(q: ModelInfo, f: ModelInfo) -> list[LayerPair]:
    """Match each int8 op to its float counterpart (same op, same output shape, same order)."""
    q_ops = [op for op in q.ops if op.name not in EDGE_OPS]
    f_ops = [op for op in f.ops if op.name not in EDGE_OPS]
    pairs = []
    j = 0
    for op in q_ops:
        for k in range(j, len(f_ops)):
            cand = f_ops[k]
            if cand.name == op.name and q.tensors[op.outputs[0]].shape == f.tensors[cand.outputs[0]].shape:
                pairs.append(LayerPair(op, cand))
                j = k + 1
                break
    return pairs


def _is_classifier(output: np.ndarray, labels: np.ndarray | None) -> bool:
    return output.ndim == 2 and output.shape[1] > 1 and (labels is not None or np.allclose(output.sum(axis=1), 1.0, atol=0.05))


@dataclass(frozen=True)
class Evaluation:
    metrics: MetricsJSON
    int8_inputs: list[list[np.ndarray]]  # the quantized samples, in order
    int8_outputs: list[list[np.ndarray]]  # what x86 TFLite Micro computed for them
    float_outputs: list[np.ndarray | None] = field(default_factory=list)  # per output: the float model's, samples stacked


def _output_position(f: ModelInfo | None, name: str, k: int) -> int:
    """Where the int8 output ``name`` sits among the float model's outputs (same names,
    possibly another order: both come from one signature, the converter orders them)."""
    if f is not None and name in f.output_names and len(set(f.output_names)) == len(f.output_names):
        return f.output_names.index(name)
    return k


def evaluate_outputs(q: ModelInfo, f: ModelInfo | None, data: SampleSet, host_arena: int) -> Evaluation:
    samples = [data.sample_for(i, q.input_names) for i in range(data.count)]
    int8_inputs = [[quantize_array(x, t) for x, t in zip(s, q.input_tensors)] for s in samples]
    int8_run = run_tflm(q.raw, int8_inputs, host_arena, len(q.outputs))
    outputs: list[OutputMetricsJSON] = []
    result: MetricsJSON = {"samples": data.count, "source": data.source, "outputs": outputs}
    float_outputs: list[np.ndarray | None] = []
    float_samples = [data.sample_for(i, f.input_names) for i in range(data.count)] if f is not None else []
    float_run = run_float_reference(f.raw, float_samples) if f is not None else None
    for k, tensor in enumerate(q.output_tensors):
        name = q.output_names[k] if k < len(q.output_names) else tensor.name
        deq = np.concatenate([dequantize_array(o[k], tensor) for o in int8_run.outputs])
        entry: OutputMetricsJSON = {"name": name, "tensor": tensor.name, "index": k}
        fk = _output_position(f, name, k)
        ref = np.concatenate([o[fk] for o in float_run.outputs]).astype(np.float32) if float_run else None
        float_outputs.append(ref)
        if ref is not None:
            entry.update(error_metrics(ref, deq))
        labels = data.labels
        if _is_classifier(deq, labels):
            classes = deq.shape[1]
            int8_pred = deq.argmax(1)
            entry["classifier"] = True
            if ref is not None:
                float_pred = ref.argmax(1)
                entry["top1_agreement"] = float(np.mean(float_pred == int8_pred))
            if labels is not None:
                labels = np.asarray(labels).reshape(-1)[: len(int8_pred)].astype(np.int64)
                entry["ACC_int8"] = float(np.mean(int8_pred == labels))
                entry["confusion_int8"] = confusion_matrix(labels, int8_pred, classes).tolist()
                if ref is not None:
                    entry["ACC_float"] = float(np.mean(ref.argmax(1) == labels))
                    entry["confusion_float"] = confusion_matrix(labels, ref.argmax(1), classes).tolist()
        outputs.append(entry)
    return Evaluation(result, int8_inputs, int8_run.outputs, float_outputs)


def _saturation(values: np.ndarray, dtype: str, zero_point: int) -> float:
    lo, hi = (-128, 127) if dtype == "int8" else ((-32768, 32767) if dtype == "int16" else (0, 255))
    flat = values.reshape(-1)
    clipped = ((flat == hi) | ((flat == lo) & (lo != zero_point))).sum()
    return float(clipped / max(flat.size, 1))


def per_layer_error(q: ModelInfo, f: ModelInfo, pairs: list[LayerPair], data: SampleSet, host_arena: int) -> list[LayerErrorJSON]:
    """SNR and cosine of every paired op output (``pairs``: pair_layers(q, f), which validate also
    draws the weight pictures from); ``drop_dB`` is the SNR the op itself loses."""
    n = min(LAYER_SAMPLES, data.count)
    samples = [data.sample_for(i, q.input_names) for i in range(n)]
    int8_inputs = [[quantize_array(x, t) for x, t in zip(s, q.input_tensors)] for s in samples]
    q_tensors = sorted({p.int8_op.outputs[0] for p in pairs} | set(q.inputs))
    f_tensors = sorted({p.float_op.outputs[0] for p in pairs} | set(f.inputs))
    int8_run = run_tflm(q.raw, int8_inputs, max(host_arena, 1 << 20), len(q.outputs), keep_tensors=q_tensors)
    float_run = run_float_reference(f.raw, [data.sample_for(i, f.input_names) for i in range(n)], keep_tensors=f_tensors)

    def stacked(run: Any, idx: int) -> np.ndarray:
        return np.concatenate([t[idx].reshape(1, -1) for t in run.tensors])

    snr_of: dict[int, float] = {}
    for qi, fi in zip(q.inputs, f.inputs):
        t = q.tensors[qi]
        snr_of[qi] = snr_db(stacked(float_run, fi), dequantize_array(stacked(int8_run, qi), t))
    rows: list[LayerErrorJSON] = []
    for p in pairs:
        qt = q.tensors[p.int8_op.outputs[0]]
        ref = stacked(float_run, p.float_op.outputs[0])
        raw = stacked(int8_run, p.int8_op.outputs[0])
        deq = dequantize_array(raw, qt)
        snr = snr_db(ref, deq)
        snr_of[qt.index] = snr
        upstream = [snr_of[i] for i in p.int8_op.inputs if i in snr_of]
        before = min(upstream) if upstream else float("inf")
        rows.append(
            {
                "op_index": p.int8_op.index,
                "op": p.int8_op.name,
                "layer": q.layer_of_op(p.int8_op),
                "tensor": qt.name,
                "SNR_dB": snr,
                "COS": cosine(ref, deq),
                "drop_dB": (min(before, 200.0) - min(snr, 200.0)),
                "saturation": 0.0
                if p.int8_op.name in BOUNDED_OPS
                else _saturation(raw, qt.dtype, qt.quant.zero_point[0] if qt.quant else 0),
            }
        )
    return rows


def diagnose(rows: list[LayerErrorJSON], limit: int = 3, threshold_db: float = 30.0) -> list[LayerErrorJSON]:
    """The layers that introduce the most error, with what usually helps."""
    suspects = sorted((r for r in rows if r["SNR_dB"] < threshold_db), key=lambda r: -r["drop_dB"])[:limit]
    out: list[LayerErrorJSON] = []
    for r in suspects:
        hints = []
        if r["saturation"] > SATURATION_WARN:
            hints.append(
                f"{r['saturation']:.0%} of its int8 values sit at the limits (saturation): the calibration data "
                "does not cover the inputs seen here; use more representative calibration data"
            )
        hints.append("try --activations int16 (16x8) for this model")
        if r["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
            hints.append("keep per-channel weights (default) and check the layer for outlier weights")
        hints.append("more or better calibration samples (--calibration-samples)")
        out.append({**r, "advice": "; ".join(hints)})
    return out


def check_accuracy(report: ValidationReport, metrics: MetricsJSON, max_drop: float | None, min_snr: float | None) -> None:
    """The limits the user set (--max-drop, --min-snr) as checks, one per output: a limit that
    cannot be measured (no labels, no float reference) fails, it is never skipped."""
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
