"""Recurrent layers (LSTM, GRU, SimpleRNN, Bidirectional) rebuilt into forms TFLite Micro runs.

TensorFlow 2.21 cannot convert a Keras 3 LSTM to TFLite's fused op (calibration crashes or
TensorList ops remain), and full-int8 conversion has no TensorList ops at all. The same
network rebuilt in ``tf_keras`` with the weights copied and a batch-1 input converts (the
recipe of tflite-micro's ``examples/mnist_lstm/train.py``, which fixes the batch because "TFLite
converter requires fixed shape input"):

- LSTM -> one UNIDIRECTIONAL_SEQUENCE_LSTM (TFLite Micro has the fused kernel).
- Bidirectional(LSTM) -> two fused LSTMs, the backward one on a STRIDED_SLICE time reversal.
- GRU, SimpleRNN (and Bidirectional around them): no fused TFLite Micro op exists
  (micro_mutable_op_resolver.h has no GRU/RNN); unrolled over the fixed sequence length. Forms
  measured (8 steps, 4 features, 6 units, Dense(3); model bytes / x86 arena): SimpleRNN tf_keras
  unroll 9,728 / 9,440, Keras 3 unroll 10,640 / 9,440, a hand-written static loop 7,712 / 10,176
  -> tf_keras unroll (least arena). GRU: tf_keras unroll 29,624 / 29,584 and Keras 3 unroll
  32,048 / 32,560 both constant-fold the first step into a float constant that is SPLIT, which
  leaves DEQUANTIZE/QUANTIZE (not full int8; Keras 3 on some sizes only); the static loop of
  mcuq.frontend.recurrent_gru is full int8 and smallest: 27,912 / 32,432. The non-unrolled
  While/TensorList form does not convert to int8 at all (the converter crashes on the GRU). No
  form repeats a weight buffer (the steps share one tensor per weight): the size is the per-step
  ops and tensors.

The rebuilt network is run in float on calibration samples against the original model before
quantization; beyond ``FLOAT_TOLERANCE`` mcuq refuses instead of deploying something else.
Only a plain stack of layers (one input, each layer feeding the next) is rebuilt; the float
check catches any model this reading gets wrong.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mcuq.common.errors import ConversionError
from mcuq.frontend.loader import LoadedModel
from mcuq.frontend.recurrent_gru import unrolled_gru
from mcuq.frontend.samples import SampleSet

RECURRENT = {"LSTM", "GRU", "SimpleRNN"}
UNSUPPORTED_RECURRENT = {"RNN", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "LSTMCell", "GRUCell", "SimpleRNNCell"}
WRAPPERS = {"Bidirectional"}
# Largest |float(rebuilt) - float(original)| accepted, relative to the output range (max |y|, at
# least 1): both compute the same float graph, so only summation order may differ.
FLOAT_TOLERANCE = 1e-4
FLOAT_CHECK_SAMPLES = 16
BASE_KWARGS = {"name", "trainable"}


@dataclass(frozen=True)
class RebuiltLayer:
    """One recurrent layer mcuq rebuilt, as the summary and mcuq.lock.json name it."""

    name: str
    kind: str  # e.g. "LSTM", "Bidirectional(LSTM)"
    form: str  # "fused UNIDIRECTIONAL_SEQUENCE_LSTM" | "unrolled over N steps"
    stateful: bool
    how: str = ""  # "in tf_keras at batch 1" | "in Keras 3 with unroll=True"

    def describe(self) -> str:
        return f"'{self.name}' ({self.kind}{', stateful' if self.stateful else ''}) -> {self.form}, rebuilt {self.how}"


def _inner(layer: Any) -> Any:
    return getattr(layer, "forward_layer", None) or getattr(layer, "layer", None)


def recurrent_layers(model: Any) -> list[Any]:
    """The model's recurrent layers and Bidirectional wrappers, outermost first."""
    found = []
    for layer in getattr(model, "layers", []) or []:
        kind = type(layer).__name__
        if kind in RECURRENT | WRAPPERS | UNSUPPORTED_RECURRENT:
            found.append(layer)
        elif getattr(layer, "layers", None):
            found.extend(recurrent_layers(layer))
    return found


def needs_rebuild(loaded: LoadedModel) -> bool:
    """A Keras model with a recurrent layer that is not already unrolled by its author."""
    if loaded.model is None or loaded.kind not in ("keras3", "tf_keras"):
        return False
    for layer in recurrent_layers(loaded.model):
        cell = _inner(layer) if type(layer).__name__ in WRAPPERS else layer
        if not getattr(cell, "unroll", False) or getattr(cell, "stateful", False):
            return True
    return False


def _kwargs(layer: Any, cls: Any) -> dict[str, Any]:
    """The layer's config limited to what ``cls`` takes; initializers, regularizers and
    constraints are left out (the weights are copied, training never happens)."""
    allowed = set(inspect.signature(cls.__init__).parameters) | BASE_KWARGS
    skip = ("_initializer", "_regularizer", "_constraint")
    return {
        k: v
        for k, v in layer.get_config().items()
        if k in allowed and not k.endswith(skip) and k not in ("dtype", "layer", "backward_layer")
    }


