"""Model bytes and x86 TFLite Micro arena of recurrent layers: the form mcuq builds vs Keras's unroll.

    python benchmarks/recurrent_forms.py [family ...]   # lstm gru simple_rnn bidirectional_lstm mnist_lstm

Each family is a Sequential Input(steps, features) -> layer -> Dense(3) with random weights and
random-normal calibration data. "mcuq" is what deploy converts (mcuq.frontend.recurrent);
"unroll=True" is the same layer built with Keras 3's unroll=True, converted by mcuq as it is.
Prints a table; numbers are the x86 wheel's (64-bit structs), so the 32-bit arena is smaller.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FAMILIES = {  # name: (steps, features, units)
    "lstm": (8, 4, 6),
    "gru": (8, 4, 6),
    "simple_rnn": (8, 4, 6),
    "bidirectional_lstm": (8, 4, 6),
    "mnist_lstm": (28, 28, 20),
}


def _model(name: str, unroll: bool) -> Any:
    import keras

    steps, features, units = FAMILIES[name]
    layers = keras.layers
    kind = {"gru": layers.GRU, "simple_rnn": layers.SimpleRNN}.get(name, layers.LSTM)
    layer = kind(units, unroll=unroll)
    if name == "bidirectional_lstm":
        layer = layers.Bidirectional(layer)
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((steps, features)), layer, layers.Dense(3)])


def _measure(name: str, unroll: bool, folder: Path) -> str:
    from mcuq.common.errors import MCUQError
    from mcuq.frontend.converter import QuantizeOptions, quantize
    from mcuq.reference.host_tflm import measure_min_arena

    steps, features, _ = FAMILIES[name]
    path = folder / f"{name}_{unroll}.keras"
    _model(name, unroll).save(path)
    calibration = folder / f"{name}.npy"
    np.save(calibration, np.random.default_rng(0).normal(size=(40, steps, features)).astype(np.float32))
    try:
        q = quantize(path, str(calibration), options=QuantizeOptions(per_channel="none"))
    except MCUQError as exc:
        return f"{name:20s} {'unroll=True' if unroll else 'mcuq':12s} refused: {str(exc)[:90]}"
    sample = [np.zeros(q.info.input_tensors[0].shape, np.int8)]
    arena = measure_min_arena(q.tflite, sample)
    return f"{name:20s} {'unroll=True' if unroll else 'mcuq':12s} {len(q.tflite):>9,} {arena:>9,} {len(q.info.ops):>5}"


def main(names: list[str]) -> int:
    print(f"{'family':20s} {'form':12s} {'model B':>9s} {'arena B':>9s} {'ops':>5s}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names or list(FAMILIES):
            for unroll in (False, True):
                print(_measure(name, unroll, Path(tmp)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
