"""Run a linked firmware natively or in qemu (a child process with a timeout, never trusted
not to crash), read its self-test, and bisect the smallest arena with fresh probe processes.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mcuq.backends.tflm.toolchain.compile import Firmware, build_probe
from mcuq.backends.tflm.toolchain.library_tree import find_library_tree
from mcuq.backends.tflm.toolchain.targets import HOST_RUN_TIMEOUT, PROBE_TIMEOUT, QEMU_RUN_TIMEOUT, BuildError, shipped_cpu
from mcuq.toolchains.qemu import qemu_command


@dataclass(frozen=True)
class RunResult:
    returncode: int
    log: str
    timed_out: bool = False


def run_firmware(fw: Firmware, arg: int | None = None, extra_args: Sequence[str] = (), timeout: float | None = None) -> RunResult:
    """Run natively or in qemu, in a child process with a timeout; never raises on a crash."""
    args = [str(arg)] if arg is not None else []
    if fw.cpu.is_host:
        cmd = [str(fw.path), *args, *extra_args]
        limit = timeout or HOST_RUN_TIMEOUT
    else:
        cmd = qemu_command(str(fw.cpu.machine), fw.path, args)
        limit = timeout or QEMU_RUN_TIMEOUT
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False, errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return RunResult(-1, out + f"\nmcuq: timed out after {limit} s", True)
    return RunResult(proc.returncode, proc.stdout + proc.stderr)


@dataclass(frozen=True)
class SelfTest:
    """What the firmware's boot self-test printed."""

    passed: bool
    vectors: tuple[tuple[int, bool, str], ...]  # (index, pass, detail)
    log: str
    arena_used: int | None
    problem: str  # first failing line, or ""

    @classmethod
    def parse(cls, run: RunResult) -> SelfTest:
        log = run.log
        vectors = tuple(
            (int(m.group(1)), m.group(2) == "PASS", m.group(3).strip()) for m in re.finditer(r"mcuq: golden (\d+) (PASS|FAIL)(.*)", log)
        )
        used = re.search(r"mcuq: arena_used_bytes=(\d+)", log)
        passed = run.returncode == 0 and "mcuq: selftest PASS" in log and bool(vectors) and all(v[1] for v in vectors)
        problem = ""
        if not passed:
            fail = next((f"golden vector {i} FAIL{d and ' ' + d}" for i, ok, d in vectors if not ok), None)
            other = next((ln.strip() for ln in log.splitlines() if "FAIL" in ln or "FAULT" in ln or "failed" in ln), None)
            if run.timed_out:
                problem = "the self-test did not finish (timeout)"
            elif fail:
                problem = fail
            elif other:
                problem = other
            elif run.returncode != 0:
                problem = (
                    f"the firmware exited with code {run.returncode} ({'signal ' + str(-run.returncode) if run.returncode < 0 else 'exit'})"
                )
            else:
                problem = "no 'selftest PASS' line in the output"
        return cls(passed, vectors, log, int(used.group(1)) if used else None, problem)


def run_selftest(fw: Firmware) -> SelfTest:
    return SelfTest.parse(run_firmware(fw))


@dataclass(frozen=True)
class Probe:
    ok: bool
    crc: str | None
    used: int | None
    nanos: int | None
    log: str


def probe(fw: Firmware, arena: int) -> Probe:
    run = run_firmware(fw, arena, timeout=PROBE_TIMEOUT)
    m = re.search(rf"mcuq: probe {arena} OK used=(\d+) crc=([0-9a-f]+)", run.log)
    t = re.search(r"mcuq: probe_nanos=(\d+)", run.log)
    ok = run.returncode == 0 and m is not None
    return Probe(ok, m.group(2) if m else None, int(m.group(1)) if m else None, int(t.group(1)) if t else None, run.log)


