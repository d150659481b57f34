"""Train the bundled digits example: a small CNN on scikit-learn's 8x8 digits.

No download: the data ships with scikit-learn. Deterministic (fixed seeds).
Writes model.keras, calibration.npy (200 training images) and val.npz
(held-out inputs ``x`` and integer ``labels``) next to this script.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np


def main() -> None:
    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    keras.utils.set_random_seed(7)
    here = Path(__file__).resolve().parent
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[..., None]  # (N, 8, 8, 1) in [0, 1]
    y = digits.target.astype(np.int64)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.25, random_state=7, stratify=y)

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1), name="image"),
            keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
            keras.layers.MaxPooling2D(2, name="pool1"),
            keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2"),
            keras.layers.Conv2D(16, 1, activation="relu", name="pw2"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(32, activation="relu", name="fc1"),
            keras.layers.Dense(10, activation="softmax", name="probs"),
        ],
        name="digits",
    )
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=40, batch_size=32, verbose=0, validation_data=(x_val, y_val))
    _, acc = model.evaluate(x_val, y_val, verbose=0)
    print(f"float validation accuracy: {acc:.4f}")
    model.save(here / "model.keras")
    rng = np.random.default_rng(7)
    np.save(here / "calibration.npy", x_train[rng.choice(len(x_train), 200, replace=False)])
    np.savez(here / "val.npz", x=x_val, labels=y_val)


if __name__ == "__main__":
    main()
