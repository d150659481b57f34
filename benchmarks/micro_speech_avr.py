"""micro_speech's architecture on the ATmega2560: cycles per inference and per MAC in simavr.

The model has the shapes of TensorFlow Lite Micro's micro_speech example (49x40x1 spectrogram,
DEPTHWISE_CONV_2D 10x8 filter, stride 2, multiplier 8, SAME; Dense to 4; softmax), with random
weights (the .tflite file itself is not in this repository). It is deployed with the default
--runtime c for mega2560, whose self-test must pass in simavr; the cycle count is the
emulator's.

Run: python benchmarks/micro_speech_avr.py   (about a minute)
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import keras

    from mcuq.common.console import SILENT
    from mcuq.deploy import DeployRequest, deploy
    from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process
    from mcuq.model.info import parse_model

    L = keras.layers
    keras.utils.set_random_seed(1)
    inp = keras.Input((49, 40, 1))
    x = L.DepthwiseConv2D((10, 8), strides=2, depth_multiplier=8, padding="same", activation="relu")(inp)
    model = keras.Model(inp, L.Softmax()(L.Dense(4)(L.Flatten()(x))))
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        model.save(folder / "m.keras")
        np.save(folder / "cal.npy", np.random.default_rng(0).normal(size=(64, 49, 40, 1)).astype(np.float32))
        out = convert_in_this_process(folder / "m.keras", str(folder / "cal.npy"), QuantizeOptions(calibration_samples=64), SILENT)
        (folder / "ms.tflite").write_bytes(out["tflite"])
        macs = sum(op.macs for op in parse_model(out["tflite"]).ops)
        result = deploy(DeployRequest(model=str(folder / "ms.tflite"), board="mega2560", out=str(folder / "p")))
    emulation = result.manifest["c_runtime"]["emulation"]
    print("| model | MACs | ATmega2560 cycles per inference (simavr) | cycles per MAC | self-test | generated ops |")
    print("|---|---|---|---|---|---|")
    generated = result.manifest["c_runtime"].get("generated_ops")
    verdict = "PASS" if emulation["passed"] else "FAIL"
    print(f"| micro_speech shapes | {macs:,} | {emulation['ticks']:,} | {emulation['ticks'] / macs:.1f} | {verdict} | {generated} |")


if __name__ == "__main__":
    main()