def _form(kind: str, steps: int | None) -> str:
    if kind == "LSTM":
        return "fused UNIDIRECTIONAL_SEQUENCE_LSTM"
    return f"unrolled over {steps} steps (TFLite Micro has no fused {kind} op)"


def _rebuild_layer(
    layer: Any, tfk: Any, steps: int | None, notes: list[RebuiltLayer], keep_stateful: bool = False, go_backwards: bool | None = None
) -> Any:
    kind = type(layer).__name__
    if kind in UNSUPPORTED_RECURRENT:
        raise ConversionError(
            f"recurrent layer '{layer.name}' ({kind}) has no TFLite Micro form mcuq can build; "
            "use keras.layers.LSTM, GRU or SimpleRNN (or Conv1D)"
        )
    if kind == "Bidirectional":
        return _bidirectional(layer, tfk, steps, notes)
    if kind == "GRU":
        if layer.get_config().get("stateful") or layer.get_config().get("return_state"):
            raise ConversionError(
                f"recurrent layer '{layer.name}' (GRU) is stateful or returns its state; TFLite Micro carries state across "
                "invokes only in its fused LSTM: use keras.layers.LSTM(stateful=True), or a stateless GRU over the whole sequence"
            )
        notes.append(RebuiltLayer(layer.name, kind, _form(kind, steps) + ", a static loop with per-gate constants", False))
        return unrolled_gru(tfk, layer, go_backwards)
    cls = getattr(tfk.layers, kind, None)
    if cls is None:
        raise ConversionError(f"layer '{layer.name}' ({kind}) has no tf_keras counterpart to rebuild the recurrent model with")
    kwargs = _kwargs(layer, cls)
    if kind in RECURRENT:
        if kwargs.get("return_state"):
            raise ConversionError(
                f"recurrent layer '{layer.name}' ({kind}) returns its state (return_state=True); mcuq deploys one output per layer"
            )
        kwargs["unroll"] = kind != "LSTM"
        stateful = bool(kwargs.get("stateful"))
        if stateful and kind != "LSTM":
            raise ConversionError(
                f"recurrent layer '{layer.name}' ({kind}) is stateful; TFLite Micro carries state across invokes only in its "
                "fused LSTM: use keras.layers.LSTM(stateful=True), or a stateless layer over the whole sequence"
            )
        # The converter crashes on a stateful tf_keras LSTM; the fused op's state is a variable
        # tensor that TFLite Micro carries across invokes anyway, so the stateless twin converts
        # to exactly the streaming model (the float check runs the stateful twin).
        kwargs["stateful"] = stateful and keep_stateful
        if go_backwards is not None:
            kwargs["go_backwards"] = go_backwards
        notes.append(RebuiltLayer(layer.name, kind, _form(kind, steps), stateful))
    return cls(**kwargs)


MERGE_LAYERS = {"concat": "Concatenate", "sum": "Add", "mul": "Multiply", "ave": "Average"}


class _Bidirectional:
    """Bidirectional as two plain layers: the backward one reads the time-reversed sequence
    (a STRIDED_SLICE with stride -1, which every TFLite Micro library here has; tf_keras's
    Bidirectional writes REVERSE_V2, which the Arduino boards' 2023 library lacks), and its
    sequence output is reversed back, as Keras's Bidirectional does."""

    def __init__(self, layer: Any, forward: Any, backward: Any, tfk: Any) -> None:
        merge = getattr(layer, "merge_mode", "concat")
        if merge not in MERGE_LAYERS:
            raise ConversionError(f"Bidirectional layer '{layer.name}' has merge_mode={merge!r}; mcuq rebuilds concat, sum, mul and ave")
        self.original, self.forward, self.backward, self.tfk = layer, forward, backward, tfk
        self.merge = getattr(tfk.layers, MERGE_LAYERS[merge])(name=layer.name)
        self.sequences = bool(getattr(layer.forward_layer, "return_sequences", False))

    def _reverse(self, t: Any, name: str) -> Any:
        return self.tfk.layers.Lambda(lambda u: u[:, ::-1], name=f"{self.original.name}_{name}")(t)

    def __call__(self, t: Any) -> Any:
        backward = self.backward(self._reverse(t, "reverse_in"))
        if self.sequences:
            backward = self._reverse(backward, "reverse_out")
        return self.merge([self.forward(t), backward])

    def copy_weights(self) -> None:
        _set_weights(self.forward, self.original.forward_layer)
        _set_weights(self.backward, self.original.backward_layer)


def _bidirectional(layer: Any, tfk: Any, steps: int | None, notes: list[RebuiltLayer]) -> _Bidirectional:
    forward = _rebuild_layer(layer.forward_layer, tfk, steps, [])
    # the input is reversed explicitly (see _Bidirectional)
    backward = _rebuild_layer(layer.backward_layer, tfk, steps, [], go_backwards=False)
    inner = type(layer.forward_layer).__name__
    notes.append(RebuiltLayer(layer.name, f"Bidirectional({inner})", f"two {_form(inner, steps)} (reversed by STRIDED_SLICE)", False))
    return _Bidirectional(layer, forward, backward, tfk)


