"""Plain-C lowering of SVDF (int8 input and feature weights; int8 or int16 time weights and state).

SVDF is the op of Google's keyword-spotting models: a feature matrix product whose results enter
a per-filter memory (the activation state, a variable tensor), then a time-weighted sum over that
memory, reduced over ``rank`` filters per unit. TFLite Micro's integer kernel
(svdf_common.cc EvalIntegerSvdfReference) is a template over the state type: int16 time weights
select an int16 state (EvalInt16SvdfReference), int8 time weights an int8 one. What Prepare
computes is computed here once: the two requantizations (effective_scale_1: input x feature
weights -> state; effective_scale_2: state x time weights -> output, both products of float32
scales widened to double) and the zero points. The C loops (``mcuq_svdf.c``) follow Eval.

The integer kernel applies no fused activation (only the float one does): a RELU in the options
changes nothing in TFLite Micro, so it changes nothing here either.

The state survives ``Invoke()`` and ``Reset()`` sets it to its zero point (int8) or 0 (int16),
as the LSTM's (lower_lstm.py): a static array of the generated model (``StateArray``), outside
the activation buffer, reset by ``mcuq_reset()``.
"""

from __future__ import annotations

import numpy as np

from mcuq.backends.c.emitter import Emitter, quant_of, unsupported
from mcuq.backends.c.ir import KernelCall, StateArray
from mcuq.model.info import OpInfo, TensorInfo
from mcuq.model.quant_math import quantize_multiplier

INPUT, WEIGHTS_FEATURE, WEIGHTS_TIME, BIAS, STATE = 0, 1, 2, 3, 4  # svdf_common.cc kSvdf*Tensor
BIAS_SCALE_TOLERANCE = 1e-5  # PrepareSvdf: |bias scale - state scale x time scale| < 1e-5


def _per_tensor(t: TensorInfo) -> bool:
    return t.quant is not None and len(t.quant.scale) == 1


