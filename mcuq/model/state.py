"""State that lives across invokes: variable tensors (LSTM hidden/cell state) and resource variables.

TFLite Micro keeps a variable tensor in the persistent arena: it survives ``Invoke()`` and only
``MicroInterpreter::Reset()`` (AllocateTensors calls it once) sets it back to its zero point
(micro_interpreter_graph.cc ResetVariableTensors). So a converted Keras LSTM carries its state
from one invoke into the next, although Keras ran every ``predict`` from zero state (tflite-micro's
examples/mnist_lstm/evaluate.py calls ``interpreter.reset()`` between images "because LSTM is
stateful"). mcuq names the three cases:

- ``none``: no state; invokes are independent.
- ``per_invoke``: state inside one invoke only (a whole sequence per invoke, the Keras layer was not
  stateful): the generated ``<prefix>_invoke()`` resets the state first, so it computes what Keras did.
- ``streaming``: state carried across invokes (a stateful Keras layer, or a ``.tflite`` with state,
  which is TFLite Micro's own semantics, e.g. DTLN's one frame per invoke): ``<prefix>_reset()``
  clears it, and the golden vectors are sequences with reset points.
"""

from __future__ import annotations

from mcuq.model.info import ModelInfo

STATE_MODES = ("none", "per_invoke", "streaming")
RESOURCE_OPS = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"}


def has_state(info: ModelInfo) -> bool:
    """Variable tensors or resource variables: something an invoke leaves for the next one."""
    return any(t.is_variable for t in info.tensors) or bool(RESOURCE_OPS & set(info.op_names))


def state_mode(info: ModelInfo, streaming: bool) -> str:
    """``streaming``: the source says the state is meant to carry across invokes."""
    if not has_state(info):
        return "none"
    return "streaming" if streaming else "per_invoke"


def reset_points(count: int, mode: str) -> list[bool]:
    """Before which golden vector the state is reset. Every one, unless the model streams: then
    the vectors form two sequences (resets before vector 0 and before the middle one), so the
    check covers both the state carried from invoke to invoke and a reset in the middle."""
    if mode != "streaming" or count < 2:
        return [True] * count
    return [v in (0, count // 2) for v in range(count)]
