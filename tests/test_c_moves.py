"""Plain-C runtime, data moves (SLICE, SPLIT_V, PACK, REVERSE_V2; SPLIT/UNPACK pieces placed
inside their input), int8 and 16x8: a few tf.function models that use each op over its edge
cases (size -1, 3-D tensors, reversed channel axis moving int16 byte pairs, uneven pieces,
pack along the outermost and an inner axis, zero points away from 0), converted once per
session and required bit-exact with the x86 TFLite Micro."""

from __future__ import annotations

import pytest
from test_c_int16 import assert_bit_exact_16x8, convert_fn_16x8
from test_c_ops_extra import convert_fn
from test_c_runtime import _assert_bit_exact

from mcuq.backends.c.program import compile_model
from mcuq.model.info import ModelInfo

pytestmark = pytest.mark.slow
MOVES = {"SLICE", "SPLIT_V", "PACK", "REVERSE_V2"}


def _moves(x, y):
    import tensorflow as tf

    return (
        tf.slice(x, [0, 1, 2, 0], [1, 3, -1, 2]),  # size -1: up to the end
        tf.slice(tf.reshape(x, (1, 30, 3)), [0, 7, 1], [1, 11, 2]),  # 3-D
        tf.reverse(x, [2]),
        tf.reverse(x, [-1]),  # channels: int16 elements keep their byte order
        tf.reverse(x, [1, 2]),
        *tf.split(x, [1, 3, 2], axis=2),  # SPLIT_V, uneven pieces, 5 outer rows: copied
        tf.stack([x, y], axis=3),  # PACK along an inner axis
        tf.stack([x, y], axis=0),  # along the outermost one
    )


@pytest.fixture(scope="session")
def moves_int8() -> ModelInfo:
    return convert_fn(_moves, [(1, 5, 6, 3), (1, 5, 6, 3)], loc=1.0)


def _pieces(x, y, z):
    """Split along the outermost non-unit axis, each piece used by a later op: the pieces can
    live inside the input; a slice of leading rows and a reverse of a unit axis likewise (each
    the last reader of its input: the planner aliases only then); PACK's inputs can be written
    inside its output."""
    import tensorflow as tf

    a, b, c = tf.split(tf.nn.relu(x), [2, 3, 1], axis=1)
    s = tf.slice(y, [0, 1, 0], [1, 3, -1]) * 2.0  # of the model input itself
    u = tf.reverse(z, [0])
    return a * 2.0, b * 3.0, c * 0.5, s, tf.stack([u * 3.0, u * -0.5], axis=1)


PIECES_SHAPES = [(1, 6, 4), (1, 5, 3), (1, 2, 5)]


@pytest.fixture(scope="session")
def pieces_int8() -> ModelInfo:
    return convert_fn(_pieces, PIECES_SHAPES, loc=0.5)


def test_moves_int8_bit_exact(moves_int8):
    assert set(moves_int8.op_names) >= MOVES, moves_int8.op_names
    _assert_bit_exact(moves_int8, n=16)


def test_moves_int16_bit_exact():
    info = convert_fn_16x8(_moves, [(1, 5, 6, 3), (1, 5, 6, 3)])
    assert set(info.op_names) >= MOVES, info.op_names
    assert_bit_exact_16x8(info, n=12)


def test_split_pieces_and_windows_are_aliases_not_copies(pieces_int8):
    """SPLIT_V along the outermost non-unit axis, a SLICE of leading rows and a REVERSE_V2 of a
    unit axis copy nothing: the planner places each output inside the input (and PACK's inputs
    are written inside its output), RAM stays at the liveness bound, and the outputs are still
    bit-exact."""
    info = pieces_int8
    program = compile_model(info)
    plan = program.plan
    assert plan is not None and plan.arena_bytes == plan.lower_bound
    calls = {c.op_index: c for c in program.calls}
    seen = set()
    for op in info.ops:
        if op.name not in MOVES:
            continue
        seen.add(op.name)
        assert calls[op.index].function == "mcuq_copy" and dict(calls[op.index].args)["n"] == 0, op.name
        if op.name == "PACK":
            assert [plan.tensor_offset[i] for i in op.inputs] == [plan.tensor_offset[op.outputs[0]] + k * 10 for k in range(2)]
            continue
        src = plan.tensor_offset[op.inputs[0]]
        assert all(src <= plan.tensor_offset[o] < src + info.tensors[op.inputs[0]].nbytes for o in op.outputs), op.name
    split = next(op for op in info.ops if op.name == "SPLIT_V")
    offsets = [plan.tensor_offset[o] - plan.tensor_offset[split.inputs[0]] for o in split.outputs]
    assert offsets == [0, 2 * 4, 5 * 4]
    assert seen == MOVES, info.op_names
    _assert_bit_exact(info, n=8)


