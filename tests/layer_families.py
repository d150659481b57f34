"""One tiny Keras 3 model per layer family, converted once, deployed to several boards.

Shared by tests/test_layer_families.py (esp32 and nano33ble, PASS bit-exact required) and
benchmarks/layer_families.py (the table, with the plain-C column). Random weights (seeded) and
random-normal calibration data: the point is which layers deploy, not accuracy.

All models are converted in ONE child process (``python tests/layer_families.py convert DIR``:
TensorFlow is imported once, and a converter crash cannot take the caller down); each model
goes through mcuq's own conversion path (``convert_in_this_process``, rewrites included) and
lands in DIR as ``<family>.tflite`` plus ``<family>.json`` (the rewrites, or the refusal).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

CALIBRATION_SAMPLES = 32


def _k() -> Any:
    import keras

    return keras


def _seq(shape: tuple[int, ...], *layers: Any) -> Any:
    keras = _k()
    inp = keras.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    return keras.Model(inp, x)


def _two_branch(merge: str) -> Callable[[], Any]:
    def build() -> Any:
        keras = _k()
        L = keras.layers
        inp = keras.Input((8,))
        a, b = L.Dense(6, name="left")(inp), L.Dense(6, name="right")(inp)
        return keras.Model(inp, getattr(L, merge)()([a, b]))

    return build


def _activation(name: str) -> Callable[[], Any]:
    def build() -> Any:
        L = _k().layers
        return _seq((8,), L.Dense(8), L.Activation(name))

    return build


def _transformer() -> Any:
    keras = _k()
    L = keras.layers
    inp = keras.Input((4, 8))
    attention = L.MultiHeadAttention(num_heads=2, key_dim=4, name="attention")(inp, inp)
    x = L.LayerNormalization(name="norm1")(L.Add()([inp, attention]))
    h = L.Dense(16, activation="gelu", name="mlp_in")(x)
    h = L.Dense(8, name="mlp_out")(h)
    return keras.Model(inp, L.LayerNormalization(name="norm2")(L.Add()([x, h])))


def _attention() -> Any:
    keras = _k()
    inp = keras.Input((4, 8))
    return keras.Model(inp, keras.layers.MultiHeadAttention(num_heads=2, key_dim=4)(inp, inp))


def _families() -> dict[str, tuple[tuple[int, ...], Callable[[], Any]]]:
    """family -> (input shape without batch, builder). Tiny on purpose: the table is expensive."""

    def L() -> Any:
        return _k().layers

    img = (6, 6, 2)
    return {
        "Dense": ((8,), lambda: _seq((8,), L().Dense(8, activation="relu"), L().Dense(4))),
        "Conv1D": ((8, 2), lambda: _seq((8, 2), L().Conv1D(4, 3, activation="relu"))),
        "Conv2D": (img, lambda: _seq(img, L().Conv2D(4, 3, padding="same", activation="relu"))),
        "DepthwiseConv2D": (img, lambda: _seq(img, L().DepthwiseConv2D(3, padding="same"))),
        "SeparableConv2D": (img, lambda: _seq(img, L().SeparableConv2D(4, 3))),
        "SeparableConv1D": ((8, 2), lambda: _seq((8, 2), L().SeparableConv1D(4, 3))),
        "Conv2DTranspose": (img, lambda: _seq(img, L().Conv2DTranspose(2, 3, strides=2, padding="same"))),
        "MaxPooling2D": (img, lambda: _seq(img, L().MaxPooling2D())),
        "AveragePooling2D": (img, lambda: _seq(img, L().AveragePooling2D(2))),
        "MaxPooling1D": ((8, 2), lambda: _seq((8, 2), L().MaxPooling1D())),
        "AveragePooling1D": ((8, 2), lambda: _seq((8, 2), L().AveragePooling1D(2))),
        "GlobalMaxPooling2D": (img, lambda: _seq(img, L().GlobalMaxPooling2D())),
        "GlobalAveragePooling2D": (img, lambda: _seq(img, L().GlobalAveragePooling2D())),
        "BatchNormalization": (img, lambda: _seq(img, L().Conv2D(4, 3), L().BatchNormalization(), L().ReLU())),
        "Dropout": ((8,), lambda: _seq((8,), L().Dense(8), L().Dropout(0.3), L().Dense(4))),
        "Flatten": (img, lambda: _seq(img, L().Conv2D(2, 3), L().Flatten(), L().Dense(4))),
        "Reshape": ((8,), lambda: _seq((8,), L().Dense(8), L().Reshape((2, 4)))),
        "Permute": ((4, 3), lambda: _seq((4, 3), L().Permute((2, 1)))),
        "Cropping2D": (img, lambda: _seq(img, L().Cropping2D(1))),
        "ZeroPadding2D": (img, lambda: _seq(img, L().ZeroPadding2D(1))),
        "Concatenate": ((8,), _two_branch("Concatenate")),
        "Add": ((8,), _two_branch("Add")),
        "Subtract": ((8,), _two_branch("Subtract")),
        "Multiply": ((8,), _two_branch("Multiply")),
        "Maximum": ((8,), _two_branch("Maximum")),
        "Minimum": ((8,), _two_branch("Minimum")),
        "Average": ((8,), _two_branch("Average")),
        "relu": ((8,), _activation("relu")),
        "relu6": ((8,), _activation("relu6")),
        "sigmoid": ((8,), _activation("sigmoid")),
        "tanh": ((8,), _activation("tanh")),
        "softmax": ((8,), _activation("softmax")),
        "leaky_relu": ((8,), lambda: _seq((8,), L().Dense(8), L().LeakyReLU(0.2))),
        "hard_swish": ((8,), _activation("hard_swish")),
        "swish": ((8,), _activation("swish")),
        "PReLU": ((8,), lambda: _seq((8,), L().Dense(8), L().PReLU())),
        "elu": ((8,), _activation("elu")),
        "ELU_layer": ((8,), lambda: _seq((8,), L().Dense(8), L().ELU(alpha=0.5))),
        "gelu": ((8,), _activation("gelu")),
        "LayerNormalization": ((4, 8), lambda: _seq((4, 8), L().Dense(8), L().LayerNormalization())),
        "UpSampling2D": (img, lambda: _seq(img, L().UpSampling2D())),
        "UpSampling2D_bilinear": (img, lambda: _seq(img, L().UpSampling2D(interpolation="bilinear"))),
        "UpSampling1D": ((8, 2), lambda: _seq((8, 2), L().UpSampling1D(2))),
        "Resizing": (img, lambda: _seq(img, L().Resizing(4, 4))),
        "MultiHeadAttention": ((4, 8), _attention),
        "transformer_block": ((4, 8), _transformer),
    }


FAMILY_NAMES = list(_families())


def file_stem(family: str) -> str:
    return family.replace(" ", "_")


@dataclass
class Converted:
    """What the one conversion of a family gave: a .tflite, or mcuq's one-line refusal."""

    family: str
    tflite: Path | None
    rewrites: list[str]
    refusal: str | None


