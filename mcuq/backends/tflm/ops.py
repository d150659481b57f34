"""What a board's TFLite Micro library can compute for a model: its optimized kernels and the
rules its kernel features impose (the library data itself is in ``mcuq.libraries``)."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from mcuq.common.compat import tomllib
from mcuq.common.errors import UnsupportedOpError
from mcuq.common.resources import boards_dir

if TYPE_CHECKING:
    from mcuq.libraries import TflmLibrary
    from mcuq.model.info import ModelInfo


@lru_cache(maxsize=1)
def optimized_kernel_ops() -> dict[str, frozenset[str]]:
    """Per kernel set (boards' ``tflm.kernels``), the ops that have an optimized kernel."""
    data = tomllib.loads((boards_dir() / "libraries" / "kernel_sets.toml").read_text())
    return {name: frozenset(ops) for name, ops in data.items()}


def library_rule_violations(info: ModelInfo, library: TflmLibrary) -> list[str]:
    """One line per thing in the quantized model this library cannot compute correctly.

    The op-name check cannot see these: the library registers FULLY_CONNECTED, but the
    2023 kernel applies one scale to every channel of a per-channel Dense, so the board
    would compute different numbers from the ones mcuq validated.
    """
    problems: list[str] = []
    features = library.features
    if not features.per_channel_fully_connected:
        for op in info.ops:
            if op.name != "FULLY_CONNECTED" or len(op.inputs) < 2 or op.inputs[1] < 0:
                continue
            weights = info.tensors[op.inputs[1]]
            if weights.quant is not None and weights.quant.per_channel:
                problems.append(
                    f"op {op.index} FULLY_CONNECTED (Keras layer '{info.layer_of_op(op)}') has per-channel weights, but "
                    f"{library.label} applies one scale to all channels (features.per_channel_fully_connected = false); "
                    "quantize Dense per tensor (--per-channel none or auto)"
                )
    # Per op, not per model: a signal-library front end (int16 audio) may feed an int8 network; and
    # an int8 LSTM's cell state is an int16 variable tensor: recurrent state, not a 16x8 activation.
    int16_ops = sorted(
        {
            op.name
            for op in info.ops
            if any(
                i >= 0 and info.tensors[i].dtype == "int16" and not info.tensors[i].is_constant and not info.tensors[i].is_variable
                for i in [*op.inputs, *op.outputs]
            )
        }
    )
    if int16_ops:
        missing = features.int16x8_missing(int16_ops)
        if missing:
            problems.append(
                f"{library.label} has no int16-activation (16x8) kernel for {', '.join(missing)}; quantize with --activations int8"
            )
    return problems


def check_library_rules(info: ModelInfo, library: TflmLibrary, where: str) -> None:
    """Raise a one-line error when the library cannot compute this model (see above)."""
    problems = library_rule_violations(info, library)
    if problems:
        raise UnsupportedOpError(f"{where}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def unlisted_core_note(library: TflmLibrary, core_architecture: str | None) -> str | None:
    """What is and is not verified for a board whose core the pinned library does not list."""
    if library.lists_architecture(core_architecture):
        return None
    return (
        f"{library.label} lists {', '.join(library.architectures or ())}, not {core_architecture} (built with "
        "lib_compat_mode = soft). Verified: its kernels for this CPU, bit-exact in qemu (`mcuq validate --build`). "
        "Not verified: the build with this Arduino core, the hardware."
    )


def cmsis_svdf_departures(info: ModelInfo, library: TflmLibrary) -> list[str]:
    """SVDF ops on which the board's CMSIS-NN kernel and x86 TFLite Micro disagree: golden vectors
    from the wheel would then fail the board's self-test, so they must come from the library."""
    if library.features.svdf_kernel != "cmsis-nn-int16-state":
        return []
    found = []
    for op in info.ops:
        state = info.tensors[op.inputs[4]] if op.name == "SVDF" and len(op.inputs) > 4 and op.inputs[4] >= 0 else None
        if state is not None and (state.dtype != "int16" or any(state.quant.zero_point if state.quant else ())):
            found.append(f"op {op.index} SVDF (Keras layer '{info.layer_of_op(op)}', {state.dtype} state)")
    return found