def _set_weights(new: Any, original: Any) -> None:
    if new.weights:  # the unrolled GRU holds its weights as constants already
        new.set_weights(original.get_weights())


def _copy_weights(original: Any, rebuilt: Any) -> None:
    if isinstance(rebuilt, _Bidirectional):
        rebuilt.copy_weights()
    else:
        _set_weights(rebuilt, original)


def _stack(model: Any) -> list[Any]:
    """The layers in call order, without InputLayer; refuse what is not one plain stack."""
    if len(getattr(model, "inputs", None) or []) != 1 or len(getattr(model, "outputs", None) or []) != 1:
        raise ConversionError(
            "mcuq rebuilds recurrent models with one input and one output; build the recurrent layers with unroll=True instead"
        )
    return [layer for layer in model.layers if type(layer).__name__ != "InputLayer"]


def build_tf_keras(loaded: LoadedModel, keep_stateful: bool = False) -> tuple[Any, list[RebuiltLayer]]:
    """The same network in tf_keras, batch 1, weights copied; and what was rebuilt how.
    ``keep_stateful``: stateful layers stay stateful (the float check's twin), else not (the
    converter's input; see _rebuild_layer)."""
    import tf_keras as tfk

    model = loaded.model
    spec = loaded.inputs[0]
    steps = spec.shape[0] if spec.shape else None
    x = tfk.Input(shape=spec.shape, batch_size=1, name=spec.name)
    y, pairs, notes = x, [], list[RebuiltLayer]()
    for layer in _stack(model):
        new = _rebuild_layer(layer, tfk, steps, notes, keep_stateful)
        y = new(y)
        pairs.append((layer, new))
    rebuilt = tfk.Model(x, y, name=getattr(model, "name", "model"))
    for original, new in pairs:
        _copy_weights(original, new)
    return rebuilt, notes


def _predict(model: Any, xs: list[np.ndarray], stateful: bool) -> np.ndarray:
    """One batch-1 sample per call; a stateful model runs the samples as one stream."""
    if stateful:
        _reset_states(model)
    return np.concatenate([np.asarray(model(x, training=False)).reshape(1, -1) for x in xs])


def _reset_states(model: Any) -> None:
    for layer in recurrent_layers(model):
        target = _inner(layer) if type(layer).__name__ in WRAPPERS else layer
        if hasattr(target, "reset_states"):
            target.reset_states()
        elif hasattr(layer, "reset_states"):
            layer.reset_states()


def check_float(original: Any, rebuilt: Any, data: SampleSet, stateful: bool, where: str) -> float:
    """Max output difference (relative to the output range) of the rebuilt float network on
    calibration samples; refuse beyond FLOAT_TOLERANCE."""
    samples = [data.sample(i)[0] for i in range(min(FLOAT_CHECK_SAMPLES, data.count))]
    want = _predict(original, samples, stateful)
    got = _predict(rebuilt, samples, stateful)
    scale = max(1.0, float(np.max(np.abs(want))))
    diff = float(np.max(np.abs(got - want))) / scale
    if not np.isfinite(diff) or diff > FLOAT_TOLERANCE:
        raise ConversionError(
            f"{where}: the recurrent layers rebuilt for TFLite Micro compute different floats than the model "
            f"(max difference {diff:.3g} of the output range, tolerance {FLOAT_TOLERANCE:g}); "
            "build the recurrent layers with unroll=True and a fixed sequence length instead"
        )
    return diff


def rebuild(loaded: LoadedModel, data: SampleSet) -> tuple[LoadedModel, list[RebuiltLayer], float]:
    """``loaded`` with its model replaced by the checked tf_keras rebuild (kind tf_keras)."""
    if len(loaded.inputs) != 1:
        raise ConversionError(
            f"{loaded.path}: mcuq rebuilds recurrent models with one input; build the recurrent layers with unroll=True instead"
        )
    try:
        rebuilt, notes = build_tf_keras(loaded)
    except ConversionError as exc:
        raise ConversionError(f"{loaded.path}: {exc}") from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ConversionError(
            f"{loaded.path}: cannot rebuild the recurrent model in tf_keras ({str(exc).splitlines()[0][:160]}); "
            "build the recurrent layers with unroll=True and a fixed sequence length instead"
        ) from None
    stateful = any(n.stateful for n in notes)
    twin = build_tf_keras(loaded, keep_stateful=True)[0] if stateful else rebuilt
    diff = check_float(loaded.model, twin, data, stateful, str(loaded.path))
    text = "; ".join(n.describe() for n in notes)
    how = "in tf_keras at batch 1"
    note = f"recurrent layers rebuilt {how} with the weights copied: {text} (float check: max difference {diff:.2g} of the output range)"
    return replace(loaded, kind="tf_keras", model=rebuilt, notes=[*loaded.notes, note]), [replace(n, how=how) for n in notes], diff
