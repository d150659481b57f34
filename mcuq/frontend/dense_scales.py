"""The per-channel choice for Dense layers (``--per-channel auto``).

TFLite Micro keeps a multiplier and a shift (two int32) per output channel of every
per-channel FULLY_CONNECTED in the arena; per-tensor Dense needs none of that. Conv and
depthwise layers stay per-channel (their channels differ widely in range); a Dense layer is
quantized per tensor unless validation data shows that costs more than a tolerance:
0.5 accuracy points when labels exist, else 1 dB output SNR (worst output). Where the board's
library cannot compute per-channel Dense, per-tensor is a rule, not a choice. The plain-C
runtime keeps multipliers in flash and pays no RAM either way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Final

import numpy as np

from mcuq.common.console import Console
from mcuq.frontend.samples import SampleSet
from mcuq.model.info import NUMPY_DTYPES, ModelInfo, parse_model
from mcuq.project.records import DenseMeasuredJSON, MetricsJSON, WeightScalesJSON

if TYPE_CHECKING:
    from mcuq.frontend.converter import QuantizedModel

ACCURACY_TOLERANCE_POINTS = 0.5
SNR_TOLERANCE_DB = 1.0
EVALUATION_ARENA = 16 * 1024 * 1024
PER_TENSOR: Final = "per-tensor Dense"  # keys of DenseMeasuredJSON
PER_CHANNEL: Final = "per-channel Dense"


@dataclass
class DenseScaleChoice:
    """Which Dense quantization deploy kept, why, and what each would cost."""

    kept: str  # PER_TENSOR or PER_CHANNEL
    reason: str
    measured: DenseMeasuredJSON = field(default_factory=lambda: DenseMeasuredJSON())  # metric per variant, when validation data ran
    arenas: dict[str, int] = field(default_factory=dict)  # bytes per variant, filled by the backend

    @property
    def per_channel(self) -> bool:
        return self.kept == PER_CHANNEL

    def as_dict(self) -> WeightScalesJSON:
        return {"kept": self.kept, "reason": self.reason, "measured": self.measured, "arena_bytes": self.arenas}

    def summary(self) -> str:
        arenas = ", ".join(f"{k} {v:,} B" for k, v in self.arenas.items())
        return f"kept {self.kept}: {self.reason}" + (f" (arena: {arenas})" if arenas else "")


def _score(metrics: MetricsJSON) -> tuple[str, float] | None:
    """The figure the choice compares: worst accuracy (with labels) else worst output SNR."""
    outputs = metrics.get("outputs", [])
    accuracies = [o["ACC_int8"] for o in outputs if "ACC_int8" in o]
    if accuracies:
        return "accuracy", 100.0 * min(accuracies)
    snrs = [o["SNR_dB"] for o in outputs if o.get("SNR_dB") is not None]
    return ("SNR_dB", min(snrs)) if snrs else None


def choose_dense_scales(
    per_tensor: bytes,
    per_channel: bytes,
    data: SampleSet | None,
    metrics_of: Callable[[bytes], MetricsJSON],
    library_allows_per_channel: bool = True,
    library: str = "",
) -> DenseScaleChoice:
    """Compare the two quantizations of one model on the validation data. ``metrics_of`` runs a
    model over ``data`` (deploy passes x86 TFLite Micro against the float reference: the check
    stage's measurement, the front end's decision)."""
    if not library_allows_per_channel:
        return DenseScaleChoice(
            PER_TENSOR, f"rule: {library} computes per-channel Dense wrongly (features.per_channel_fully_connected = false)"
        )
    if data is None:
        return DenseScaleChoice(
            PER_TENSOR, "no validation data (--data) to show that per-tensor Dense costs accuracy; per-tensor Dense saves arena RAM"
        )
    scores = {}
    for label, model in ((PER_TENSOR, per_tensor), (PER_CHANNEL, per_channel)):
        scores[label] = _score(metrics_of(model))
    pt, pc = scores[PER_TENSOR], scores[PER_CHANNEL]
    if pt is None or pc is None:
        return DenseScaleChoice(
            PER_TENSOR, "validation data has no labels and there is no float reference to measure SNR; per-tensor Dense saves arena RAM"
        )
    metric = pt[0]
    measured: DenseMeasuredJSON = {"metric": metric, PER_TENSOR: round(pt[1], 3), PER_CHANNEL: round(pc[1], 3), "samples": data.count}
    loss = pc[1] - pt[1]
    tolerance, unit = (ACCURACY_TOLERANCE_POINTS, "accuracy points") if metric == "accuracy" else (SNR_TOLERANCE_DB, "dB SNR")
    what = "accuracy" if metric == "accuracy" else "output SNR"
    figures = f"{what} {pt[1]:.2f} vs {pc[1]:.2f}{'%' if metric == 'accuracy' else ' dB'} on {data.count} validation samples"
    if loss > tolerance:
        return DenseScaleChoice(PER_CHANNEL, f"per-tensor Dense costs {loss:.2f} {unit} (> {tolerance}): {figures}", measured)
    return DenseScaleChoice(PER_TENSOR, f"per-tensor Dense costs {max(loss, 0.0):.2f} {unit} (<= {tolerance}): {figures}", measured)


def weigh_dense_scales(
    q: QuantizedModel,
    data: SampleSet | None,
    console: Console,
    library_rule: Callable[[], str | None],
    arena_of: Callable[[ModelInfo, list[np.ndarray]], int],
    metrics_of: Callable[[ModelInfo, ModelInfo | None, SampleSet], MetricsJSON],
) -> tuple[QuantizedModel, DenseScaleChoice | None]:
    """--per-channel auto: keep per-tensor Dense unless the validation data says it costs accuracy,
    and return the model deploy goes on with. The measurements come from the later stages as
    callables (the front end decides, it does not reach up): ``library_rule`` the backend's reason
    per-channel Dense is not allowed on the board, ``arena_of`` its arena for a variant (both are
    measured either way), ``metrics_of`` the check stage's float-vs-int8 metrics on ``data``."""
    alternative = q.dense_per_channel_tflite
    if alternative is None:
        return q, None
    rule = library_rule()
    float_info = parse_model(q.float_tflite, "float reference") if data is not None and q.float_tflite is not None else None
    with console.step("weighing per-tensor against per-channel Dense" + (" on the validation data" if data else "")):
        choice = choose_dense_scales(
            q.tflite,
            alternative,
            data,
            lambda model: metrics_of(parse_model(model, "a Dense-scale variant"), float_info, data) if data is not None else {},
            rule is None,
            rule or "",
        )
        alt_info = parse_model(alternative, "per-channel Dense variant")
        sample: list[np.ndarray] = [np.zeros(t.shape, dtype=NUMPY_DTYPES[t.dtype]) for t in q.info.input_tensors]
        choice.arenas = {PER_TENSOR: arena_of(q.info, sample), PER_CHANNEL: arena_of(alt_info, sample)}
    console.info(f"weight scales: {choice.summary()}")
    if choice.per_channel:
        q = replace(q, tflite=alternative, info=alt_info)
    return q, choice
