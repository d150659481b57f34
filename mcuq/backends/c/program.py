"""Plain-C int8 backend: the model compiled to straight C calls over one static buffer.

Every op becomes one call into ``mcuq_kernels.c`` with its constants (weights, biases,
per-channel multipliers and shifts) computed exactly as TFLite Micro computes them in
Prepare, so the C output is bit-exact with the x86 TFLite Micro. Activations share one
buffer laid out by ``planner``. An op outside the supported set is an error naming it.

This module is the op table and the driver; the program's types are in ``ir``, the lowering of
each op family in ``lower_windowed`` and ``lower_elementwise`` (sharing ``emitter``), weight
layouts in ``weight_layout`` and the fit check in ``fit``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from mcuq.backends.c.emitter import Emitter, unsupported
from mcuq.backends.c.ir import CProgram, KernelCall
from mcuq.backends.c.lower_arith import ARITH_EMITTERS
from mcuq.backends.c.lower_elementwise import (
    lower_add,
    lower_concat,
    lower_logistic_tanh,
    lower_mean,
    lower_mul,
    lower_pad,
    lower_quantize,
    lower_relu,
    lower_reshape,
    lower_softmax,
)
from mcuq.backends.c.lower_int16 import INT16_EMITTERS, has_int16_activation, is_int16_op
from mcuq.backends.c.lower_int16_extra import INT16_EXTRA_EMITTERS
from mcuq.backends.c.lower_lstm import lower_lstm
from mcuq.backends.c.lower_moves import lower_gather_move, lower_split, move_aliases
from mcuq.backends.c.lower_svdf import lower_svdf
from mcuq.backends.c.lower_windowed import lower_conv, lower_depthwise, lower_fully_connected, lower_pool, lower_transpose_conv
from mcuq.backends.c.ops_extra import EXTRA_EMITTERS
from mcuq.backends.c.planner import plan_memory
from mcuq.common.errors import UnsupportedOpError
from mcuq.model.info import ModelInfo, OpInfo

SUPPORTED_OPS = frozenset(
    {
        "CONV_2D",
        "DEPTHWISE_CONV_2D",
        "FULLY_CONNECTED",
        "MAX_POOL_2D",
        "AVERAGE_POOL_2D",
        "ADD",
        "MUL",
        "RESHAPE",
        "EXPAND_DIMS",
        "SQUEEZE",
        "SOFTMAX",
        "LOGISTIC",
        "TANH",
        "RELU",
        "RELU6",
        "QUANTIZE",
        "CONCATENATION",
        "SPLIT",
        "UNPACK",
        "SPLIT_V",
        "SLICE",
        "REVERSE_V2",
        "PACK",
        "MEAN",
        "SUM",
        "PAD",
        "PADV2",
        "TRANSPOSE_CONV",
        "UNIDIRECTIONAL_SEQUENCE_LSTM",
        "SVDF",
        *EXTRA_EMITTERS,
        *ARITH_EMITTERS,
    }
)
RESHAPE_OPS = {"RESHAPE", "EXPAND_DIMS", "SQUEEZE"}
# the 16x8 lowerings (int16 activations), by op
INT16_OPS = {**INT16_EMITTERS, **INT16_EXTRA_EMITTERS}


RECURRENT_OPS = {"BIDIRECTIONAL_SEQUENCE_LSTM", "UNIDIRECTIONAL_SEQUENCE_RNN"}


def unsupported_ops(info: ModelInfo) -> list[str]:
    return [name for name in info.op_names if name not in SUPPORTED_OPS]


def check_supported(info: ModelInfo) -> None:
    for op in info.ops:
        if op.name in RECURRENT_OPS:
            raise unsupported(
                info,
                op,
                "is recurrent: the plain-C runtime runs UNIDIRECTIONAL_SEQUENCE_LSTM and SVDF only; use --runtime tflm on a 32-bit board",
            )
        if op.name not in SUPPORTED_OPS:
            raise unsupported(
                info, op, f"is not supported; supported ops: {', '.join(sorted(SUPPORTED_OPS))}; use --runtime tflm on a 32-bit board"
            )
        if has_int16_activation(info, op) and op.name not in INT16_OPS:
            raise unsupported(
                info,
                op,
                f"has int16 activations; the C runtime's 16x8 ops are {', '.join(sorted(INT16_OPS))}; use --runtime tflm "
                "on a board whose TFLite Micro library has a 16x8 kernel for it (`int16x8_ops` in boards/libraries/*.toml), or int8 activations",
            )
    for t in info.tensors:
        if not t.is_constant and t.dtype not in ("int8", "int16") and t.index in _used(info):
            raise UnsupportedOpError(
                f"plain-C runtime: tensor '{t.name}' is {t.dtype}; the C runtime runs int8 and 16x8 models (--io int8)"
            )


def _used(info: ModelInfo) -> set[int]:
    return {i for op in info.ops for i in (*op.inputs, *op.outputs) if i >= 0}


def scratch_bytes(info: ModelInfo, op: OpInfo) -> int:
    if op.name in ("MEAN", "SUM"):
        out = info.tensors[op.outputs[0]]
        return 4 * int(np.prod(out.shape))
    if op.name == "TRANSPOSE_CONV" and not has_int16_activation(info, op):  # the 16x8 kernel gathers: no scratch
        return 4 * int(np.prod(info.tensors[op.outputs[0]].shape))
    return 0


EMITTERS: dict[str, Callable[[Emitter, OpInfo], KernelCall]] = {
    "CONV_2D": lower_conv,
    "DEPTHWISE_CONV_2D": lower_depthwise,
    "FULLY_CONNECTED": lower_fully_connected,
    "MAX_POOL_2D": lower_pool,
    "AVERAGE_POOL_2D": lower_pool,
    "ADD": lower_add,
    "MUL": lower_mul,
    "RESHAPE": lower_reshape,
    "EXPAND_DIMS": lower_reshape,
    "SQUEEZE": lower_reshape,
    "SOFTMAX": lower_softmax,
    "LOGISTIC": lower_logistic_tanh,
    "TANH": lower_logistic_tanh,
    "RELU": lower_relu,
    "RELU6": lower_relu,
    "QUANTIZE": lower_quantize,
    "CONCATENATION": lower_concat,
    "SPLIT": lower_split,
    "UNPACK": lower_split,
    "SPLIT_V": lower_split,
    "SLICE": lower_gather_move,
    "REVERSE_V2": lower_gather_move,
    "PACK": lower_concat,
    "PAD": lower_pad,
    "PADV2": lower_pad,
    "MEAN": lower_mean,
    "SUM": lower_mean,
    "TRANSPOSE_CONV": lower_transpose_conv,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": lower_lstm,
    "SVDF": lower_svdf,
    **EXTRA_EMITTERS,
    **ARITH_EMITTERS,
}


def compile_model(info: ModelInfo, simd: bool = False, state_mode: str = "none") -> CProgram:
    """Model -> C program. Raises UnsupportedOpError before anything is generated.

    `simd` lays the weights out for the 4-channel path of Cortex-M CPUs with the DSP
    extension; the kernels also run that layout portably, so it is a speed choice only.
    """
    check_supported(info)
    time_major = {op.inputs[0] for op in info.ops if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM" and op.options.get("timeMajor")}
    for t in info.input_tensors:
        batch = t.shape[1] if t.index in time_major and len(t.shape) > 1 else (t.shape[0] if t.shape else 1)
        if batch != 1:
            raise UnsupportedOpError(f"plain-C runtime: input '{t.name}' has batch {batch}; export with batch 1")
    e = Emitter(info, simd)
    program = e.program
    program.state_mode = state_mode
    program.scratch = {op.index: scratch_bytes(info, op) for op in info.ops if scratch_bytes(info, op)}
    program.plan = plan_memory(info, program.scratch, alias_ops=RESHAPE_OPS, windows=move_aliases(e))
    program.calls = [e.lower(op, (INT16_OPS if is_int16_op(e, op) else EMITTERS)[op.name]) for op in info.ops]
    return program


__all__ = ["EMITTERS", "INT16_OPS", "RESHAPE_OPS", "SUPPORTED_OPS", "check_supported", "compile_model", "scratch_bytes", "unsupported_ops"]
