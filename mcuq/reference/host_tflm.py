"""Host runs of the x86 TFLite Micro interpreter (``tflite-micro`` package), isolated.

Golden outputs, arena measurements and bit-exactness checks all come from here. Every
run happens in a child process (``tflm_worker``): TFLite Micro can segfault on a
malformed model or a too-small arena, and that must be reported, never fatal to mcuq.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from mcuq.common.errors import NativeCrashError
from mcuq.common.isolation import run_isolated

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


def _call_worker(request: dict[str, Any], what: str, timeout: float = 600) -> dict[str, Any]:
    answer, detail = run_isolated("mcuq.reference.tflm_worker", request, capture_stderr=True, timeout=timeout)
    if answer is None:
        raise NativeCrashError(
            f"the x86 TFLite Micro interpreter crashed while {what} ({detail}); "
            "the model is probably malformed or uses an op TFLite Micro cannot run"
        )
    result: dict[str, Any] = answer
    return result


def run_tflm(
    model: bytes,
    samples: list[list[np.ndarray]],
    arena_size: int,
    num_outputs: int,
    keep_tensors: list[int] | None = None,
    resets: list[bool] | None = None,
) -> TflmRun:
    """Invoke ``model`` on each sample (a list of int tensors, one per model input). ``resets``:
    before which samples the state is reset (mcuq.model.state); default every one."""
    answer = _call_worker(
        {
            "kind": "run",
            "model": model,
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
    if not answer["ok"] or answer.get("min_arena") is None:
        raise NativeCrashError(f"x86 TFLite Micro could not allocate the model even with {ARENA_SEARCH_LIMIT // (1024 * 1024)} MB of arena")
    return int(answer["min_arena"])


def run_float_reference(model: bytes, samples: list[list[np.ndarray]], keep_tensors: list[int] | None = None) -> TflmRun:
    """Run the float .tflite on LiteRT's reference kernels, in the same isolated worker."""
    answer = _call_worker(
        {"kind": "litert", "model": model, "inputs": samples, "tensors": keep_tensors or []}, "running the float reference model"
    )
    if not answer["ok"]:
        raise NativeCrashError(f"LiteRT could not run the float reference model: {answer['error']}")
    return TflmRun(answer["outputs"], answer["tensors"])
