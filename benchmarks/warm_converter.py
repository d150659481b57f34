"""Conversion time with a one-shot child per conversion (cold) vs the warm worker (mcuq.common.warm).

    python benchmarks/warm_converter.py                 # 2 conversions of each example per mode
    python benchmarks/warm_converter.py --repeats 3
    python benchmarks/warm_converter.py --rss 24        # also: worker RSS over 24 alternating conversions

Per bundled example model: seconds of ``quantize`` (the Python API, one call = one conversion)
with ``MCUQ_WARM_WORKER=0`` (each pays the child's start and TensorFlow's import), the first
conversion on a fresh worker (pays them once), and conversions on the live worker; the ratio
cold / warm; whether every conversion gave the same .tflite bytes. ``--rss``: the worker's
resident memory after each conversion, to choose ``MAX_REQUESTS`` and ``MAX_RSS_BYTES``.
Nothing here is a test; no timing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcuq.common import warm  # noqa: E402
from mcuq.frontend.converter import QuantizedModel, quantize  # noqa: E402

CONVERTER = "mcuq.frontend.converter"
MODELS = ["sine", "digits"]


def convert(name: str) -> tuple[QuantizedModel, float]:
    folder = ROOT / "examples" / name
    start = time.perf_counter()
    result = quantize(folder / "model.keras", str(folder / "calibration.npy"))
    return result, time.perf_counter() - start


def measure(repeats: int) -> list[tuple[str, list[float], float, list[float], bool]]:
    """Per model: cold times, the fresh worker's time, live-worker times, same bytes throughout."""
    cold: dict[str, list[tuple[QuantizedModel, float]]] = {}
    os.environ[warm.WARM_ENV] = "0"
    for name in MODELS:
        cold[name] = [convert(name) for _ in range(repeats)]
    del os.environ[warm.WARM_ENV]
    warm.retire_all()
    fresh = {name: convert(name) for name in MODELS}  # the first one starts the worker
    live = {name: [convert(name) for _ in range(repeats)] for name in MODELS}
    rows = []
    for name in MODELS:
        outputs = {q.tflite for q, _ in [*cold[name], fresh[name], *live[name]]}
        rows.append((name, [t for _, t in cold[name]], fresh[name][1], [t for _, t in live[name]], len(outputs) == 1))
    return rows


def rss_track(count: int) -> None:
    """The worker's RSS after each of ``count`` conversions alternating the examples, never retired."""
    warm.MAX_REQUESTS, warm.MAX_RSS_BYTES = 10**9, 10**15
    warm.retire_all()
    print("\n| conversion | model | seconds | worker RSS (MiB) |\n|---|---|---|---|")
    for i in range(count):
        name = MODELS[i % len(MODELS)]
        _, seconds = convert(name)
        pid = warm.worker_pid(CONVERTER)
        rss = warm._rss_bytes(pid) / 2**20 if pid else 0.0
        print(f"| {i + 1} | {name} | {seconds:.1f} | {rss:.0f} |", flush=True)
    warm.retire_all()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--rss", type=int, default=0, metavar="N")
    args = parser.parse_args()
    rows = measure(args.repeats)
    print(f"| model | cold (s, each) | warm: fresh worker (s) | warm: live worker (s, each) | cold / live | same bytes |\n|{'---|' * 6}")
    for name, cold, fresh, live, same in rows:
        ratio = statistics.mean(cold) / statistics.mean(live)
        print(
            f"| {name} | {', '.join(f'{t:.1f}' for t in cold)} | {fresh:.1f} | {', '.join(f'{t:.1f}' for t in live)} "
            f"| {ratio:.1f}x | {'yes' if same else 'NO'} |"
        )
    if args.rss:
        rss_track(args.rss)


if __name__ == "__main__":
    main()
