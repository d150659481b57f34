"""``mcuq validate --device``: what the board computes, next to what x86 TFLite Micro computed.

The board is identified first (model CRC32 and size, runtime): another firmware is refused in one
line that says how to flash this one. Then every golden vector and up to ``samples`` validation
samples are sent as the very int8 bytes x86 TFLite Micro ran, and the board's raw output bytes
are compared with its outputs: bit-exact count, largest difference in LSB, top-1 agreement; with
the float model, the float-vs-device error metrics. Latency (median, p95, cycles per MAC), the
arena in use and the stack peak come from the board. Every fault of the link is one failed check
with one line, never a traceback or a hang.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mcuq.checks.golden import ProjectGolden
from mcuq.checks.metrics import error_metrics
from mcuq.checks.outcome import ValidationReport
from mcuq.common.console import Console
from mcuq.device.link import DeviceError
from mcuq.device.session import FIRST_RUN_TIMEOUT, Identity, Inference, Session
from mcuq.model.info import ModelInfo
from mcuq.model.state import has_state
from mcuq.project.manifest import Manifest

if TYPE_CHECKING:
    from mcuq.checks.accuracy import Evaluation

DEFAULT_SAMPLES = 50
DEVICE = "on the device"
Samples = list[list[np.ndarray]]


@dataclass
class DeviceRequest:
    port: str
    baud: int = 115200
    samples: int = DEFAULT_SAMPLES
    reset: bool = True  # pulse DTR (Arduino auto-reset) when opening the port
    boot_wait: float = 2.5


@dataclass
class DeviceRun:
    """The board's answers for one set of inputs, against the reference outputs."""

    outputs: list[list[np.ndarray]] = field(default_factory=list)
    inferences: list[Inference] = field(default_factory=list)


def _to_bytes(sample: list[np.ndarray]) -> bytes:
    return b"".join(np.ascontiguousarray(x).tobytes() for x in sample)


def _split(raw: bytes, info: ModelInfo) -> list[np.ndarray]:
    out, pos = [], 0
    for t in info.output_tensors:
        dtype = np.dtype(t.dtype)
        n = int(np.prod(t.shape)) * dtype.itemsize
        out.append(np.frombuffer(raw[pos : pos + n], dtype=dtype).reshape(t.shape).copy())
        pos += n
    return out


def identity_problem(identity: Identity, manifest: Manifest, project: Path, port: str) -> str | None:
    """None when the board runs this project's model on its runtime, else the one line to print."""
    want_crc = int(str(manifest.model.crc32), 16) if isinstance(manifest.model.crc32, str) else int(manifest.model.crc32)
    if identity.crc32 == want_crc and identity.model_bytes == manifest.model.bytes and identity.runtime == manifest.runtime:
        return None
    return (
        f"{port} runs another firmware: model crc32 {identity.crc32:08x} ({identity.model_bytes:,} B) on {identity.runtime} "
        f"({identity.library}), but {project.name} is crc32 {want_crc:08x} ({manifest.model.bytes:,} B) on {manifest.runtime}; "
        f"flash this project first: cd {project} && pio run -t upload"
    )


def _run_all(
    session: Session, inputs: Samples, info: ModelInfo, resets: list[bool] | None = None, progress: Callable[[int], None] | None = None
) -> DeviceRun:
    """``resets``: before which samples the board's state is reset (the link's Z command), as
    x86 TFLite Micro's reference was computed; None for a model without state."""
    boundaries = list(np.cumsum([t.nbytes for t in info.input_tensors]))
    run = DeviceRun()
    timeout = FIRST_RUN_TIMEOUT
    for k, sample in enumerate(inputs):
        if resets is not None and resets[k]:
            session.reset()
        payload = _to_bytes(sample)
        inference = session.infer(payload, [int(b) for b in boundaries], timeout)
        run.inferences.append(inference)
        run.outputs.append(_split(inference.output, info))
        if session.identity and session.identity.tick_hz:  # later runs: bounded by 20x the first one's time
            seconds = inference.ticks / session.identity.tick_hz
            timeout = min(FIRST_RUN_TIMEOUT, max(10.0, 20 * seconds + 5.0))
        if progress:
            progress(k)
    return run


