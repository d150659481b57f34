"""The plain-C program as data: constant arrays, buffer references, one kernel call per op,
and the generated AVR kernels. Lowering (``program``) builds it; ``codegen`` prints it as C.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mcuq.backends.c.planner import MemoryPlan
from mcuq.model.info import ModelInfo

SCRATCH_ALIGN = 4


@dataclass
class ConstArray:
    name: str
    ctype: str
    values: np.ndarray
    flash: bool = True  # PROGMEM on AVR; elementwise operands stay in RAM
    aligned: bool = False  # 4-byte aligned (weights read a word at a time by the SIMD path)


@dataclass(frozen=True)
class BufferRef:
    """A place in the activation buffer, resolved to `ARENA + offset` when rendering."""

    kind: str  # "tensor" (an activation tensor) or "scratch" (an op's temporary)
    index: int  # tensor index or op index
    cast: str = ""  # C type to cast the pointer to (int32_t* scratch)


@dataclass(frozen=True)
class PointerList:
    """A constant array of input pointers (CONCATENATION), or of output pointers (``writable``:
    SPLIT, UNPACK), rendered as a local array."""

    name: str
    items: tuple[Any, ...]
    writable: bool = False


# A kernel argument: a number, the name of a constant array, or a buffer reference.
Value = int | str | BufferRef | PointerList


@dataclass
class KernelCall:
    """One op as one call with named arguments.

    With `params_type` the arguments become a per-layer `static const` struct of that type
    (designated initializers, in flash) passed by address; without it they are the positional
    arguments of `function`, each rendered with its name beside it.
    """

    op_index: int
    function: str
    args: list[tuple[str, Value]]
    params_type: str | None = None


@dataclass(frozen=True)
class AvrKernel:
    """One layer's generated code: `driver(&params, argument)` replaces the generic kernel call.

    CONV_2D and FULLY_CONNECTED: `void argument(const int8_t* in, int8_t* out, mcuq_sz row_stride)`
    computes every output channel of one pixel; `in` points at the window's first input, its
    rows `row_stride` bytes apart (the input's rows, or im2col's at the borders).
    DEPTHWISE_CONV_2D: `argument` is a flash table of one function per output column, `void
    f(const int8_t* const* rows, int8_t* out)`, each leaving out the taps that fall in that
    column's left or right padding (their zero-point products are in its biases); rows in the
    top or bottom padding point at a row of zero points.
    """

    op_index: int
    driver: str  # the C function in mcuq_kernels.c that walks the pixels ("": one pixel, called directly)
    argument: str  # what it is given besides the layer's parameters
    declarations: list[str]  # C lines (prototypes, the column table)
    asm: list[str]  # GNU as lines
    code_bytes: int  # flash of the functions (every instruction used is one word) and tables
    cycles_per_pixel: int  # an estimate (the slowest variant), for choosing layers under a flash budget
    replaces_bytes: int = 0  # flash of the layer's weight, bias and multiplier arrays, left out on AVR


@dataclass(frozen=True)
class StateArray:
    """State kept across invokes (an LSTM's hidden or cell state): a static array of the model,
    outside the activation buffer, holding `reset` after init and after `mcuq_reset()`."""

    name: str
    ctype: str
    count: int
    reset: int
    tensor: int  # the variable tensor it holds


@dataclass
class CProgram:
    """The compiled model: constants, one kernel call per op, and the memory plan."""

    info: ModelInfo
    constants: list[ConstArray] = field(default_factory=list)
    calls: list[KernelCall] = field(default_factory=list)
    plan: MemoryPlan | None = None
    scratch: dict[int, int] = field(default_factory=dict)  # op index -> scratch bytes
    simd: bool = False  # weights laid out for the 4-channel SIMD path (Cortex-M with DSP)
    avr_kernels: dict[int, AvrKernel] = field(default_factory=dict)  # op index -> generated AVR function
    state: list[StateArray] = field(default_factory=list)
    state_mode: str = "none"  # mcuq.model.state: "per_invoke" makes mcuq_invoke() reset the state first

    @property
    def arena_bytes(self) -> int:
        return self.plan.arena_bytes if self.plan else 0

    @property
    def flash_constant_bytes(self) -> int:
        return sum(c.values.nbytes for c in self.constants if c.flash)

    @property
    def state_bytes(self) -> int:
        """RAM of the state kept across invokes (static arrays outside the activation buffer)."""
        return sum(a.count * (1 if a.ctype == "int8_t" else 2) for a in self.state)

    @property
    def ram_constant_bytes(self) -> int:
        return sum(c.values.nbytes for c in self.constants if not c.flash)
