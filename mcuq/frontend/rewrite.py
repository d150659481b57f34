"""Rewrite Keras 3 layers that full-int8 TFLite Micro cannot run into layers it can.

The TFLite converter leaves some layers in float (ELU: DEQUANTIZE/ELU/QUANTIZE; the NEG inside
Keras's LayerNormalization), emits ops no pinned library has a kernel for (GELU; TILE for a
nearest UpSampling), or ops one of them lacks (BATCH_MATMUL of MultiHeadAttention: the Arduino
boards' Chirale 2.0.0 has no batch_matmul kernel). Before conversion mcuq clones the model with
those layers replaced by the same function written in ops that every pinned TFLite Micro
library (``boards/libraries/*.toml``) has an int8 kernel for:

- ELU:  relu(x) + alpha * (rsqrt(1 - sigmoid(m))^2 - 2), m = x - relu(x) = min(x, 0)  (exact: 1/(1-sigmoid(m)) = 1 + e^m)
- GELU: x * sigmoid(1.5958 * (x + 0.044715 x^3))                   (the tanh form, as x*sigmoid(2z))
- LayerNormalization: (x - mean) * rsqrt(mean((x - mean)^2) + eps) * gamma + beta, each mean over
  the last axis a FULLY_CONNECTED with weights 1/n (MEAN rounds differently on the Arduino library)
- UpSampling1D/2D nearest: RESIZE_NEAREST_NEIGHBOR (half-pixel centres reproduce i // size)
- MultiHeadAttention: per head, FULLY_CONNECTED projections, scores as a broadcast MUL summed by
  a constant FULLY_CONNECTED, SOFTMAX, the weighted sum likewise (TRANSPOSE); no BATCH_MATMUL.

Every rewrite is checked in float against the original model on the calibration samples
before anything is quantized (``check_float``): the outputs may differ by at most half an int8
step of each output's range, i.e. by less than int8 can represent; otherwise mcuq refuses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from mcuq.common.console import SILENT, Console
from mcuq.common.errors import ConversionError
from mcuq.frontend.loader import LoadedModel
from mcuq.frontend.samples import SampleSet
from mcuq.project.records import FloatCheckJSON, RewriteJSON, RewritesJSON

# The float outputs of the rewritten model may differ from the original's by this fraction of
# each output's range: half an int8 step (1/255/2), below what the int8 model can resolve.
TOLERANCE_OF_RANGE = 1.0 / 510.0
FLOAT_CHECK_SAMPLES = 64
GELU_C = 2.0 * math.sqrt(2.0 / math.pi)  # tanh(z) = 2*sigmoid(2z) - 1, so 0.5(1+tanh(z)) = sigmoid(2z)

# Ops each replacement becomes (int8 kernels in every pinned library; see common_library_ops).
ELU_OPS = ("RELU", "SUB", "LOGISTIC", "RSQRT", "MUL", "ADD")
GELU_OPS = ("MUL", "ADD", "LOGISTIC")
LAYER_NORM_OPS = ("FULLY_CONNECTED", "SUB", "MUL", "ADD", "RSQRT")
RESIZE_OPS = ("RESIZE_NEAREST_NEIGHBOR",)
ATTENTION_OPS = ("FULLY_CONNECTED", "STRIDED_SLICE", "RESHAPE", "TRANSPOSE", "MUL", "SOFTMAX", "CONCATENATION")


@dataclass(frozen=True)
class Rewrite:
    """One layer mcuq replaced: what it was, what it became, and why."""

    layer: str
    original: str
    replacement: str
    ops: tuple[str, ...]
    reason: str

    def as_dict(self) -> RewriteJSON:
        return {
            "layer": self.layer,
            "original": self.original,
            "replacement": self.replacement,
            "ops": list(self.ops),
            "reason": self.reason,
        }

    def line(self) -> str:
        return f"'{self.layer}' {self.original} -> {self.replacement}"


@dataclass(frozen=True)
class FloatCheck:
    """The rewritten model against the original, in float, before quantization."""

    samples: int
    max_abs_diff: float
    tolerance: float

    def as_dict(self) -> FloatCheckJSON:
        return {
            "samples": self.samples,
            "max_abs_diff": self.max_abs_diff,
            "tolerance": self.tolerance,
            "rule": "half an int8 step of each output's range",
        }


@dataclass
class RewriteOutcome:
    """The model to quantize (``loaded`` is the original when nothing was rewritten)."""

    loaded: LoadedModel
    rewrites: list[Rewrite]
    check: FloatCheck | None = None

    def as_dict(self) -> RewritesJSON:
        return {"layers": [r.as_dict() for r in self.rewrites], "float_check": self.check.as_dict() if self.check else None}


@cache
def common_library_ops() -> frozenset[str]:
    """``Add*`` methods every pinned TFLite Micro library has (boards/libraries/*.toml): what a
    rewritten model may use and still deploy to every TFLite Micro board."""
    from mcuq.common.resources import boards_dir
    from mcuq.libraries import load_library

    sets = [load_library(p.stem).add_methods for p in sorted((boards_dir() / "libraries").glob("*.toml")) if p.stem != "kernel_sets"]
    return frozenset.intersection(*sets) if sets else frozenset()


def _library_has(op: str) -> bool:
    from mcuq.libraries import add_method_name

    return add_method_name(op) in common_library_ops()


# ---------------------------------------------------------------- the int8-friendly functions


def elu_int8(x: Any, alpha: float = 1.0) -> Any:
    """ELU without EXP (float-only in TFLite Micro): for m = min(x, 0), 1/(1 - sigmoid(m)) = 1 + e^m,
    and 1/y = rsqrt(y)^2, so e^m - 1 = rsqrt(1 - sigmoid(m))^2 - 2."""
    from keras import ops

    positive = ops.relu(x)
    # min(x, 0) as x - relu(x): the converter gives MINIMUM's input its output's scale, which
    # would clip every positive x of the layer before (seen on x86 TFLite Micro).
    r = ops.rsqrt(1.0 - ops.sigmoid(x - positive))
    negative = r * r - 2.0
    return positive + (negative if alpha == 1.0 else alpha * negative)


def gelu_int8(x: Any) -> Any:
    """GELU's tanh form as x * sigmoid(2z), z = sqrt(2/pi) (x + 0.044715 x^3): MUL/ADD/LOGISTIC only."""
    from keras import ops

    return x * ops.sigmoid(x * (GELU_C + (GELU_C * 0.044715) * (x * x)))


@dataclass(frozen=True)
class Replacements:
    """The Keras layer classes a rewritten layer becomes (defined by :func:`_layer_classes`)."""

    activation: type
    layer_norm: type
    upsampling: type
    attention: type


def _layer_classes() -> Replacements:
    """The replacement layer classes, defined on first use (importing keras is slow)."""
    import keras
    from keras import ops

    class Int8Activation(keras.layers.Layer):
        """An element-wise function (ELU/GELU) spelt with int8-kernel ops."""

        def __init__(self, function: Callable[[Any], Any], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.function = function

        def call(self, x: Any) -> Any:
            return self.function(x)

    class Int8LayerNormalization(keras.layers.Layer):
        """LayerNormalization as FULLY_CONNECTED(1/n)/SUB/MUL/ADD/RSQRT (Keras's own form needs a float NEG)."""

        def __init__(self, axes: list[int], epsilon: float, gamma: Any, beta: Any, rms: bool, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.axes, self.epsilon, self.gamma, self.beta, self.rms = axes, epsilon, gamma, beta, rms

        def _mean(self, x: Any) -> Any:
            """Mean over the normalized axes as a FULLY_CONNECTED with weights 1/n: the Arduino
            boards' int8 MEAN rounds otherwise than TFLite Micro's reference when input and output
            share a scale (Chirale 2.0.0 reduce_common.cpp:190-193), a matmul computes alike everywhere."""
            if self.axes == [len(x.shape) - 1]:
                n = int(x.shape[-1])
                return ops.matmul(x, np.full((n, 1), 1.0 / n, np.float32))
            return ops.mean(x, axis=self.axes, keepdims=True)

        def call(self, x: Any) -> Any:
            centred = x if self.rms else x - self._mean(x)
            y = centred * ops.rsqrt(self._mean(centred * centred) + self.epsilon)
            if self.gamma is not None:
                y = y * self.gamma
            if self.beta is not None:
                y = y + self.beta
            return y

    class Int8NearestUpSampling(keras.layers.Layer):
        """Nearest UpSampling1D/2D as one resize (TFLite: RESIZE_NEAREST_NEIGHBOR, not TILE)."""

        def __init__(self, size: tuple[int, ...], **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.size = size

        def call(self, x: Any) -> Any:
            if len(self.size) == 1:  # [B, T, C] -> [B, T, 1, C] -> resize -> [B, T*s, C]
                steps, channels = x.shape[1], x.shape[2]
                image = ops.reshape(x, (-1, steps, 1, channels))
                up = ops.image.resize(image, (steps * self.size[0], 1), interpolation="nearest")
                return ops.reshape(up, (-1, steps * self.size[0], channels))
            height, width = x.shape[1], x.shape[2]
            return ops.image.resize(x, (height * self.size[0], width * self.size[1]), interpolation="nearest")

    class Int8Attention(keras.layers.Layer):
        """MultiHeadAttention (rank-3 inputs, attention over the sequence axis, no mask) without
        BATCH_MATMUL: products of two activations are broadcast MULs summed by a constant matmul."""

        def __init__(self, weights: dict[str, np.ndarray], heads: int, key_dim: int, value_dim: int, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.w, self.heads, self.key_dim, self.value_dim = weights, heads, key_dim, value_dim

        def _project(self, x: Any, name: str) -> Any:
            y = ops.matmul(x, self.w[f"{name}_kernel"])
            bias = self.w.get(f"{name}_bias")
            return y if bias is None else y + bias

        def call(self, query: Any, value: Any, key: Any = None, **_: Any) -> Any:
            key = value if key is None else key
            q = self._project(query, "query")  # [B, T, H*dk]
            k = self._project(key, "key")  # [B, S, H*dk]
            v = self._project(value, "value")  # [B, S, H*dv]
            steps, targets = int(key.shape[1]), int(query.shape[1])
            # Sums over the last axis as FULLY_CONNECTED with constant weights (not MEAN, whose
            # int8 rounding differs between the pinned libraries; not BATCH_MATMUL, missing on Chirale).
            scale_scores = np.full((self.key_dim, 1), 1.0 / math.sqrt(self.key_dim), np.float32)
            ones = np.ones((steps, 1), np.float32)
            outputs = []
            for h in range(self.heads):
                qh = q[:, :, h * self.key_dim : (h + 1) * self.key_dim]
                kh = k[:, :, h * self.key_dim : (h + 1) * self.key_dim]
                vh = v[:, :, h * self.value_dim : (h + 1) * self.value_dim]
                products = ops.expand_dims(qh, 2) * ops.expand_dims(kh, 1)  # [B, T, S, dk]
                scores = ops.reshape(ops.matmul(products, scale_scores), (-1, targets, steps))
                attention = ops.softmax(scores, axis=-1)  # [B, T, S]
                values_t = ops.transpose(vh, (0, 2, 1))  # [B, dv, S]
                weighted = ops.expand_dims(attention, 2) * ops.expand_dims(values_t, 1)  # [B, T, dv, S]
                outputs.append(ops.reshape(ops.matmul(weighted, ones), (-1, targets, self.value_dim)))
            joined = outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=-1)
            return self._project(joined, "output")

    return Replacements(Int8Activation, Int8LayerNormalization, Int8NearestUpSampling, Int8Attention)


# ---------------------------------------------------------------- which layers, and their replacement


def _activation_name(layer: Any) -> str | None:
    fn = getattr(layer, "activation", None)
    name = getattr(fn, "__name__", None)
    return name if name in ("elu", "gelu") else None


def _refuse(layer: Any, why: str, instead: str) -> ConversionError:
    return ConversionError(f"Keras layer '{layer.name}' ({type(layer).__name__}): {why}; {instead}")


def _elu_alpha(layer: Any) -> float:
    return float(getattr(layer, "alpha", 1.0))


def _replacement(layer: Any) -> tuple[Any, Rewrite] | None:
    """The layer to put in ``layer``'s place and the record of it, or None (keep it)."""
    kind = type(layer).__name__
    classes = _layer_classes()
    if kind == "ELU":
        alpha = _elu_alpha(layer)
        new = classes.activation(lambda x: elu_int8(x, alpha), name=layer.name)
        return new, Rewrite(
            layer.name, "ELU", "relu(x) + alpha*(rsqrt(1-sigmoid(x-relu(x)))^2 - 2)", ELU_OPS, "the TFLite converter leaves ELU in float"
        )
    activation = _activation_name(layer)
    if activation is not None:
        fn = elu_int8 if activation == "elu" else gelu_int8
        what = (
            ("relu(x) + rsqrt(1-sigmoid(x-relu(x)))^2 - 2", ELU_OPS, "the TFLite converter leaves ELU in float")
            if activation == "elu"
            else ("x*sigmoid(1.5958*(x+0.044715x^3)) (tanh form)", GELU_OPS, "no pinned TFLite Micro library has a GELU kernel")
        )
        if kind == "Activation":
            new = classes.activation(fn, name=layer.name)
            return new, Rewrite(layer.name, f"Activation({activation})", what[0], what[1], what[2])
        new = type(layer).from_config({**layer.get_config(), "activation": fn})
        return new, Rewrite(layer.name, f"{kind}(activation={activation})", f"{kind} with {activation} as {what[0]}", what[1], what[2])
    if kind == "LayerNormalization":
        return _layer_norm(layer, classes), Rewrite(
            layer.name,
            kind,
            "x - mean, * rsqrt(mean of squares + eps), * gamma + beta (means as FULLY_CONNECTED 1/n)",
            LAYER_NORM_OPS,
            "Keras's LayerNormalization converts with a float NEG",
        )
    if kind in ("UpSampling1D", "UpSampling2D") and not _library_has("TILE"):
        return _upsampling(layer, classes)
    if kind == "MultiHeadAttention" and not _library_has("BATCH_MATMUL"):
        return _attention(layer, classes), Rewrite(
            layer.name,
            kind,
            "per-head FULLY_CONNECTED projections, MUL+FULLY_CONNECTED scores, SOFTMAX, MUL+FULLY_CONNECTED context",
            ATTENTION_OPS,
            "BATCH_MATMUL has no kernel in the Arduino boards' library (Chirale 2.0.0)",
        )
    return None


def _layer_norm(layer: Any, classes: Replacements) -> Any:
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    rank = len(layer.input.shape)
    axes = sorted(a % rank for a in axes)
    if 0 in axes:
        raise _refuse(layer, "normalizes over the batch axis, which a batch-1 MCU model cannot", "normalize over feature axes (axis=-1)")
    shape = [1] * rank
    for a in axes:
        shape[a] = int(layer.input.shape[a])
    gamma = (
        np.asarray(layer.gamma.numpy(), np.float32).reshape(shape) if getattr(layer, "scale", False) and layer.gamma is not None else None
    )
    beta = np.asarray(layer.beta.numpy(), np.float32).reshape(shape) if getattr(layer, "center", False) and layer.beta is not None else None
    rms = bool(getattr(layer, "rms_scaling", False))
    return classes.layer_norm(axes, float(layer.epsilon), gamma, beta, rms, name=layer.name)


def _upsampling(layer: Any, classes: Replacements) -> tuple[Any, Rewrite] | None:
    kind = type(layer).__name__
    if kind == "UpSampling2D":
        if getattr(layer, "interpolation", "nearest") != "nearest":
            return None  # bilinear already converts to RESIZE_BILINEAR
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise _refuse(
                layer,
                "channels_first UpSampling2D becomes TILE, which no pinned TFLite Micro library has",
                "use data_format='channels_last'",
            )
        size: tuple[int, ...] = tuple(int(s) for s in layer.size)
    else:
        size = (int(layer.size),)
    new = classes.upsampling(size, name=layer.name)
    return new, Rewrite(
        layer.name,
        f"{kind}(nearest)",
        "RESIZE_NEAREST_NEIGHBOR",
        RESIZE_OPS,
        "Keras's nearest UpSampling converts to TILE, which no pinned library has",
    )


def _attention(layer: Any, classes: Replacements) -> Any:
    """Copy the EinsumDense kernels of a MultiHeadAttention as 2-D matrices."""
    instead = "what deploys: MultiHeadAttention on [batch, sequence, features] inputs (attention over the sequence), called without masks"
    if getattr(layer, "_attention_axes", None) not in (None, (1,), [1]):
        raise _refuse(layer, "attention over axes other than the sequence axis has no BATCH_MATMUL-free form here", instead)
    if len(layer._query_dense.kernel.shape) != 3:
        raise _refuse(layer, "only rank-3 inputs [batch, sequence, features] are rewritten", instead)
    weights: dict[str, np.ndarray] = {}
    for name in ("query", "key", "value"):
        dense = getattr(layer, f"_{name}_dense")
        kernel = np.asarray(dense.kernel.numpy(), np.float32)  # [D, H, d]
        weights[f"{name}_kernel"] = kernel.reshape(kernel.shape[0], -1)
        if dense.bias is not None:
            weights[f"{name}_bias"] = np.asarray(dense.bias.numpy(), np.float32).reshape(-1)
    out = layer._output_dense
    kernel = np.asarray(out.kernel.numpy(), np.float32)  # [H, dv, D]
    weights["output_kernel"] = kernel.reshape(-1, kernel.shape[-1])
    if out.bias is not None:
        weights["output_bias"] = np.asarray(out.bias.numpy(), np.float32).reshape(-1)
    heads, key_dim = int(layer._query_dense.kernel.shape[1]), int(layer._query_dense.kernel.shape[2])
    value_dim = int(layer._value_dense.kernel.shape[2])
    return classes.attention(weights, heads, key_dim, value_dim, name=layer.name)


def _check_call_arguments(model: Any) -> None:
    """Masks and causal attention are not rewritten: refuse with the layer's name."""
    for layer in _all_layers(model):
        if type(layer).__name__ != "MultiHeadAttention" or _library_has("BATCH_MATMUL"):
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            kwargs = getattr(node, "arguments", None)
            used = {k for k, v in (getattr(kwargs, "kwargs", {}) or {}).items() if v is not None and v is not False}
            unsupported = used & {"attention_mask", "query_mask", "value_mask", "key_mask", "use_causal_mask", "return_attention_scores"}
            if unsupported:
                raise _refuse(
                    layer,
                    f"called with {', '.join(sorted(unsupported))}, which the attention mcuq writes without BATCH_MATMUL (missing in the Arduino boards' library) does not support",
                    "what deploys: the same layer called as mha(query, value[, key]) without masks",
                )


def _all_layers(model: Any) -> list[Any]:
    found, stack = [], list(getattr(model, "layers", []))
    while stack:
        layer = stack.pop()
        found.append(layer)
        stack.extend(getattr(layer, "layers", []) or [])
    return found


# ---------------------------------------------------------------- the entry point


def rewrite_for_int8(loaded: LoadedModel, data: SampleSet, console: Console = SILENT) -> RewriteOutcome:
    """Clone a Keras 3 model with the layers above replaced, check the clone in float against
    the original, and return it (or the original untouched when nothing needs a rewrite)."""
    if loaded.kind != "keras3" or loaded.model is None:
        return RewriteOutcome(loaded, [])
    model = loaded.model
    if not any(_needs_rewrite(layer) for layer in _all_layers(model)):
        return RewriteOutcome(loaded, [])
    if type(model).__name__ not in ("Functional", "Sequential"):
        layer = next(layer for layer in _all_layers(model) if _needs_rewrite(layer))
        raise _refuse(
            layer,
            "TFLite Micro cannot run it in full int8 and mcuq rewrites layers only in Functional/Sequential models",
            "build the model with the functional API, or replace the layer yourself "
            + {"ELU": "(ReLU or LeakyReLU)", "LayerNormalization": "(BatchNormalization)"}.get(
                type(layer).__name__, "(see README, Rewritten layers)"
            ),
        )
    _check_call_arguments(model)
    rewritten, rewrites = _clone(model)
    check = check_float(model, rewritten, data, rewrites)
    console.info(
        f"rewrote {len(rewrites)} layer(s) into int8 ops ({'; '.join(r.line() for r in rewrites)}); "
        f"float outputs within {check.max_abs_diff:.2g} of the original (tolerance {check.tolerance:.2g})"
    )
    from dataclasses import replace

    return RewriteOutcome(replace(loaded, model=rewritten), rewrites, check)


def _needs_rewrite(layer: Any) -> bool:
    kind = type(layer).__name__
    if kind == "UpSampling2D":
        return getattr(layer, "interpolation", "nearest") == "nearest" and not _library_has("TILE")
    if kind == "UpSampling1D":
        return not _library_has("TILE")
    if kind == "MultiHeadAttention":
        return not _library_has("BATCH_MATMUL")
    return kind in ("ELU", "LayerNormalization") or _activation_name(layer) is not None


def _clone(model: Any) -> tuple[Any, list[Rewrite]]:
    """``keras.models.clone_model`` sharing every untouched layer (and its weights) with the
    original; replaced layers that keep weights (an activation swap) get them copied after."""
    import keras

    rewrites: list[Rewrite] = []
    copy_weights: list[tuple[Any, Any]] = []

    def clone_layer(layer: Any) -> Any:
        found = _replacement(layer)
        if found is None:
            return layer
        new, record = found
        rewrites.append(record)
        if layer.weights and isinstance(new, type(layer)):
            copy_weights.append((layer, new))
        return new

    clone = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    for old, new in copy_weights:
        new.set_weights(old.get_weights())
    return clone, rewrites


def _run(model: Any, data: SampleSet, count: int) -> list[np.ndarray]:
    inputs = [a[:count].astype(np.float32) for a in data.arrays.values()]
    names = [str(getattr(t, "name", "")).split(":")[0] for t in model.inputs]
    if len(inputs) > 1 and set(names) == set(data.arrays):
        inputs = [data.arrays[n][:count].astype(np.float32) for n in names]
    out = model(inputs if len(inputs) > 1 else inputs[0], training=False)
    outs = list(out.values()) if isinstance(out, dict) else (list(out) if isinstance(out, (list, tuple)) else [out])
    return [np.asarray(o, np.float64) for o in outs]


def check_float(original: Any, rewritten: Any, data: SampleSet, rewrites: list[Rewrite]) -> FloatCheck:
    """Refuse a rewrite whose float outputs differ from the original's by more than half an
    int8 step of the output's range on the calibration samples."""
    count = min(FLOAT_CHECK_SAMPLES, data.count)
    worst, tolerance = 0.0, math.inf
    for ref, got in zip(_run(original, data, count), _run(rewritten, data, count)):
        span = float(ref.max() - ref.min()) if ref.size else 0.0
        limit = max(span, float(np.abs(ref).max()) if ref.size else 0.0, 1e-6) * TOLERANCE_OF_RANGE
        diff = float(np.abs(ref - got).max()) if ref.size else 0.0
        if diff > limit:
            names = ", ".join(r.line() for r in rewrites)
            raise ConversionError(
                f"the int8-friendly rewrite of {names} changes the float outputs by {diff:.3g} (more than half an int8 step, "
                f"{limit:.3g}) on {count} calibration samples; replace those layers yourself (ReLU for ELU, "
                "x*sigmoid(1.702x) for GELU, BatchNormalization for LayerNormalization)"
            )
        worst, tolerance = max(worst, diff), min(tolerance, limit)
    return FloatCheck(count, worst, tolerance if tolerance != math.inf else 0.0)
