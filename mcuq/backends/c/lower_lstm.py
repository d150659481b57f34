"""Plain-C lowering of UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations and weights, int16 cell).

Everything TFLite Micro computes in Prepare (lstm_eval_common.cc PrepareGateParametersInteger)
is computed here once: the FC requantizations into the fixed 2^-12 gate scale, the inter-gate
multiplications out of the fixed 2^-15 gate-output scale, the Tanh input scaling from the cell's
power-of-two scale, the quantized cell clip; the zero points are folded into per-row biases so the
C loops multiply raw int8 values (``mcuq_lstm.c``).

The hidden (int8) and cell (int16) state are variable tensors: TFLite Micro keeps them in its
persistent arena, they survive ``Invoke()`` and ``Reset()`` sets them to their zero point. Here
they are static arrays of the generated model (``StateArray``), outside the activation buffer
(the planner leaves variable tensors out), initialised to those values and reset by
``mcuq_reset()``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mcuq.backends.c.emitter import Emitter, quant_of, unsupported
from mcuq.backends.c.ir import KernelCall, StateArray
from mcuq.model.info import OpInfo, TensorInfo
from mcuq.model.quant_math import quantize_multiplier

GATE_INPUT_SCALE = 2.0**-12  # Q3.12: every gate's FC output, the input of its sigmoid/tanh
GATE_OUTPUT_SCALE = 2.0**-15  # Q0.15: every sigmoid/tanh output
INPUT_WEIGHTS = (1, 2, 3, 4)  # input-to-{input, forget, cell, output} gate, TFLite's input order
RECURRENT_WEIGHTS = (5, 6, 7, 8)
BIASES = (12, 13, 14, 15)
HIDDEN, CELL = 18, 19
UNUSED = (9, 10, 11, 16, 17, 20, 21, 22, 23)  # peephole, projection, layer norm
ACT_TANH, ACT_SIGMOID = 4, 6  # TfLiteFusedActivation of the cell gate


def _present(op: OpInfo, pos: int) -> bool:
    return pos < len(op.inputs) and op.inputs[pos] >= 0


def _check(e: Emitter, op: OpInfo) -> None:
    """What lstm_eval.cc ValidateTensorStatus demands, plus the 8x8->16 type combination."""
    if len(op.inputs) != 24:
        raise unsupported(e.info, op, f"has {len(op.inputs)} inputs; TFLite Micro's LSTM takes 24")
    missing = [p for p in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS, *BIASES, HIDDEN, CELL) if not _present(op, p)]
    if missing:
        raise unsupported(e.info, op, f"lacks inputs {missing} (a CIFG LSTM); TFLite Micro's LSTM needs all gates")
    if any(_present(op, p) for p in UNUSED):
        raise unsupported(e.info, op, "has peephole, projection or layer-norm tensors; TFLite Micro's LSTM has none")
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    hidden, cell = e.t(op.inputs[HIDDEN]), e.t(op.inputs[CELL])
    types = (inp.dtype, out.dtype, hidden.dtype, cell.dtype)
    if inp.dtype == "int16":
        # TFLite Micro has the kernel (EvalLstm<int16_t, int8_t, int16_t, int64_t>), but TF 2.21's
        # converter makes none: "Quantization to 16x8-bit not yet supported for op:
        # 'UNIDIRECTIONAL_SEQUENCE_LSTM'", so there is no 16x8 LSTM to check a C kernel against.
        raise unsupported(e.info, op, "is a 16x8 LSTM (int16 activations); the C runtime runs the int8 one only: use --runtime tflm")
    if types != ("int8", "int8", "int8", "int16"):
        raise unsupported(e.info, op, f"has input/output/hidden/cell types {types}; the C runtime runs int8 x int8 -> int16 cell")
    if not (hidden.is_variable and cell.is_variable):
        raise unsupported(e.info, op, "has a hidden or cell state that is no variable tensor; TFLite Micro refuses it too")
    for p in (*INPUT_WEIGHTS, *RECURRENT_WEIGHTS):
        w = e.t(op.inputs[p])
        if w.data is None or w.dtype != "int8" or w.quant is None or len(w.quant.scale) != 1:
            raise unsupported(e.info, op, f"has weights '{w.name}' that are not constant per-tensor int8")
    activation = int(op.options.get("fusedActivationFunction", ACT_TANH))
    if activation not in (ACT_TANH, ACT_SIGMOID):
        raise unsupported(e.info, op, f"has cell activation {activation}; TFLite Micro's LSTM runs tanh or sigmoid only")
    if len(inp.shape) != 3 or len(out.shape) != 3:
        raise unsupported(e.info, op, "has an input or output that is not 3-D [batch, time, features]")


def _fc_multiplier(in_scale: float, w: TensorInfo) -> tuple[int, int]:
    """GetQuantizedConvolutionMultipler without bias: the scales' product in float32, then double."""
    assert w.quant is not None
    product = float(np.float32(np.float32(in_scale) * np.float32(w.quant.scale[0])))
    return quantize_multiplier(product / GATE_INPUT_SCALE)


def _mul_multiplier(scale1: float, scale2: float, out_scale: float) -> tuple[int, int]:
    """CreateInterGateMulParams: float scales widened to double before the product."""
    return quantize_multiplier(float(np.float32(scale1)) * float(np.float32(scale2)) / float(np.float32(out_scale)))


def _row_sums(w: np.ndarray) -> np.ndarray:
    return w.astype(np.int64).reshape(w.shape[0], -1).sum(axis=1)


