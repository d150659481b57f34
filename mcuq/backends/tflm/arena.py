"""Tensor-arena sizing for the target, from a measurement on the host.

The x86 TFLite Micro gives the smallest arena that allocates and invokes the model. The
device differs in two known ways (docs/arena.md, sections 2 and 3):
pointer-sized structs are half as big on a 32-bit MCU, and optimized kernels (CMSIS-NN,
ESP-NN) request scratch buffers the reference kernels do not. Only the exactly known
struct savings are subtracted; the scratch is added; a stated margin covers the rest,
because a too-small arena can corrupt a device silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcuq.model.info import ModelInfo, OpInfo

if TYPE_CHECKING:
    from mcuq.project.records import ArenaJSON

ALIGN = 16
MARGIN_FRACTION = 0.05
MARGIN_MIN_BYTES = 256
# With the exact minimum of the board's library measured, the margin only has to absorb
# what the measurement cannot see (another compiler version, flags): a few percent.
LIBRARY_MARGIN_FRACTION = 0.02
LIBRARY_MARGIN_MIN_BYTES = 64

# 64-bit minus 32-bit sizes (TF_LITE_STATIC_MEMORY builds): docs/arena.md section 2.
EVAL_TENSOR_DELTA = 24 - 12  # per tensor in the subgraph
NODE_DELTA = 64 - 32  # NodeAndRegistration per op
IO_DELTA = (64 - 32) + (8 - 4) + (24 - 12)  # TfLiteTensor + pointer + TfLiteAffineQuantization per I/O
SUBGRAPH_DELTA = 16 - 8


def align_up(n: int, to: int = ALIGN) -> int:
    return (n + to - 1) // to * to


def struct_delta(info: ModelInfo) -> int:
    """Bytes the 64-bit host arena holds that a 32-bit MCU does not (exactly known part)."""
    n_io = len(info.inputs) + len(info.outputs)
    return EVAL_TENSOR_DELTA * len(info.tensors) + NODE_DELTA * len(info.ops) + IO_DELTA * n_io + SUBGRAPH_DELTA


def _shape(info: ModelInfo, index: int) -> tuple[int, ...]:
    return info.tensors[index].shape if index >= 0 else ()


def _conv_geometry(info: ModelInfo, op: OpInfo) -> tuple[int, int, int, int, int, int, int]:
    _, h, w, cin = _shape(info, op.inputs[0])
    wshape = _shape(info, op.inputs[1])
    cout = _shape(info, op.outputs[0])[-1]
    return h, w, cin, wshape[1], wshape[2], cout, int(op.options.get("padding", 1))


def _align(n: int, to: int) -> int:
    return (n + to - 1) // to * to


def op_scratch_bytes(info: ModelInfo, op: OpInfo, kernels: str) -> int:
    """Scratch an optimized kernel requests for one op (0 for the reference kernels); docs/arena.md section 3."""
    if kernels == "reference":
        return 0
    name = op.name
    if name == "SOFTMAX" and kernels.startswith("esp-nn"):
        return 4 * _shape(info, op.inputs[0])[-1]
    if name not in ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D") or len(_shape(info, op.inputs[0])) != 4:
        return 0
    if name == "AVERAGE_POOL_2D":
        return 4 * _shape(info, op.inputs[0])[-1] if kernels == "cmsis-nn-dsp" else 0
    h, w, cin, kh, kw, cout, padding = _conv_geometry(info, op)
    stride_1 = op.options.get("strideW", 1) == 1 and op.options.get("strideH", 1) == 1
    same_pad = padding == 0  # TFLite Padding enum: SAME = 0, VALID = 1
    if kernels.startswith("cmsis-nn"):
        if name == "CONV_2D":
            if kh == 1 and kw == 1:
                return 0  # arm_convolve_1x1_s8(_fast): no buffer with GCC
            return 4 * _align(kh * kw * cin, 4)  # im2col, arm_convolve_s8_get_buffer_size
        mult = int(op.options.get("depthMultiplier", 1))
        if kernels == "cmsis-nn-nodsp" or mult != 1 or (kh == 3 and kw == 3):
            return 0
        return 2 * cin * kh * kw
    if kernels == "esp-nn-s3":
        if name == "CONV_2D":
            if kh == 1 and kw == 1 and stride_1:
                c8 = _align(cin, 8)
                return (h * w * c8 if cin % 8 else 0) + c8 * cout + (16 * c8 if h * w >= 8 else 0) + 64
            padded = (w + kw - 1) * (h + kh - 1) * cin if same_pad else 0
            return padded + kh * kw * _align(cin, 16) * cout + 4 * cout + 64
        filter_bytes = kh * kw * cout
        if kh == 3 and kw == 3 and cin % 16 == 0:
            padded = (w + 2) * (h + 2) * cin if same_pad else 0
            return filter_bytes + padded + 16
        return 2 * (filter_bytes + h * w * cin) + 32
    return 0  # esp-nn on ESP32 / ESP32-C3: generic kernels request no conv scratch


@dataclass(frozen=True)
class ArenaPlan:
    host_min_bytes: int
    struct_delta_bytes: int
    scratch_bytes: int
    scratch_op: str | None
    margin_bytes: int
    target_bytes: int
    host_bytes: int
    kernels: str
    overridden: bool = False
    # Set when the board's own library was at hand: its exact minimum and where it was measured.
    library_min_bytes: int | None = None
    measured_on: str = ""

    @property
    def how(self) -> str:
        if self.library_min_bytes is not None and not self.overridden:
            return (
                f"exact minimum {self.library_min_bytes} B with {self.measured_on} (bisection) + {self.margin_bytes} B margin "
                f"({int(LIBRARY_MARGIN_FRACTION * 100)}%, min {LIBRARY_MARGIN_MIN_BYTES} B), 16-byte aligned"
            )
        if self.overridden:
            return f"set by --arena-size ({self.target_bytes} B); x86 minimum measured {self.host_min_bytes} B"
        scratch = (
            f" + {self.scratch_bytes} B {self.kernels} scratch ({self.scratch_op})"
            if self.scratch_bytes
            else f" + 0 B scratch ({self.kernels})"
        )
        return (
            f"x86 TFLite Micro minimum {self.host_min_bytes} B (bisection) - {self.struct_delta_bytes} B 64->32-bit structs"
            f"{scratch} + {self.margin_bytes} B margin ({int(MARGIN_FRACTION * 100)}%, min {MARGIN_MIN_BYTES} B), 16-byte aligned"
        )

    def as_dict(self) -> ArenaJSON:
        """The manifest's ``arena``: every field in declaration order, then ``how``."""
        return {
            "host_min_bytes": self.host_min_bytes,
            "struct_delta_bytes": self.struct_delta_bytes,
            "scratch_bytes": self.scratch_bytes,
            "scratch_op": self.scratch_op,
            "margin_bytes": self.margin_bytes,
            "target_bytes": self.target_bytes,
            "host_bytes": self.host_bytes,
            "kernels": self.kernels,
            "overridden": self.overridden,
            "library_min_bytes": self.library_min_bytes,
            "measured_on": self.measured_on,
            "how": self.how,
        }


