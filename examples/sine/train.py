"""Train the bundled sine example: the classic TFLite Micro "hello world" regression.

A 1 -> 16 -> 16 -> 1 MLP learning y = sin(x) on [0, 2*pi]. Deterministic (fixed seeds).
Writes model.keras, calibration.npy and val.npz (``x`` and float targets ``y``).
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main() -> None:
    import keras

    keras.utils.set_random_seed(7)
    here = Path(__file__).resolve().parent
    rng = np.random.default_rng(7)
    x = rng.uniform(0.0, 2 * np.pi, size=(2000, 1)).astype(np.float32)
    y = (np.sin(x) + rng.normal(0, 0.05, size=x.shape)).astype(np.float32)
    model = keras.Sequential(
        [
            keras.Input((1,), name="x"),
            keras.layers.Dense(16, activation="relu", name="fc1"),
            keras.layers.Dense(16, activation="relu", name="fc2"),
            keras.layers.Dense(1, name="y"),
        ],
        name="sine",
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    model.fit(x[:1600], y[:1600], epochs=60, batch_size=32, verbose=0)
    print(f"float validation mse: {model.evaluate(x[1600:], y[1600:], verbose=0):.5f}")
    model.save(here / "model.keras")
    np.save(here / "calibration.npy", x[:300])
    np.savez(here / "val.npz", x=x[1600:], y=y[1600:])


if __name__ == "__main__":
    main()