def _check(e: Emitter, op: OpInfo) -> None:
    """What PrepareSvdf demands of an int8 SVDF (TFLite Micro refuses the rest too)."""
    if len(op.inputs) != 5 or op.inputs[BIAS] < 0:
        raise unsupported(e.info, op, "has no bias; TFLite Micro's int8 SVDF needs all 5 inputs (its Prepare reads the bias)")
    inp, out = e.t(op.inputs[INPUT]), e.t(op.outputs[0])
    wf, wt, bias, state = (e.t(op.inputs[p]) for p in (WEIGHTS_FEATURE, WEIGHTS_TIME, BIAS, STATE))
    if (inp.dtype, wf.dtype, out.dtype, bias.dtype) != ("int8", "int8", "int8", "int32") or wt.dtype not in ("int8", "int16"):
        raise unsupported(
            e.info,
            op,
            f"has input/feature/time/bias/output types {(inp.dtype, wf.dtype, wt.dtype, bias.dtype, out.dtype)}; the C runtime runs int8 SVDF",
        )
    if state.dtype != wt.dtype:
        raise unsupported(
            e.info, op, f"has a {state.dtype} state with {wt.dtype} time weights; TFLite Micro reads the state as the time weights' type"
        )
    if not state.is_variable:
        raise unsupported(e.info, op, f"has a state '{state.name}' that is no variable tensor; TFLite Micro refuses it too")
    if wf.data is None or wt.data is None or bias.data is None:
        raise unsupported(e.info, op, "has non-constant weights or bias")
    if not all(_per_tensor(t) for t in (inp, wf, wt, state, out)):
        raise unsupported(e.info, op, "has a tensor without one (per-tensor) scale; TFLite Micro's SVDF reads one scale each")
    if len(inp.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2 or len(out.shape) != 2:
        raise unsupported(e.info, op, "has an input, output or weights that are not 2-D; TFLite Micro's SVDF needs 2-D ones")


def _shapes(e: Emitter, op: OpInfo) -> tuple[int, int, int, int, int]:
    """(batch, in_dim, filters, memory, rank), checked as PrepareSvdf checks them."""
    inp, out = e.t(op.inputs[INPUT]), e.t(op.outputs[0])
    wf, wt, state = (e.t(op.inputs[p]) for p in (WEIGHTS_FEATURE, WEIGHTS_TIME, STATE))
    rank = int(op.options.get("rank", 0) or 0)  # no options: ParseSvdf leaves rank 0
    batch, in_dim = inp.shape
    filters, memory = wf.shape[0], wt.shape[1]
    if rank < 1 or filters % rank:
        raise unsupported(e.info, op, f"has rank {rank} for {filters} filters; the filters must be a multiple of the rank")
    fits = (
        wf.shape[1] == in_dim
        and wt.shape[0] == filters
        and list(out.shape) == [batch, filters // rank]
        and list(state.shape) == [batch, memory * filters]
        and int(np.prod(e.t(op.inputs[BIAS]).shape)) == filters // rank
    )
    if not fits:
        raise unsupported(
            e.info, op, "has shapes that do not fit together (input, weights, bias, state, output); TFLite Micro refuses them too"
        )
    return batch, in_dim, filters, memory, rank


def _multipliers(e: Emitter, op: OpInfo) -> tuple[tuple[int, int], tuple[int, int]]:
    """Prepare's effective_scale_1 and _2: float32 products and quotients, then double."""
    inp, wf, wt, bias, state, out = (e.t(i) for i in (*op.inputs, op.outputs[0]))
    f32 = [np.float32(quant_of(t)[0]) for t in (inp, wf, wt, bias, state, out)]
    s_in, s_wf, s_wt, s_bias, s_state, s_out = f32
    if abs(float(s_bias) - float(np.float32(s_state * s_wt))) >= BIAS_SCALE_TOLERANCE:
        raise unsupported(e.info, op, f"has bias scale {float(s_bias)}, not state scale x time weights scale; TFLite Micro refuses it")
    return quantize_multiplier(float(np.float32(s_in * s_wf / s_state))), quantize_multiplier(float(np.float32(s_state * s_wt / s_out)))


def _state(e: Emitter, op: OpInfo) -> tuple[str, str]:
    """The state's static array: (its C name, its C type). ResetVariableTensors sets int8
    tensors to their zero point and every other type to 0."""
    t = e.t(op.inputs[STATE])
    name = f"state_s{op.index}"
    ctype = "int8_t" if t.dtype == "int8" else "int16_t"
    reset = quant_of(t)[1] if t.dtype == "int8" else 0
    e.program.state.append(StateArray(name, ctype, int(np.prod(t.shape)), int(reset), t.index))
    return name, ctype


def lower_svdf(e: Emitter, op: OpInfo) -> KernelCall:
    _check(e, op)
    batch, in_dim, filters, memory, rank = _shapes(e, op)
    (m1, s1), (m2, s2) = _multipliers(e, op)
    wt = e.t(op.inputs[WEIGHTS_TIME])
    assert wt.data is not None
    state, ctype = _state(e, op)
    wide = ctype == "int16_t"
    time_weights = e.const(f"wt{op.index}", ctype, wt.data.astype(np.int16 if wide else np.int8).reshape(-1))
    bias = e.bias_data(op, BIAS)
    assert bias is not None
    return KernelCall(
        op.index,
        "mcuq_svdf",
        [
            ("in", e.buf(op.inputs[INPUT])),
            ("out", e.buf(op.outputs[0])),
            ("state8", 0 if wide else state),
            ("state16", state if wide else 0),
            ("w_feature", e.const(f"wf{op.index}", "int8_t", e.weight_data(op, WEIGHTS_FEATURE).reshape(-1))),
            ("w_time8", 0 if wide else time_weights),
            ("w_time16", time_weights if wide else 0),
            ("bias", e.const(f"b{op.index}", "int32_t", bias)),
            ("feature_mult", m1),
            ("out_mult", m2),
            ("feature_shift", s1),
            ("out_shift", s2),
            ("batch", batch),
            ("in_dim", in_dim),
            ("filters", filters),
            ("memory", memory),
            ("rank", rank),
            ("in_zp", quant_of(e.t(op.inputs[INPUT]))[1]),
            ("state_zp", quant_of(e.t(op.inputs[STATE]))[1]),
            ("out_zp", quant_of(e.t(op.outputs[0]))[1]),
        ],
        "mcuq_svdf_params",
    )
