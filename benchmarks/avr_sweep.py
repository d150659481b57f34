"""Random layer geometries through the generated AVR code, checked in simavr.

    python benchmarks/avr_sweep.py              # seeds 0..39
    python benchmarks/avr_sweep.py --seeds 100:140

Each seed builds a small random Keras model (CONV_2D with kernels 1..5 and strides 1..2,
SAME or VALID, DEPTHWISE_CONV_2D, 1x1 convs, Dense on the last axis (batches > 1) and a final
Dense), converts it to full int8, deploys it to the ATmega2560 with 6 golden vectors and
requires the firmware's self-test in simavr to be bit-exact with x86 TFLite Micro. Prints one
line a seed (which ops were generated) and a summary. Nothing here is timed.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def random_layers(r: random.Random) -> tuple[list[Any], tuple[int, int, int]]:
    import keras

    L = keras.layers
    shape = (r.choice([6, 7, 8, 9, 10]), r.choice([5, 6, 8, 9]), r.choice([1, 2, 3, 5, 8, 16, 21]))
    layers: list[Any] = []
    for _ in range(r.randint(1, 3)):
        kind = r.choice(["conv", "depthwise", "conv1x1"])
        kernel, strides = (r.choice([1, 2, 3, 5]), r.choice([1, 2, 3, 5])), (r.choice([1, 2]), r.choice([1, 2]))
        padding, activation = r.choice(["same", "valid"]), r.choice([None, "relu", "relu6"])
        if kind == "conv":
            layers.append(L.Conv2D(r.choice([1, 3, 4, 7, 12, 24, 40]), kernel, strides=strides, padding=padding, activation=activation))
        elif kind == "conv1x1":
            layers.append(L.Conv2D(r.choice([2, 5, 9]), 1, activation=activation))
        else:
            layers.append(L.DepthwiseConv2D(kernel, strides=strides, padding=padding, activation=activation))
    if r.random() < 0.5:
        layers.append(L.Dense(r.choice([3, 6]), activation=r.choice([None, "relu"])))  # batches > 1
    layers += [L.Flatten(), L.Dense(r.choice([1, 4, 10]))]
    return layers, shape


def convert(folder: Path, layers: list[Any], shape: tuple[int, int, int], seed: int) -> Path:
    import keras
    import numpy as np

    from mcuq.common.console import SILENT
    from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process

    keras.utils.set_random_seed(seed)
    inp = keras.Input(shape)
    x = inp
    for layer in layers:
        x = layer(x)
    keras.Model(inp, x).save(folder / "m.keras")
    np.save(folder / "cal.npy", np.random.default_rng(seed).normal(size=(64, *shape)).astype(np.float32))
    out = convert_in_this_process(folder / "m.keras", str(folder / "cal.npy"), QuantizeOptions(calibration_samples=64), SILENT)
    keras.backend.clear_session()
    (folder / "m.tflite").write_bytes(out["tflite"])
    return folder / "m.tflite"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0:40", help="first:last (last excluded)")
    args = parser.parse_args()
    first, last = (int(v) for v in args.seeds.split(":"))
    from mcuq.common.errors import MCUQError
    from mcuq.deploy import DeployRequest, deploy

    counts = {"pass": 0, "fail": 0, "not built": 0, "refused": 0}
    for seed in range(first, last):
        r = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix="mcuq-sweep-") as tmp:
            folder = Path(tmp)
            try:
                model = convert(folder, *random_layers(r), seed)
            except ValueError as exc:  # Keras: a window larger than its input
                counts["not built"] += 1
                print(f"seed {seed}: model not built: {str(exc).splitlines()[0][:100]}", flush=True)
                continue
            try:
                result = deploy(DeployRequest(model=str(model), board="mega2560", out=str(folder / "out"), golden=6))
            except MCUQError as exc:
                counts["refused"] += 1
                print(f"seed {seed}: refused: {str(exc)[:120]}", flush=True)
                continue
            generated = sorted(result.plan.context["program"].avr_kernels)
            verdict = "pass" if result.emulator_passed else "fail"
            counts[verdict] += 1
            print(f"seed {seed}: {verdict.upper()}, generated ops {generated}", flush=True)
    print("; ".join(f"{k}: {v}" for k, v in counts.items()))
    return 1 if counts["fail"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
