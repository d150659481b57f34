"""Child-process side of the host TFLite Micro runs (see ``host_tflm``).

Runs as ``python -m mcuq.reference.tflm_worker REQUEST RESPONSE``: reads a pickled request, runs the
x86 TFLite Micro interpreter, pickles the answer. Keeping the native interpreter out of
the mcuq process means a malformed model or a too-small arena that crashes it cannot take
mcuq down. It imports neither TensorFlow nor the rest of mcuq, so it starts fast.
"""

from __future__ import annotations

import os
import pickle
import sys
from typing import Any, TypedDict

import numpy as np


class WorkerRequest(TypedDict, total=False):
    """What the parent (``host_tflm``) asks: ``kind`` run | litert | min_arena, and its inputs."""

    kind: str
    model: bytes
    inputs: list[Any]  # samples (run, litert: a list of tensors each) or one sample (min_arena)
    warmup: list[list[np.ndarray]]
    arena: int
    num_outputs: int
    tensors: list[int]  # tensor indices whose values are kept
    resets: list[bool] | None
    limit: int  # min_arena: the largest arena tried


class WorkerAnswer(TypedDict, total=False):
    """The worker's answer: ``ok`` and ``error``, then what the request's kind computes."""

    ok: bool
    error: str
    outputs: list[list[np.ndarray]]
    tensors: list[dict[int, np.ndarray]]
    min_arena: int | None
    probes: int
    tried_up_to: int


# The worker could not write its answer (a full or read-only temp folder): this exit status and
# stderr prefix let the parent name the real cause instead of blaming the model.
OSERROR_EXIT = 75
OSERROR_MARK = "mcuq-worker-oserror: "

# What mcuq.common.forkserver imports once, before it forks a fresh child per request (no TensorFlow:
# forking after TensorFlow's threads exist is unsafe).
FORK_SERVER_PRELOAD = ("tflite_micro.python.tflite_micro.runtime", "ai_edge_litert.interpreter")


def _interpreter(model: bytes, arena: int, preserve: bool = False) -> Any:
    from tflite_micro.python.tflite_micro import runtime

    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    return runtime.Interpreter.from_bytes(model, arena_size=arena, intrepreter_config=config)


def _tensor_value(value: Any) -> np.ndarray:
    """GetTensor answers {'dtype', 'shape', 'tensor_data'} in current tflite-micro wheels."""
    if isinstance(value, dict):
        return np.asarray(value["tensor_data"]).reshape(tuple(value["shape"]))
    return np.array(value)


def _run(req: WorkerRequest) -> WorkerAnswer:
    interp = _interpreter(req["model"], req["arena"], preserve=bool(req.get("tensors")))
    outputs: list[list[np.ndarray]] = []
    tensors: list[dict[int, np.ndarray]] = []
    for sample in req.get("warmup", []):  # invoked first, outputs dropped: leaves other values in the arena
        for i, x in enumerate(sample):
            interp.set_input(x, i)
        interp.invoke()
        interp.reset()
    resets = req.get("resets") or [True] * len(req["inputs"])
    for v, sample in enumerate(req["inputs"]):
        if v and resets[v]:  # variable tensors (LSTM state) survive invoke(); a fresh interpreter starts reset
            interp.reset()
        for i, x in enumerate(sample):  # after reset(): the input buffer is in the arena that reset reuses
            interp.set_input(x, i)
        interp.invoke()
        outputs.append([np.array(interp.get_output(i)) for i in range(req["num_outputs"])])
        if req.get("tensors"):
            tensors.append({t: _tensor_value(interp.GetTensor(t, 0)) for t in req["tensors"]})
    return {"outputs": outputs, "tensors": tensors}


def _run_litert(req: WorkerRequest) -> WorkerAnswer:
    """The float reference model on the LiteRT interpreter (no XNNPACK: reference kernels)."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    interp = Interpreter(
        model_content=req["model"],
        experimental_preserve_all_tensors=bool(req.get("tensors")),
        experimental_op_resolver_type=OpResolverType.BUILTIN_REF,
    )
    interp.allocate_tensors()
    ins, outs = interp.get_input_details(), interp.get_output_details()
    outputs: list[list[np.ndarray]] = []
    tensors: list[dict[int, np.ndarray]] = []
    resets = req.get("resets") or [True] * len(req["inputs"])
    for v, sample in enumerate(req["inputs"]):
        if resets[v]:  # variable tensors (LSTM state) survive invoke() here too
            interp.reset_all_variables()
        for detail, x in zip(ins, sample):
            interp.set_tensor(detail["index"], x.astype(detail["dtype"]))
        interp.invoke()
        outputs.append([np.array(interp.get_tensor(d["index"])) for d in outs])
        if req.get("tensors"):
            tensors.append({t: np.array(interp.get_tensor(t)) for t in req["tensors"]})
    return {"outputs": outputs, "tensors": tensors}


def _probe(model: bytes, arena: int, inputs: list[np.ndarray]) -> bool:
    """Allocate and invoke with ``arena`` bytes in a forked child; a crash counts as too small."""
    pid = os.fork()
    if pid == 0:  # child
        try:
            interp = _interpreter(model, arena)
            for i, x in enumerate(inputs):
                interp.set_input(x, i)
            interp.invoke()
            os._exit(0)
        except BaseException:  # noqa: BLE001 - any failure means "does not fit"
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def _min_arena(req: WorkerRequest) -> WorkerAnswer:
    model, inputs, align = req["model"], req["inputs"], 16
    hi = max(4096, len(model) * 2)
    while not _probe(model, hi, inputs):
        if hi >= req["limit"]:
            return {"min_arena": None, "probes": 0, "tried_up_to": hi}
        hi = min(hi * 2, req["limit"])
    lo, probes = 0, 0  # lo fails (or is zero), hi fits
    while hi - lo > align:
        mid = (lo + hi) // 2 // align * align
        if mid <= lo:
            break
        probes += 1
        if _probe(model, mid, inputs):
            hi = mid
        else:
            lo = mid
    return {"min_arena": hi, "probes": probes}


def main() -> int:
    request_path, response_path = sys.argv[1], sys.argv[2]
    with open(request_path, "rb") as f:
        req = pickle.load(f)
    # The runtime prints to stdout on every construction; keep the pipe clean.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    try:
        handlers = {"min_arena": _min_arena, "run": _run, "litert": _run_litert}
        answer: WorkerAnswer = {**handlers[req["kind"]](req), "ok": True}
    except Exception as exc:  # noqa: BLE001 - reported to the parent as text
        answer = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    try:
        with open(response_path, "wb") as f:
            pickle.dump(answer, f)
    except OSError as exc:  # e.g. a full temp folder: say so, the parent must not blame the model
        print(f"{OSERROR_MARK}{exc.strerror or exc} ({response_path})", file=sys.stderr)
        return OSERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
