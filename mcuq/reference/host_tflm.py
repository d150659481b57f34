"""Host runs of the x86 TFLite Micro interpreter (``tflite-micro`` package), isolated.

Golden outputs, arena measurements and bit-exactness checks all come from here. Every
run happens in a child process (``tflm_worker``): TFLite Micro can segfault on a
malformed model or a too-small arena, and that must be reported, never fatal to mcuq. The child is
forked from a server that has imported numpy and TFLite Micro once (``mcuq.common.forkserver``).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from mcuq.common.errors import MCUQError, NativeCrashError
from mcuq.common.forkserver import run_isolated
from mcuq.reference.tflm_worker import OSERROR_MARK, WorkerAnswer, WorkerRequest

ARENA_SEARCH_LIMIT = 64 * 1024 * 1024


@dataclass(frozen=True)
class TflmRun:
    outputs: list[list[np.ndarray]]  # [sample][output index]
    tensors: list[dict[int, np.ndarray]]  # [sample]{tensor index: value}, when asked


def tflm_version() -> str:
    try:
        from importlib.metadata import version

        return version("tflite-micro")
    except Exception:  # noqa: BLE001
        return "unknown"


def _call_worker(request: WorkerRequest, what: str, timeout: float = 600) -> WorkerAnswer:
    try:
        answer, detail = run_isolated("mcuq.reference.tflm_worker", request, capture_stderr=True, timeout=timeout)
    except OSError as exc:  # the request could not be written: a full or read-only temp folder
        raise MCUQError(
            f"could not hand the model to the x86 TFLite Micro interpreter while {what}: {exc.strerror or exc} "
            f"(temp folder {tempfile.gettempdir()}); free space there or point TMPDIR at another folder"
        ) from None
    if answer is None and OSERROR_MARK in detail:
        cause = detail.split(OSERROR_MARK, 1)[1]
        raise MCUQError(
            f"the x86 TFLite Micro interpreter could not write its answer while {what}: {cause}; "
            f"free space in the temp folder {tempfile.gettempdir()} or point TMPDIR at another folder"
        )
    if answer is None:
        raise NativeCrashError(
            f"the x86 TFLite Micro interpreter crashed while {what} ({detail}); "
            "the model is probably malformed or uses an op TFLite Micro cannot run"
        )
    result: WorkerAnswer = answer
    return result


def run_tflm(
    model: bytes,
    samples: list[list[np.ndarray]],
    arena_size: int,
    num_outputs: int,
    keep_tensors: list[int] | None = None,
    warmup: list[list[np.ndarray]] | None = None,
    resets: list[bool] | None = None,
) -> TflmRun:
    """Invoke ``model`` on each sample (a list of int tensors, one per model input), in one fresh
    interpreter; ``warmup`` samples are invoked first and their outputs dropped. ``resets``:
    before which samples the state is reset (mcuq.model.state); default every one."""
    answer = _call_worker(
        {
            "kind": "run",
            "model": model,
            "warmup": warmup or [],
            "inputs": samples,
            "arena": int(arena_size),
            "num_outputs": num_outputs,
            "tensors": keep_tensors or [],
            "resets": resets,
        },
        "running the model",
    )
    if not answer["ok"]:
        raise NativeCrashError(f"x86 TFLite Micro failed to run the model with a {arena_size}-byte arena: {answer['error']}")
    return TflmRun(answer["outputs"], answer["tensors"])


def measure_min_arena(model: bytes, sample: list[np.ndarray]) -> int:
    """Smallest 16-byte multiple with which TFLite Micro allocates and invokes the model."""
    answer = _call_worker(
        {"kind": "min_arena", "model": model, "inputs": sample, "limit": ARENA_SEARCH_LIMIT},
        "measuring the arena",
    )
    found = answer.get("min_arena")
    if not answer["ok"] or found is None:
        missing = ops_without_host_kernel(model)
        if missing:
            raise NativeCrashError(
                f"x86 TFLite Micro has no kernel for {', '.join(missing)}: it cannot run this model at any arena size; "
                "replace that layer with one whose op TFLite Micro has (mcuq inspect lists each op's support)"
            )
        raise NativeCrashError(f"x86 TFLite Micro could not allocate the model even with {ARENA_SEARCH_LIMIT // (1024 * 1024)} MB of arena")
    return int(found)


def ops_without_host_kernel(model: bytes) -> list[str]:
    """The model's ops (``GELU (op 1)``) the installed x86 TFLite Micro registers no kernel for:
    the interpreter then fails at every arena size, and the arena is not the problem."""
    from mcuq.common.errors import MCUQError
    from mcuq.libraries import installed_tflm_ops
    from mcuq.model.info import parse_model

    try:
        info = parse_model(model)
    except MCUQError:
        return []
    known = installed_tflm_ops()
    if not known:
        return []  # the wheel's registrations could not be read: say nothing rather than guess
    missing: dict[str, int] = {}
    for op in info.ops:
        if op.name not in known:
            missing.setdefault(op.name, op.index)
    return [f"{name} (op {index}, layer '{info.layer_of_op(info.ops[index])}')" for name, index in missing.items()]


def run_float_reference(model: bytes, samples: list[list[np.ndarray]], keep_tensors: list[int] | None = None) -> TflmRun:
    """Run the float .tflite on LiteRT's reference kernels, in the same isolated worker."""
    answer = _call_worker(
        {"kind": "litert", "model": model, "inputs": samples, "tensors": keep_tensors or []}, "running the float reference model"
    )
    if not answer["ok"]:
        raise NativeCrashError(f"LiteRT could not run the float reference model: {answer['error']}")
    return TflmRun(answer["outputs"], answer["tensors"])
