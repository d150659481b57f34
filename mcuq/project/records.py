"""The JSON records mcuq writes to disk, as types: parts of ``mcuq.lock.json`` and ``report.json``.

These values really are JSON (written with ``json.dumps``, read back by ``validate`` and the
report), so they are ``TypedDict``s: the writer and every reader name the same keys, mypy checks
each key and its type, and :func:`load_record` checks a file against them
(a required key missing or of the wrong type fails in one line naming it). Two shapes of one
record (the TFLite Micro arena carries its derivation, the plain-C one does not) are one
TypedDict whose extra keys are optional, so the files stay exactly as they were.

Imports nothing of mcuq: the manifest, the front end, the backends and the checks all name these.
"""

from __future__ import annotations

import json
import types
from dataclasses import MISSING, fields, is_dataclass
from typing import Any, TypedDict, TypeVar, Union, get_args, get_origin, get_type_hints, is_typeddict

T = TypeVar("T")


class _ArenaCommon(TypedDict):
    target_bytes: int  # the arena on the device
    host_bytes: int  # the arena validate's x86 TFLite Micro runs get
    host_min_bytes: int
    overridden: bool
    how: str


class ArenaJSON(_ArenaCommon, total=False):
    """``arena`` of the manifest; the TFLite Micro plan adds how the target was derived."""

    struct_delta_bytes: int
    scratch_bytes: int
    scratch_op: str | None
    margin_bytes: int
    kernels: str
    library_min_bytes: int | None
    measured_on: str


class FitJSON(TypedDict):
    """``fit`` of the manifest and the report: what the project needs on its board."""

    ram_bytes: int
    ram_budget: int
    flash_bytes: int
    flash_budget: int
    arena_in_psram: bool
    psram_budget: int
    fits: bool
    method: str


class RewriteJSON(TypedDict):
    """One layer the front end rewrote into int8-kernel ops (mcuq.frontend.rewrite.Rewrite)."""

    layer: str
    original: str
    replacement: str
    ops: list[str]
    reason: str


class FloatCheckJSON(TypedDict):
    samples: int
    max_abs_diff: float
    tolerance: float
    rule: str


class RewritesJSON(TypedDict):
    layers: list[RewriteJSON]
    float_check: FloatCheckJSON | None


class _QuantizationCommon(TypedDict):
    source: str | None
    source_kind: str
    io: str
    activations: str
    per_channel: str
    calibration: str


class QuantizationJSON(_QuantizationCommon, total=False):
    """``quantization`` of the manifest: how the int8 model was made (front end), plus where its
    inputs came from (``calibration_sha256`` is added when the manifest is built)."""

    calibration_samples: int | None
    calibration_seed: int
    image_scale: str
    random_calibration: bool
    accuracy_unverified: bool
    notes: list[str]
    rewrites: RewritesJSON | None
    rebuilt_layers: list[str]
    state: str
    calibration_sha256: str | None


class ErrorMetricsJSON(TypedDict):
    """Float reference against a dequantized output (mcuq.checks.metrics.error_metrics)."""

    RMSE: float
    MAE: float
    L2R: float
    COS: float
    SNR_dB: float


class OutputMetricsJSON(TypedDict, total=False):
    """One model output over the validation data: error metrics, and for a classifier accuracy."""

    name: str
    tensor: str
    index: int
    RMSE: float
    MAE: float
    L2R: float
    COS: float
    SNR_dB: float
    classifier: bool
    top1_agreement: float
    ACC_int8: float
    confusion_int8: list[list[int]]
    ACC_float: float
    confusion_float: list[list[int]]


class MetricsJSON(TypedDict, total=False):
    """``metrics`` of report.json: float vs int8 on the validation data, plus what the emulator
    (``emulation``) and the board (``device``) measured when those ran."""

    samples: int
    source: str
    outputs: list[OutputMetricsJSON]
    emulation: dict[str, object]
    device: dict[str, object]


class LayerErrorJSON(TypedDict, total=False):
    """One paired op of the per-layer error table; ``advice`` only on the diagnosed ones."""

    op_index: int
    op: str
    layer: str
    tensor: str
    SNR_dB: float
    COS: float
    drop_dB: float
    saturation: float
    advice: str


# What --per-channel auto measured for each Dense quantization (empty: nothing was measured);
# the keys are mcuq.frontend.dense_scales.PER_TENSOR and PER_CHANNEL.
DenseMeasuredJSON = TypedDict(
    "DenseMeasuredJSON", {"metric": str, "per-tensor Dense": float, "per-channel Dense": float, "samples": int}, total=False
)


class WeightScalesJSON(TypedDict):
    """``weight_scales`` of the manifest: which Dense quantization deploy kept and why."""

    kept: str
    reason: str
    measured: DenseMeasuredJSON
    arena_bytes: dict[str, int]


class ApiJSON(TypedDict):
    """``api`` of the manifest: the generated C API's prefix, header, labels and tensor names."""

    prefix: str
    header: str
    labels: list[str]
    labels_source: str | None
    inputs: list[str]
    outputs: list[str]


class GoldenTensorJSON(TypedDict):
    """One tensor of a golden vector in ``mcuq/golden.json``."""

    dtype: str
    shape: list[int]
    values: list[float]  # integers for the int8/int16 tensors