def convert_all(out: Path, families: list[str] | None = None, timeout: float = 1800.0) -> dict[str, Converted]:
    """Convert every family in one child process (one TensorFlow import) and read the results."""
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "convert", str(out), *(families or [])]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run(cmd, check=True, env=env, timeout=timeout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results = {}
    for family in families or FAMILY_NAMES:
        record = json.loads((out / f"{file_stem(family)}.json").read_text())
        tflite = out / f"{file_stem(family)}.tflite"
        results[family] = Converted(family, tflite if tflite.exists() else None, record["rewrites"], record["refusal"])
    return results


def _convert_child(out: Path, families: list[str]) -> None:
    from mcuq.common.console import SILENT
    from mcuq.common.errors import MCUQError
    from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process
    from mcuq.frontend.fullint8 import check_full_int8
    from mcuq.frontend.tf import import_tensorflow
    from mcuq.model.info import parse_model

    out.mkdir(parents=True, exist_ok=True)
    import_tensorflow()
    keras = _k()
    table = _families()
    for family in families or list(table):
        shape, build = table[family]
        keras.utils.set_random_seed(0)
        stem = file_stem(family)
        model_path, cal_path = out / f"{stem}.keras", out / f"{stem}.cal.npy"
        np.save(cal_path, np.random.default_rng(0).normal(size=(CALIBRATION_SAMPLES, *shape)).astype(np.float32))
        record: dict[str, Any] = {"rewrites": [], "refusal": None}
        try:
            build().save(model_path)
            answer = convert_in_this_process(model_path, str(cal_path), QuantizeOptions(), SILENT)
            # the check mcuq quantize runs on the child's answer (converter._convert_isolated)
            check_full_int8(parse_model(answer["tflite"], "converted model"), "int8", "int8", source=str(model_path))
            (out / f"{stem}.tflite").write_bytes(answer["tflite"])
            rewrites = answer.get("rewrites") or {}
            record["rewrites"] = [f"{r['layer']}: {r['original']} -> {r['replacement']}" for r in rewrites.get("layers", [])]
        except MCUQError as exc:
            record["refusal"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - a traceback here is an mcuq bug: the table shows it
            record["refusal"] = f"NOT A ONE-LINE REFUSAL: {type(exc).__name__}: {exc}"[:400]
        (out / f"{stem}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "convert":
        _convert_child(Path(sys.argv[2]), sys.argv[3:])
    else:
        sys.exit("usage: python tests/layer_families.py convert OUT_DIR [FAMILY ...]")
