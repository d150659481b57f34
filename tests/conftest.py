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
def digits_per_channel_all():
    """--per-channel all: per-channel Dense too (the default 'auto' keeps Dense per tensor)."""
    from mcuq.frontend.converter import QuantizeOptions, quantize

    return quantize(DIGITS / "model.keras", str(DIGITS / "calibration.npy"), options=QuantizeOptions(per_channel="all"))


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


def run_avr_selftest(selftest_c: str, **extra: str):
    """A hand-written mcuq_selftest() (mcuq_selftest.c) built for the ATmega2560 with the
    runtime header and run in simavr; the harness's other units are empty. `extra`: more files
    by name (dots as underscores: mcuq_kernels_impl_inc=...)."""
    from mcuq.common.resources import templates_dir
    from mcuq.toolchains.emulate import build_and_run_avr

    need("avr-gcc")
    need("simavr")
    runtime = templates_dir() / "c" / "runtime"
    empty = "typedef int mcuq_empty_unit;\n"
    files = {
        "mcuq_kernels.h": (runtime / "mcuq_kernels.h").read_text(),
        "mcuq_kernels_s16.h": (runtime / "mcuq_kernels_s16.h").read_text(),
        "mcuq_selftest.h": "void mcuq_selftest(void);\n",
        "mcuq_selftest.c": selftest_c,
        "mcuq_kernels.c": empty,
        "mcuq_model.c": empty,
        "mcuq_golden.c": empty,
        **{name.replace("_inc", ".inc"): text for name, text in extra.items()},
    }
    return build_and_run_avr(files, "ATmega2560")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def _plain_convert(model, calibration: np.ndarray | None, io: str | None) -> bytes:
    """What users have: tf.lite.TFLiteConverter.from_keras_model on a model whose batch is
    None (shape_signature batch -1). ``io``: None float model, "int8" full int8, "float32"
    int8 inside with float QUANTIZE/DEQUANTIZE edges."""
    from mcuq.frontend.tf import import_tensorflow

    tf = import_tensorflow()
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if io is not None:
        assert calibration is not None
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([calibration[i : i + 1].astype(np.float32)] for i in range(len(calibration)))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    return bytes(converter.convert())


@pytest.fixture(scope="session")
def plain_tflites(tmp_path_factory) -> dict[str, Path]:
    """Standard-converter .tflite files built here: digits (conv + Flatten, so the converter
    adds SHAPE/STRIDED_SLICE/PACK) full int8 and with float I/O; sine (Dense only) full int8."""
    import keras

    out = tmp_path_factory.mktemp("plain")
    digits = keras.saving.load_model(DIGITS / "model.keras", compile=False)
    sine = keras.saving.load_model(SINE / "model.keras", compile=False)
    digits_cal = np.load(DIGITS / "calibration.npy")[:100]
    sine_cal = np.load(SINE / "calibration.npy")[:100]
    files = {
        "digits_int8": _plain_convert(digits, digits_cal, "int8"),
        "digits_float_io": _plain_convert(digits, digits_cal, "float32"),
        "sine_int8": _plain_convert(sine, sine_cal, "int8"),
    }
    paths = {}
    for name, data in files.items():
        paths[name] = out / f"{name}.tflite"
        paths[name].write_bytes(data)
    return paths


@pytest.fixture(scope="session")
def two_io(tmp_path_factory) -> dict[str, Path]:
    """A 2-input / 2-output Keras model (Concatenate; a classifier head and a regression head)
    with calibration and validation .npz keyed by the input names (validation has labels)."""
    import keras

    keras.utils.set_random_seed(3)
    out = tmp_path_factory.mktemp("two_io")
    accel = keras.Input((8,), name="accel")
    gyro = keras.Input((4,), name="gyro")
    x = keras.layers.Concatenate(name="join")([accel, gyro])
    x = keras.layers.Dense(16, activation="relu", name="shared")(x)
    activity = keras.layers.Dense(3, activation="softmax", name="activity")(x)
    energy = keras.layers.Dense(1, name="energy")(x)
    model = keras.Model([accel, gyro], [activity, energy])
    model.save(out / "two_io.keras")
    rng = np.random.default_rng(3)
    a, g = rng.normal(size=(160, 8)).astype(np.float32), rng.normal(size=(160, 4)).astype(np.float32)
    labels = model.predict([a, g], verbose=0)[0].argmax(1)
    np.savez(out / "cal.npz", accel=a[:100], gyro=g[:100])
    np.savez(out / "val.npz", accel=a[100:], gyro=g[100:], labels=labels[100:])
    return {"model": out / "two_io.keras", "cal": out / "cal.npz", "val": out / "val.npz"}


@pytest.fixture(scope="session")
def two_io_int8(two_io):
    from mcuq.frontend.converter import quantize

    return quantize(two_io["model"], str(two_io["cal"]))


# The fast subset (`pytest -m "not slow"`, the edit loop) leaves out every test that converts a
# model, deploys, or runs an emulator or a cross toolchain: those that use a converting fixture
# (here or a test module's own: digits_project, edge_models), and those marked by hand.
CONVERTING_FIXTURES = frozenset(
    {
        "digits_project",
        "edge_models",
        "digits_int8",
        "sine_int8",
        "digits_per_tensor",
        "digits_per_channel_all",
        "sine_per_tensor",
        "digits_tflite",
        "sine_tflite",
        "float_tflite",
        "plain_tflites",
        "two_io",
        "two_io_int8",
    }
)


# Whole modules that spawn many mcuq processes, emulators or a wheel build (the fuzz and bad-input
# matrix, the emulated boards behind validate --device, packaging).
SLOW_MODULES = frozenset({"test_robustness", "test_device_link", "test_packaging"})


def pytest_collection_modifyitems(config, items) -> None:
    for item in items:
        module = getattr(item, "module", None)
        if CONVERTING_FIXTURES.intersection(getattr(item, "fixturenames", ())) or getattr(module, "__name__", "") in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
