"""Shared fixtures: models are converted once per session (conversion costs seconds)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "examples" / "digits"
SINE = ROOT / "examples" / "sine"


@pytest.fixture(scope="session")
def digits_int8():
    from mcuq.frontend.converter import quantize

    return quantize(DIGITS / "model.keras", str(DIGITS / "calibration.npy"))


@pytest.fixture(scope="session")
def sine_int8():
    from mcuq.frontend.converter import quantize

    return quantize(SINE / "model.keras", str(SINE / "calibration.npy"))


@pytest.fixture(scope="session")
def digits_per_tensor():
    """Per-tensor quantization: what the Arduino boards' 2023 library computes correctly."""
    from mcuq.frontend.converter import QuantizeOptions, quantize

    return quantize(DIGITS / "model.keras", str(DIGITS / "calibration.npy"), options=QuantizeOptions(per_channel=False))


@pytest.fixture(scope="session")
def sine_per_tensor():
    from mcuq.frontend.converter import QuantizeOptions, quantize

    return quantize(SINE / "model.keras", str(SINE / "calibration.npy"), options=QuantizeOptions(per_channel=False))


@pytest.fixture(scope="session")
def digits_tflite(tmp_path_factory, digits_int8) -> Path:
    path = tmp_path_factory.mktemp("models") / "digits_int8.tflite"
    path.write_bytes(digits_int8.tflite)
    return path


@pytest.fixture(scope="session")
def sine_tflite(tmp_path_factory, sine_int8) -> Path:
    path = tmp_path_factory.mktemp("sine") / "sine_int8.tflite"
    path.write_bytes(sine_int8.tflite)
    return path


@pytest.fixture(scope="session")
def float_tflite(tmp_path_factory) -> Path:
    """A plain float .tflite of the digits model (what users often have lying around)."""
    from mcuq.frontend.tf import import_tensorflow

    tf = import_tensorflow()
    import keras

    model = keras.saving.load_model(DIGITS / "model.keras", compile=False)
    out = tmp_path_factory.mktemp("float") / "digits_float.tflite"
    out.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return out


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is required in CI (.ci/run installs it)")
        pytest.skip(f"{tool} not installed")


@pytest.fixture
def rng():
    return np.random.default_rng(0)