def compare(device: Samples, reference: Samples) -> dict[str, Any]:
    """Bit-exact count, largest difference in LSB, top-1 agreement (per sample, all outputs)."""
    exact = sum(all(np.array_equal(a, b) for a, b in zip(d, r)) for d, r in zip(device, reference))
    diff = max(
        (
            int(np.max(np.abs(a.astype(np.int64) - b.astype(np.int64)))) if a.size else 0
            for d, r in zip(device, reference)
            for a, b in zip(d, r)
        ),
        default=0,
    )
    top1 = [
        float(np.mean([int(np.argmax(d[k])) == int(np.argmax(r[k])) for d, r in zip(device, reference)]))
        for k in range(len(reference[0]) if reference else 0)
    ]
    return {"count": len(reference), "bit_exact": int(exact), "max_lsb_diff": diff, "top1_agreement": top1}


def latency(inferences: list[Inference], identity: Identity, macs: int) -> dict[str, Any]:
    """Empty when it was not measured: no runs, no counter rate, or a counter that never advanced
    (qemu has no DWT cycle counter: a Cortex-M firmware reads 0 there); never a made-up 0 ms."""
    ticks = np.array([i.ticks for i in inferences], dtype=np.float64)
    if not ticks.size or not identity.tick_hz or not ticks.any():
        return {}
    seconds = ticks / identity.tick_hz
    cycles = seconds * identity.cpu_hz
    median = float(np.median(cycles))
    return {
        "runs": int(ticks.size),
        "median_ms": float(np.median(seconds) * 1e3),
        "p95_ms": float(np.percentile(seconds, 95) * 1e3),
        "median_cycles": median,
        "cycles_per_mac": median / macs if macs else None,
        "ticks_median": float(np.median(ticks)),
        "tick_hz": identity.tick_hz,
        "cpu_hz": identity.cpu_hz,
    }


def float_metrics(device: Samples, info: ModelInfo, float_outputs: list[np.ndarray | None]) -> list[dict[str, Any]]:
    """Float model vs the board's dequantized outputs, per output (ST's 'X-cross' row)."""
    rows = []
    for k, t in enumerate(info.output_tensors):
        ref = float_outputs[k] if k < len(float_outputs) else None
        if ref is None:
            continue
        got = np.concatenate([d[k] for d in device]).astype(np.float64)
        if t.quant is not None:
            got = (got - t.quant.zero_point[0]) * t.quant.scale[0]
        n = got.shape[0]
        ref = ref[:n]
        row: dict[str, Any] = {"name": info.output_names[k] if k < len(info.output_names) else t.name, **error_metrics(ref, got)}
        if got.ndim == 2 and got.shape[1] > 1:
            row["top1_agreement_float"] = float(np.mean(got.argmax(1) == ref.argmax(1)))
        rows.append(row)
    return rows


def check_device(
    report: ValidationReport,
    project: Path,
    manifest: Manifest,
    info: ModelInfo,
    request: DeviceRequest,
    golden: tuple[Samples, Samples],
    samples: tuple[Samples, Samples, list[np.ndarray | None]] | None = None,
    emulator_cycles: tuple[int, str] | None = None,
    golden_reset_points: list[bool] | None = None,
) -> None:
    """Adds the 'on the device' checks and ``report.metrics['device']``. ``golden_reset_points``:
    where the board's state is reset between golden vectors (None: a model without state)."""
    try:
        session = Session.open(request.port, request.baud, request.reset, request.boot_wait)
    except DeviceError as exc:
        report.add(DEVICE, False, str(exc))
        return
    try:
        _check(session, report, project, manifest, info, request, golden, samples, emulator_cycles, golden_reset_points)
    except DeviceError as exc:
        report.add(DEVICE, False, str(exc))
    except KeyboardInterrupt:
        report.add(DEVICE, False, "interrupted (Ctrl-C); the next run resynchronises the board")
        raise
    finally:
        session.close()