def min_arena(fw: Firmware, high: int, low: int = 0) -> tuple[int, Probe]:
    """Exact smallest N (bytes) that allocates and invokes with the outputs of a large arena.

    Each probe is a fresh process (fresh qemu): below the minimum, TFLite Micro may write
    through a null pointer, which must not leak into the next probe. The search first
    brackets the minimum near the ``arena_used_bytes()`` of the large run (the minimum can
    be a few bytes below it, never far), so it needs about a dozen probes instead of twenty.
    """
    reference = probe(fw, high)
    if not reference.ok:
        raise BuildError(f"the arena probe fails even with {high} bytes: {_last_line(reference.log)}")
    lo, hi = low, high  # lo fails (or 0), hi works
    used = reference.used or 0
    start = used * 15 // 16
    if start > lo and not probe(fw, start).ok:
        lo = start
        step = max(64, used // 8)
        while lo + step < hi:
            trial = probe(fw, lo + step)
            if trial.ok and trial.crc == reference.crc:
                hi = lo + step
                break
            lo, step = lo + step, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        result = probe(fw, mid)
        if result.ok and result.crc == reference.crc:
            hi = mid
        else:
            lo = mid
    return hi, reference


def _last_line(log: str) -> str:
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no output)"


def host_outputs(fw: Firmware, arena: int, inputs: bytes, n_vectors: int, resets: Sequence[bool] | None = None) -> bytes:
    """Outputs of the host probe for concatenated input vectors (golden vectors from the library).
    ``resets``: before which vectors the probe calls MicroInterpreter::Reset() (mcuq.model.state);
    default every one."""
    flags = "".join("1" if r else "0" for r in (resets if resets is not None else [True] * n_vectors))
    with tempfile.TemporaryDirectory(prefix="mcuq-io-") as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        src.write_bytes(inputs)
        run = run_firmware(fw, arena, [str(src), str(dst), flags])
        if run.returncode != 0 or not dst.exists():
            raise BuildError(f"the host build of the library could not run the golden vectors: {_last_line(run.log)}")
        return dst.read_bytes()


# --------------------------------------------------------------------------- for benchmarks (issue #12)


def default_source_root() -> Path | None:
    """``../shared/tflm-libs`` beside a source checkout, if present (tests and benchmarks)."""
    here = Path(__file__).resolve().parents[2]
    for candidate in (here.parent / "shared" / "tflm-libs", here / ".." / "shared" / "tflm-libs"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def instructions_per_inference(
    model: bytes,
    ops: Sequence[str],
    kernels: str = "cmsis-nn",
    cpu: str = "cortex-m4",
    source_root: Path | None = None,
    arena: int = 512 * 1024,
) -> int:
    """Instructions qemu (``-icount shift=0``) executes for one ``Invoke()`` of ``model``.

    ``kernels="cmsis-nn"``: Chirale_TensorFLowLite 2.0.0 (TFLite Micro 2023 + CMSIS-NN);
    ``kernels="reference"``: esp-tflite-micro 1.4.0 built without ESP-NN, i.e. upstream TFLite
    Micro (2026) reference kernels. Resolution: 40 instructions (one SysTick tick at 25 MHz).
    """
    root = source_root or default_source_root()
    if root is None:
        raise BuildError("TFLite Micro library sources not found (../shared/tflm-libs); pass source_root")
    if kernels == "cmsis-nn":
        tree = find_library_tree("chirale-tensorflowlite", source=root)
    elif kernels == "reference":
        tree = find_library_tree("esp-tflite-micro", source=root, kernels="reference")
    else:
        raise BuildError(f"kernels must be 'cmsis-nn' or 'reference', got {kernels!r}")
    fw = build_probe(model, ops, tree, shipped_cpu(cpu), arena)
    try:
        result = probe(fw, arena)
    finally:
        fw.close()
    if not result.ok or result.nanos is None:
        raise BuildError(f"{cpu} probe failed: {_last_line(result.log)}")
    return result.nanos  # in qemu one virtual nanosecond is one instruction