def _int32(values: np.ndarray) -> np.ndarray:
    """int32 wrap-around, as TFLite Micro's int32 accumulator sums."""
    return ((values.astype(np.int64) + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def cell_tanh_scaling(cell_scale: float) -> tuple[int, int]:
    """lstm_eval.cc Tanh(cell_state_scale_power): (input multiplier, shift) for the int16 Tanh;
    multiplier 0 is TFLite's power-of-two case (3 << shift). CheckedLog2 rounds the exponent."""
    power = round(math.log2(float(np.float32(cell_scale))))
    left = 15 + power - 3
    return (0, left) if left >= 0 else (3, -left)


def _state(e: Emitter, op: OpInfo, pos: int, name: str) -> str:
    t = e.t(op.inputs[pos])
    count = int(np.prod(t.shape))
    # ResetVariableTensors: int8 tensors to their zero point, every other type to 0
    value = quant_of(t)[1] if t.dtype == "int8" and t.quant is not None else 0
    e.program.state.append(StateArray(name, "int8_t" if t.dtype == "int8" else "int16_t", count, int(value), t.index))
    return name


def lower_lstm(e: Emitter, op: OpInfo) -> KernelCall:
    _check(e, op)
    inp, out = e.t(op.inputs[0]), e.t(op.outputs[0])
    hidden, cell = e.t(op.inputs[HIDDEN]), e.t(op.inputs[CELL])
    time_major = bool(op.options.get("timeMajor", False))
    steps, batch, in_dim = (inp.shape[0], inp.shape[1], inp.shape[2]) if time_major else (inp.shape[1], inp.shape[0], inp.shape[2])
    w_in = [e.t(op.inputs[p]) for p in INPUT_WEIGHTS]
    w_rec = [e.t(op.inputs[p]) for p in RECURRENT_WEIGHTS]
    units = w_in[0].shape[0]
    if int(np.prod(hidden.shape)) != batch * units or out.shape[2] != units:
        raise unsupported(e.info, op, f"has a hidden state of shape {list(hidden.shape)} for batch {batch} and {units} units")
    in_scale, in_zp = quant_of(inp)
    h_scale, h_zp = quant_of(hidden)
    c_scale, _ = quant_of(cell)
    biases = []
    for p in BIASES:
        data = e.bias_data(op, p)
        assert data is not None
        biases.append(data)
    w_in_data = [e.weight_data(op, p).reshape(units, in_dim) for p in INPUT_WEIGHTS]
    w_rec_data = [e.weight_data(op, p).reshape(units, units) for p in RECURRENT_WEIGHTS]
    # [units][4]: one unit's four gates together (the kernel reads weights and biases in sequence)
    b_in = np.stack([b.astype(np.int64) - in_zp * _row_sums(w) for b, w in zip(biases, w_in_data)], axis=1)
    b_rec = np.stack([-h_zp * _row_sums(w) for w in w_rec_data], axis=1)
    in_ms = [_fc_multiplier(in_scale, w) for w in w_in]
    rec_ms = [_fc_multiplier(h_scale, w) for w in w_rec]
    cf = _mul_multiplier(GATE_OUTPUT_SCALE, c_scale, c_scale)
    ig = _mul_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, c_scale)
    hid = _mul_multiplier(GATE_OUTPUT_SCALE, GATE_OUTPUT_SCALE, h_scale)
    tanh_mult, tanh_shift = cell_tanh_scaling(c_scale)
    clip = float(op.options.get("cellClip", 0.0) or 0.0)
    quantized_clip = int(min(max(clip / float(np.float32(c_scale)), -32768.0), 32767.0)) if clip > 0 else 0

    def four(values: list[int]) -> str:
        return "{" + ", ".join(str(v) for v in values) + "}"

    return KernelCall(
        op.index,
        "mcuq_lstm",
        [
            ("in", e.buf(inp.index)),
            ("out", e.buf(out.index)),
            ("hidden", _state(e, op, HIDDEN, f"state_h{op.index}")),
            ("cell", _state(e, op, CELL, f"state_c{op.index}")),
            ("w_in", e.const(f"wi{op.index}", "int8_t", np.stack(w_in_data, axis=1).reshape(-1))),
            ("w_rec", e.const(f"wr{op.index}", "int8_t", np.stack(w_rec_data, axis=1).reshape(-1))),
            ("b_in", e.const(f"bi{op.index}", "int32_t", _int32(b_in).reshape(-1))),
            ("b_rec", e.const(f"br{op.index}", "int32_t", _int32(b_rec).reshape(-1))),
            ("fc_mult", e.const(f"fm{op.index}", "int32_t", np.array([m for m, _ in in_ms + rec_ms], dtype=np.int32))),
            ("cf_mult", cf[0]),
            ("ig_mult", ig[0]),
            ("hid_mult", hid[0]),
            ("cell_tanh_mult", tanh_mult),
            ("in_shift", four([s for _, s in in_ms])),
            ("rec_shift", four([s for _, s in rec_ms])),
            ("cf_shift", cf[1]),
            ("ig_shift", ig[1]),
            ("hid_shift", hid[1]),
            ("cell_tanh_shift", tanh_shift),
            ("batch", batch),
            ("steps", steps),
            ("in_dim", in_dim),
            ("units", units),
            ("time_major", int(time_major)),
            ("cell_gate_sigmoid", int(int(op.options.get("fusedActivationFunction", ACT_TANH)) == ACT_SIGMOID)),
            ("cell_clip", quantized_clip),
            ("hidden_zp", h_zp),
        ],
        "mcuq_lstm_params",
    )


def lstm_state_tensors(info_ops: Sequence[OpInfo]) -> set[int]:
    """The variable tensors the LSTMs keep (their hidden and cell state)."""
    return {op.inputs[p] for op in info_ops if op.name == "UNIDIRECTIONAL_SEQUENCE_LSTM" for p in (HIDDEN, CELL) if _present(op, p)}