def _check(
    session: Session,
    report: ValidationReport,
    project: Path,
    manifest: Manifest,
    info: ModelInfo,
    request: DeviceRequest,
    golden: tuple[Samples, Samples],
    samples: tuple[Samples, Samples, list[np.ndarray | None]] | None,
    emulator_cycles: tuple[int, str] | None,
    golden_reset_points: list[bool] | None,
) -> None:
    identity = session.identity
    assert identity is not None
    problem = identity_problem(identity, manifest, project, request.port)
    report.add(
        f"{DEVICE}: identity",
        problem is None,
        problem or f"{request.port}: model crc32 {identity.crc32:08x} on {identity.runtime} ({identity.library})",
    )
    if problem:
        return
    data: dict[str, Any] = {
        "port": request.port,
        "identity": identity.__dict__,
        "arena_bytes": identity.arena_bytes,
        "arena_used_bytes": identity.arena_used,
    }
    stateful = has_state(info)  # the references were computed from these reset points (golden.json; every sample)
    golden_run = _run_all(session, golden[0], info, golden_reset_points)
    g = compare(golden_run.outputs, golden[1])
    data["golden"] = g
    report.add(
        f"{DEVICE}: golden vectors",
        g["bit_exact"] == g["count"],
        f"{g['bit_exact']}/{g['count']} bit-exact with x86 TFLite Micro"
        + (f" (max difference {g['max_lsb_diff']} LSB)" if g["max_lsb_diff"] else ""),
    )
    inferences = list(golden_run.inferences)
    if samples is not None and request.samples > 0:
        inputs, reference, float_outputs = samples
        n = min(request.samples, len(inputs))
        sample_run = _run_all(session, inputs[:n], info, [True] * n if stateful else None)
        s = compare(sample_run.outputs, reference[:n])
        s["float_vs_device"] = float_metrics(sample_run.outputs, info, float_outputs)
        data["samples"] = s
        inferences += sample_run.inferences
        report.add(
            f"{DEVICE}: validation samples",
            s["bit_exact"] == s["count"],
            f"{s['bit_exact']}/{s['count']} bit-exact with x86 TFLite Micro"
            + (f" (max difference {s['max_lsb_diff']} LSB)" if s["max_lsb_diff"] else ""),
        )
    data["latency"] = latency(inferences, identity, info.total_macs)
    if inferences and not data["latency"]:
        data["latency_note"] = "not measured: the board's counter did not advance during a run"
    data["stack_peak_bytes"] = max((i.stack_bytes for i in inferences), default=0)
    data["retries"] = session.retries
    if emulator_cycles is not None:
        data["emulator"] = {"ticks": emulator_cycles[0], "unit": emulator_cycles[1]}
    report.metrics["device"] = data


def monitor_text(project: Path, manifest: Manifest, request: DeviceRequest) -> tuple[bool, str]:
    """``mcuq monitor``: the boot self-test the board printed and its identity, decoded, and
    whether it is this project's firmware. (ok, text)."""
    with Session.open(request.port, request.baud, request.reset, request.boot_wait) as session:
        identity = session.identity
        assert identity is not None
        boot = [line for line in session.boot_log if line.startswith("mcuq: ")]
        problem = identity_problem(identity, manifest, project, request.port)
        lines = [f"{request.port} at {request.baud} baud:"]
        lines += [f"  {line}" for line in boot] or [
            "  (no boot output seen: the board was already running; without --no-reset it is restarted)"
        ]
        lines += [
            f"  model: crc32 {identity.crc32:08x}, {identity.model_bytes:,} bytes",
            f"  runtime: {identity.runtime} ({identity.library}), link protocol {identity.protocol}",
            f"  arena: {identity.arena_used:,} of {identity.arena_bytes:,} bytes in use",
            f"  clock: {identity.cpu_hz / 1e6:g} MHz (counter at {identity.tick_hz / 1e6:g} MHz)",
            f"  inputs {identity.input_bytes} bytes, outputs {identity.output_bytes} bytes",
            problem or f"  this is {project.name}'s firmware",
        ]
        return problem is None, "\n".join(lines)


def _emulator_ticks(manifest: Manifest) -> tuple[int, str] | None:
    """The cycles (or instructions) the emulator counted at deploy, when the runtime recorded them."""
    for value in manifest.as_dict().values():
        emulation = value.get("emulation") if isinstance(value, dict) else None
        if isinstance(emulation, dict) and isinstance(emulation.get("ticks"), int):
            return int(emulation["ticks"]), str(emulation.get("unit", ""))
    return None


def check_on_device(
    report: ValidationReport,
    project: Path,
    manifest: Manifest,
    info: ModelInfo,
    device: DeviceRequest,
    golden: ProjectGolden | str,
    evaluation: Evaluation | None,
    console: Console,
) -> None:
    """``mcuq validate --device``: the golden vectors (and validation samples) run on the board,
    reported as the "on the device" checks; golden vectors that could not be read (``golden`` is
    then the reason) are a failed check, not an error that hides the host checks."""
    if isinstance(golden, ProjectGolden):
        resets = golden.resets if has_state(info) else None  # as the references were computed
        samples = (evaluation.int8_inputs, evaluation.int8_outputs, evaluation.float_outputs) if evaluation is not None else None
        count = len(golden.inputs) + (min(device.samples, len(samples[0])) if samples else 0)
        with console.step(f"running {count} inputs on the board at {device.port}"):
            check_device(
                report, project, manifest, info, device, (golden.inputs, golden.outputs), samples, _emulator_ticks(manifest), resets
            )
    else:
        report.add("on the device", False, golden)
