"""Reference-class models for the benchmarks, built in code (nothing is downloaded).

Architectures follow the MLPerf Tiny reference models (v1.x training scripts): DS-CNN
keyword spotting, ResNet-8 image classification, MobileNetV1 (alpha 0.25) visual wake words
and the fully connected anomaly-detection autoencoder. Weights come from one short epoch on
seeded synthetic data: accuracy does not matter for memory, size and speed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def _k() -> Any:
    import keras

    return keras


def ds_cnn_kws() -> Any:
    keras = _k()
    L = keras.layers
    inp = keras.Input((49, 10, 1))
    x = L.Conv2D(64, (10, 4), strides=(2, 2), padding="same", use_bias=False)(inp)
    x = L.ReLU()(L.BatchNormalization()(x))
    for _ in range(4):
        x = L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
        x = L.Conv2D(64, 1, use_bias=False)(x)
        x = L.ReLU()(L.BatchNormalization()(x))
    x = L.AveragePooling2D(pool_size=(25, 5))(x)
    x = L.Flatten()(x)
    return keras.Model(inp, L.Softmax()(L.Dense(12)(x)), name="ds_cnn_kws")


def resnet8_ic() -> Any:
    keras = _k()
    L = keras.layers

    def block(x: Any, filters: int, stride: int) -> Any:
        y = L.Conv2D(filters, 3, strides=stride, padding="same")(x)
        y = L.ReLU()(L.BatchNormalization()(y))
        y = L.BatchNormalization()(L.Conv2D(filters, 3, padding="same")(y))
        if stride != 1:
            x = L.Conv2D(filters, 1, strides=stride)(x)
        return L.ReLU()(L.Add()([x, y]))

    inp = keras.Input((32, 32, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 3, padding="same")(inp)))
    x = block(x, 16, 1)
    x = block(x, 32, 2)
    x = block(x, 64, 2)
    x = L.Flatten()(L.AveragePooling2D(8)(x))
    return keras.Model(inp, L.Softmax()(L.Dense(10)(x)), name="resnet8_ic")


def mobilenet_v1_025_vww() -> Any:
    keras = _k()
    L = keras.layers
    alpha = 0.25
    inp = keras.Input((96, 96, 3))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(int(32 * alpha), 3, strides=2, padding="same", use_bias=False)(inp)))
    for filters, stride in [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 + [(1024, 2), (1024, 1)]:
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False)(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(int(filters * alpha), 1, use_bias=False)(x)))
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Softmax()(L.Dense(2)(x)), name="mobilenet_v1_025_vww")


def anomaly_autoencoder() -> Any:
    keras = _k()
    L = keras.layers
    inp = keras.Input((640,))
    x = inp
    for units in [128, 128, 128, 128, 8, 128, 128, 128, 128]:
        x = L.ReLU()(L.BatchNormalization()(L.Dense(units)(x)))
    return keras.Model(inp, L.Dense(640)(x), name="ad_autoencoder")


def conv1d_audio() -> Any:
    """1-D convolutions over a 1 s, 16 kHz-class feature sequence (Conv1D lowers to CONV_2D)."""
    keras = _k()
    L = keras.layers
    inp = keras.Input((128, 8))
    x = L.Conv1D(16, 5, padding="same", activation="relu")(inp)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(32, 5, padding="same", activation="relu")(x)
    x = L.MaxPooling1D(2)(x)
    x = L.Conv1D(32, 3, padding="same", activation="relu")(x)
    x = L.GlobalAveragePooling1D()(x)
    return keras.Model(inp, L.Softmax()(L.Dense(8)(x)), name="conv1d_audio")


def dense_mlp() -> Any:
    """A wide fully connected classifier: FULLY_CONNECTED dominates (weights read once per inference)."""
    keras = _k()
    L = keras.layers
    inp = keras.Input((256,))
    x = L.Dense(512, activation="relu")(inp)
    x = L.Dense(512, activation="relu")(x)
    x = L.Dense(256, activation="relu")(x)
    return keras.Model(inp, L.Softmax()(L.Dense(10)(x)), name="dense_mlp")


def tiny_ds_cnn() -> Any:
    """A DS-CNN small enough for the ATmega2560 (8 KB SRAM): CONV_2D, DEPTHWISE_CONV_2D and
    FULLY_CONNECTED all measured in simavr."""
    keras = _k()
    L = keras.layers
    inp = keras.Input((24, 10, 1))
    x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, (5, 3), strides=(2, 1), padding="same", use_bias=False)(inp)))
    for _ in range(2):
        x = L.ReLU()(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
        x = L.ReLU()(L.BatchNormalization()(L.Conv2D(16, 1, use_bias=False)(x)))
    x = L.Flatten()(L.AveragePooling2D((4, 2))(x))
    return keras.Model(inp, L.Softmax()(L.Dense(6)(x)), name="tiny_ds_cnn")


MLPERF: dict[str, Callable[[], Any]] = {
    "ds_cnn_kws": ds_cnn_kws,
    "resnet8_ic": resnet8_ic,
    "mobilenet_v1_025_vww": mobilenet_v1_025_vww,
    "ad_autoencoder": anomaly_autoencoder,
}
# Models of the speed table (benchmarks/speed.py) beyond MLPERF: the issue #12 set plus one
# depthwise model that fits the ATmega2560.
SPEED_EXTRA: dict[str, Callable[[], Any]] = {
    "conv1d_audio": conv1d_audio,
    "dense_mlp": dense_mlp,
    "tiny_ds_cnn": tiny_ds_cnn,
}


def train_briefly(model: Any, seed: int = 0, samples: int = 256) -> np.ndarray:
    """One epoch on seeded synthetic data; returns the calibration samples."""
    keras = _k()
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    shape = tuple(model.inputs[0].shape[1:])
    x = rng.normal(size=(samples, *shape)).astype(np.float32)
    out_shape = tuple(model.outputs[0].shape[1:])
    if model.name == "ad_autoencoder":
        model.compile("adam", "mse")
        model.fit(x, x, epochs=1, batch_size=32, verbose=0)
    else:
        y = rng.integers(0, out_shape[-1], samples)
        model.compile("adam", "sparse_categorical_crossentropy")
        model.fit(x, y, epochs=1, batch_size=32, verbose=0)
    return x