def _arith(x, y, z):
    import tensorflow as tf

    return (
        tf.abs(x),
        tf.abs(3.0 * z),  # another scale
        tf.math.squared_difference(x, y),  # broadcast
        tf.math.squared_difference(x, z),
        tf.reduce_sum(x, axis=[1, 2]),
        tf.reduce_sum(x, axis=-1, keepdims=True),
        tf.reduce_sum(z, axis=1),
    )


ARITH = {"ABS", "SQUARED_DIFFERENCE", "SUM"}
ARITH_SHAPES = [(1, 4, 5, 3), (1, 1, 5, 1), (1, 4, 5, 3)]


@pytest.fixture(scope="session")
def arith_int8() -> ModelInfo:
    return convert_fn(_arith, ARITH_SHAPES, loc=0.7)


def test_abs_squared_difference_sum_int8_bit_exact(arith_int8):
    info = arith_int8
    assert set(info.op_names) >= ARITH, info.op_names
    _assert_bit_exact(info, n=16)


def test_abs_squared_difference_sum_int16_bit_exact():
    info = convert_fn_16x8(_arith, ARITH_SHAPES)
    assert set(info.op_names) >= ARITH, info.op_names
    assert_bit_exact_16x8(info, n=12)


def test_small_window_of_a_big_tensor_kept_late_is_copied():
    """A SLICE of two leading rows of a big tensor, read only at the end: aliasing would keep the
    whole tensor alive to the end, so the planner's copied plan is smaller and wins (the SLICE
    runs as a gather); still bit-exact."""
    import tensorflow as tf

    from mcuq.backends.c.planner import _aliases, _plan
    from mcuq.backends.c.program import RESHAPE_OPS

    def fn(x):
        s = tf.slice(tf.nn.relu(x), [0, 0, 0], [1, 2, -1])
        u = (x * 2.0) * 3.0
        return s + tf.slice(u, [0, 30, 0], [1, 2, -1]), u * 0.5  # s read last

    info = convert_fn(fn, [(1, 32, 8)], loc=0.5)
    program = compile_model(info)
    op = next(o for o in info.ops if o.name == "SLICE")
    assert next(c for c in program.calls if c.op_index == op.index).function == "mcuq_gather"
    aliased = _plan(info, {}, _aliases(info, set(RESHAPE_OPS), {op.index: (op.inputs[0], {op.outputs[0]: 0})}), {})
    assert aliased.tensor_offset[op.outputs[0]] == aliased.tensor_offset[op.inputs[0]]  # the alias plan does alias
    assert program.plan is not None and program.plan.arena_bytes < aliased.arena_bytes, (program.plan.arena_bytes, aliased.arena_bytes)
    _assert_bit_exact(info, n=8)


def test_moves_pass_the_avr_emulator_self_test(tmp_path, moves_int8):
    """The same int8 moves inside generated firmware for the ATmega2560 (simavr): the gather
    tables and SPLIT_V's piece sizes are read from flash there (pgm_read), which the host build
    does not exercise; the self-test is bit-exact with the x86 TFLite Micro's golden vectors."""
    from conftest import need
    from mcuq.deploy import DeployRequest, deploy

    need("avr-gcc")
    need("simavr")
    model = tmp_path / "moves.tflite"
    model.write_bytes(moves_int8.raw)
    result = deploy(DeployRequest(model=str(model), board="mega2560", runtime="c", out=str(tmp_path / "p")))
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    assert result.manifest["c_runtime"]["emulation"]["passed"], result.manifest["c_runtime"]["emulation"]
    model_c = (tmp_path / "p" / "src" / "mcuq_model.c").read_text()
    assert "mcuq_split(" in model_c and "mcuq_gather(" in model_c and "mcuq_concat(" in model_c


@pytest.mark.parametrize("which", ["moves", "arith"])
def test_new_ops_pass_the_cortex_m4_emulator_self_test(tmp_path, which, moves_int8, arith_int8):
    """The data moves and ABS / SQUARED_DIFFERENCE / SUM inside generated firmware for the
    nucleo_f446re (arm-none-eabi-gcc, qemu Cortex-M4): the self-test at boot is bit-exact with
    the x86 TFLite Micro's golden vectors, with the board's own compiler and flags."""
    from conftest import need
    from mcuq.deploy import DeployRequest, deploy

    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    info = moves_int8 if which == "moves" else arith_int8
    model = tmp_path / f"{which}.tflite"
    model.write_bytes(info.raw)
    result = deploy(DeployRequest(model=str(model), board="nucleo_f446re", runtime="c", out=str(tmp_path / "p")))
    assert result.ok, [c for c in result.validation.checks if not c.passed]
    assert result.manifest["c_runtime"]["emulation"]["passed"], result.manifest["c_runtime"]["emulation"]
