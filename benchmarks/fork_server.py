"""x86 TFLite Micro calls with a one-shot child per call vs the fork server (mcuq.common.forkserver).

    python benchmarks/fork_server.py              # 30 run_tflm calls per mode, one digits deploy per mode
    python benchmarks/fork_server.py --calls 100

First table: ``run_tflm`` on the int8 digits model (one sample per call, as golden vectors are
computed) with ``MCUQ_FORK_SERVER=0`` (each call starts ``python -m`` and imports numpy and
tflite_micro) and with the server (the first call, which starts it, is shown apart); whether every
call gave the same output bytes. Second table: one ``deploy`` of examples/digits to esp32 with
val.npz, each in a fresh Python process, both ways: the process's wall time, deploy()'s own time,
and how many TFLite Micro calls it made and their total time. One run; nothing here is a test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcuq.common import forkserver  # noqa: E402
from mcuq.reference.host_tflm import run_tflm  # noqa: E402

DIGITS = ROOT / "examples" / "digits"
TFLM = "mcuq.reference.tflm_worker"

DEPLOY = """
import json, sys, time
from mcuq.reference import host_tflm
calls = []
plain = host_tflm.run_isolated
def counted(*args, **kwargs):
    start = time.perf_counter()
    try:
        return plain(*args, **kwargs)
    finally:
        calls.append(time.perf_counter() - start)
host_tflm.run_isolated = counted
from mcuq.deploy import DeployRequest, deploy
start = time.perf_counter()
result = deploy(DeployRequest(model=sys.argv[1], calibration=sys.argv[2], data=sys.argv[3], board="esp32", out=sys.argv[4]))
print(json.dumps({"ok": result.ok, "deploy": time.perf_counter() - start, "calls": len(calls), "tflm": sum(calls)}))
"""


def timed_calls(model: bytes, sample: list[np.ndarray], count: int) -> tuple[list[float], set[bytes]]:
    """Seconds of each of ``count`` run_tflm calls, and the distinct output bytes they gave."""
    times, outputs = [], set()
    for _ in range(count):
        start = time.perf_counter()
        run = run_tflm(model, [sample], 64 * 1024, 1)
        times.append(time.perf_counter() - start)
        outputs.add(run.outputs[0][0].tobytes())
    return times, outputs


def call_rows(count: int) -> list[str]:
    from mcuq.frontend.converter import quantize

    model = quantize(DIGITS / "model.keras", str(DIGITS / "calibration.npy")).tflite
    sample = [np.random.default_rng(0).integers(-128, 128, (1, 8, 8, 1), dtype=np.int8)]
    os.environ[forkserver.SWITCH_ENV] = "0"
    one_shot, out_a = timed_calls(model, sample, count)
    del os.environ[forkserver.SWITCH_ENV]
    forkserver.stop_all()
    first, out_b = timed_calls(model, sample, 1)
    assert forkserver.server_pid(TFLM) is not None, "the fork server did not start"
    served, out_c = timed_calls(model, sample, count)
    same = "yes" if len(out_a | out_b | out_c) == 1 else "NO"
    return [
        f"| one-shot child (`MCUQ_FORK_SERVER=0`) | {count} | {sum(one_shot):.2f} | {sum(one_shot) / count:.3f} | {count / sum(one_shot):.1f} | {same} |",
        f"| fork server: first call (starts it) | 1 | {first[0]:.2f} | {first[0]:.3f} | - | {same} |",
        f"| fork server: later calls | {count} | {sum(served):.2f} | {sum(served) / count:.3f} | {count / sum(served):.1f} | {same} |",
    ]


def deploy_row(label: str, switch: str, work: Path) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT), forkserver.SWITCH_ENV: switch}
    out = work / f"digits-{switch}"
    args = [str(DIGITS / "model.keras"), str(DIGITS / "calibration.npy"), str(DIGITS / "val.npz"), str(out)]
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", DEPLOY, *args], env=env, capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    got = json.loads(done.stdout.strip().splitlines()[-1])
    per_call = got["tflm"] / got["calls"] if got["calls"] else 0.0
    return f"| {label} | {wall:.1f} | {got['deploy']:.1f} | {got['calls']} | {got['tflm']:.2f} | {per_call:.3f} | {'yes' if got['ok'] else 'NO'} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    args = parser.parse_args()
    print("| mode | calls | seconds | seconds per call | calls per second | same outputs |\n|---|---|---|---|---|---|")
    for row in call_rows(args.calls):
        print(row, flush=True)
    print(
        "\n| deploy examples/digits --board esp32 --data val.npz | process wall (s) | deploy() (s) | TFLM calls "
        "| TFLM calls (s) | s per TFLM call | ok |\n|---|---|---|---|---|---|---|"
    )
    with tempfile.TemporaryDirectory(prefix="mcuq-forkbench-") as tmp:
        print(deploy_row("one-shot child (`MCUQ_FORK_SERVER=0`)", "0", Path(tmp)), flush=True)
        print(deploy_row("fork server", "1", Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