def plan_arena(info: ModelInfo, host_min: int, kernels: str, override: int | None = None) -> ArenaPlan:
    delta = struct_delta(info)
    per_op = [(op_scratch_bytes(info, op, kernels), f"op {op.index} {op.name}") for op in info.ops]
    scratch, where = max(per_op, default=(0, None))
    # Scratch of one op lives only while that op runs, so the largest one bounds the growth.
    base = max(host_min - delta, 0) + align_up(scratch)
    margin = align_up(max(int(base * MARGIN_FRACTION), MARGIN_MIN_BYTES))
    target = align_up(base + margin)
    if override is not None:
        target = align_up(override)
        return ArenaPlan(host_min, delta, scratch, where if scratch else None, 0, target, target + delta, kernels, overridden=True)
    return ArenaPlan(host_min, delta, scratch, where if scratch else None, margin, target, target + delta, kernels)


def plan_arena_from_library(
    info: ModelInfo, host_min: int, kernels: str, library_min: int, measured_on: str, override: int | None = None
) -> ArenaPlan:
    """The arena from the exact minimum of the library that runs (planned/true 1.00-1.10).

    ``host_bytes`` (what validate gives the x86 wheel) keeps the wheel's own excess over the
    32-bit minimum, so the x86 check still allocates.
    """
    margin = align_up(max(-(-library_min * int(LIBRARY_MARGIN_FRACTION * 1000) // 1000), LIBRARY_MARGIN_MIN_BYTES))
    target = align_up(library_min + margin) if override is None else align_up(override)
    host_extra = max(host_min - library_min, struct_delta(info) if override is not None else 0, 0)
    return ArenaPlan(
        host_min,
        host_extra,
        0,
        None,
        margin if override is None else 0,
        target,
        target + host_extra,
        kernels,
        overridden=override is not None,
        library_min_bytes=library_min,
        measured_on=measured_on,
    )