class GoldenVectorJSON(TypedDict):
    inputs: list[GoldenTensorJSON]
    outputs: list[GoldenTensorJSON]


class _GoldenCommon(TypedDict):
    vectors: list[GoldenVectorJSON]


class GoldenJSON(_GoldenCommon, total=False):
    """``mcuq/golden.json``; ``resets`` only for a model whose vectors form sequences."""

    resets: list[bool]


class CheckJSON(TypedDict):
    name: str
    passed: bool
    detail: str


class ReportSummaryJSON(TypedDict):
    """``summary`` of report.json: what was validated, on which board and runtime."""

    model: str
    board: str
    runtime: str
    library: str
    activations: str
    io: str
    int8_bytes: int
    float_bytes: int | None
    arena_bytes: int
    arena_how: str
    fit: FitJSON
    random_calibration: bool
    runtime_sizes: list[list[object]]
    runtime_sizes_title: str
    weight_scales: WeightScalesJSON | None
    per_channel_note: str
    labels: list[str]
    rewrites: RewritesJSON | None


class OpRowJSON(TypedDict):
    index: int
    op: str
    macs: int
    optimized: bool
    layer: str


class WeightPictureJSON(TypedDict):
    """One weight histogram of report.html (not in report.json)."""

    name: str
    shape: list[int]
    quant: str
    image: str


class _ReportCommon(TypedDict):
    project: str
    passed: bool
    checks: list[CheckJSON]
    not_checked: list[CheckJSON]
    notes: list[str]
    metrics: MetricsJSON
    per_layer: list[LayerErrorJSON]
    report_files: list[str]


class ReportJSON(_ReportCommon, total=False):
    """report.json (``mcuq validate --json`` prints the first part); report.html is drawn from it
    plus ``weights``."""

    summary: ReportSummaryJSON
    ops: list[OpRowJSON]
    worst_layers: list[LayerErrorJSON]
    weights: list[WeightPictureJSON]


class Malformed(Exception):
    """A record does not match its dataclass: ``key`` is the dotted path of the bad value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"'{key}' {problem}")
        self.key = key


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {json.dumps(value, default=str)[:40]}"


def _type_name(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint))
    if hint is type(None):
        return "null"
    origin = get_origin(hint)
    if origin is list:
        return "a list"
    if origin is dict or is_dataclass(hint) or is_typeddict(hint):
        return "an object"
    return getattr(hint, "__name__", str(hint))


def checked_value(hint: Any, value: Any, key: str) -> Any:
    """``value`` checked against ``hint`` (JSON types, unions, lists, dicts, nested dataclasses)."""
    if hint is Any:
        return value
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for arg in get_args(hint):
            try:
                return checked_value(arg, value, key)
            except Malformed as exc:
                if exc.key != key:
                    raise  # the value has the right shape; something inside it is wrong
        raise Malformed(key, f"must be {_type_name(hint)}, got {_kind(value)}")
    if hint is type(None):
        if value is not None:
            raise Malformed(key, f"must be null, got {_kind(value)}")
        return None
    if origin is list:
        if not isinstance(value, list):
            raise Malformed(key, f"must be a list, got {_kind(value)}")
        (item,) = get_args(hint)
        return [checked_value(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise Malformed(key, f"must be an object, got {_kind(value)}")
        _, item = get_args(hint)
        return {k: checked_value(item, v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and is_dataclass(hint):
        return load_record(hint, value, key)
    if is_typeddict(hint):
        return _typed_dict(hint, value, key)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise Malformed(key, f"must be {_type_name(hint)}, got {_kind(value)}")
    return value


def _typed_dict(hint: Any, value: Any, key: str) -> dict[str, object]:
    """A JSON object checked against a TypedDict (mcuq.project.records): required keys present,
    every declared key of its type; keys it does not declare are kept as they are, so the file
    is written back byte for byte."""
    if not isinstance(value, dict):
        raise Malformed(key, f"must be an object, got {_kind(value)}")
    hints = get_type_hints(hint)
    for name in sorted(hint.__required_keys__):
        if name not in value:
            raise Malformed(f"{key}.{name}", "is missing")
    return {k: checked_value(hints[k], v, f"{key}.{k}") if k in hints else v for k, v in value.items()}


def load_record(cls: type[T], data: Any, key: str, **given: Any) -> T:
    """``data`` (parsed JSON) as the dataclass ``cls``, every field checked against its type
    hint; raises :class:`Malformed` naming the dotted key that is missing or of the wrong type.
    Fields in ``given`` are taken as they are (already typed); keys the dataclass does not
    declare are ignored."""
    if not isinstance(data, dict):
        raise Malformed(key, f"must be an object, got {_kind(data)}")
    hints = get_type_hints(cls)
    kwargs: dict[str, object] = dict(given)
    for f in fields(cls):  # type: ignore[arg-type]
        where = f"{key}.{f.name}" if key else f.name
        if f.name in given:
            continue
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise Malformed(where, "is missing")
            continue
        kwargs[f.name] = checked_value(hints[f.name], data[f.name], where)
    return cls(**kwargs)
