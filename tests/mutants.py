"""Seeded .tflite mutants and the in-process pipeline they are pushed through.

Shared by tests/test_robustness.py (hundreds of mutants) and benchmarks/robustness.py
(thousands). Mutations are raw-byte damage (bit flips, overwrites, 32-bit "interesting value"
writes, truncation) and structural edits made through the TFLite schema object API (an index,
a shape, a type, a quantization array, an options table), repacked into a valid flatbuffer so
the verifier, not the flatbuffer decoder, is what has to catch them. The "dataflow" family makes
graphs that decode and type-check but read a tensor nothing wrote (an op input rewired to an
unwritten tensor, ops reordered so one reads before the write, a graph output that is a constant
or an unwritten tensor): TFLite Micro runs those on whatever the arena held. ``has_hole`` says,
independently of mcuq's verifier, whether a file has such a hole, so a run can count false PASS.
"""

from __future__ import annotations

import random
import struct
import traceback
from collections.abc import Callable
from typing import Any

import flatbuffers
import numpy as np

from mcuq.common.errors import MCUQError

INTERESTING = [0, 1, -1, 2, 255, 256, 65535, 1000000, 0x7FFFFFFF, -0x80000000, 4096, 17]


def _schema() -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


def _pack(model: Any) -> bytes:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def bit_flips(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 8)):
        i = rng.randrange(len(data))
        data[i] ^= 1 << rng.randrange(8)
    return bytes(data)


def overwrite(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    n = rng.randint(1, 64)
    i = rng.randrange(max(1, len(data) - n))
    data[i : i + n] = bytes(rng.randrange(256) for _ in range(n))
    return bytes(data[: len(raw)])


def int32_write(raw: bytes, rng: random.Random) -> bytes:
    data = bytearray(raw)
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(0, len(data) - 4) & ~3
        data[i : i + 4] = struct.pack("<i", rng.choice(INTERESTING))
    return bytes(data)


def truncate(raw: bytes, rng: random.Random) -> bytes:
    return raw[: rng.randrange(len(raw))]


def _pick_tensor(model: Any, rng: random.Random) -> Any:
    sg = model.subgraphs[0]
    return sg.tensors[rng.randrange(len(sg.tensors))]


def _bad_index(rng: random.Random, n: int) -> int:
    return rng.choice([-2, -1, n, n + 1, 1000000, 2**31 - 1, rng.randrange(max(1, n))])


def op_index(model: Any, rng: random.Random) -> None:
    sg = model.subgraphs[0]
    op = sg.operators[rng.randrange(len(sg.operators))]
    field = rng.choice(["inputs", "outputs", "opcodeIndex"])
    if field == "opcodeIndex":
        op.opcodeIndex = rng.choice([len(model.operatorCodes), 1000, rng.randrange(len(model.operatorCodes))])
        return
    values = list(getattr(op, field))
    if values and rng.random() < 0.8:
        values[rng.randrange(len(values))] = _bad_index(rng, len(sg.tensors))
    elif values:
        values.pop()
    setattr(op, field, np.array(values, dtype=np.int32))


def graph_index(model: Any, rng: random.Random) -> None:
    sg = model.subgraphs[0]
    field = rng.choice(["inputs", "outputs"])
    values = list(getattr(sg, field))
    values[rng.randrange(len(values))] = _bad_index(rng, len(sg.tensors))
    setattr(sg, field, np.array(values, dtype=np.int32))


def tensor_shape(model: Any, rng: random.Random) -> None:
    t = _pick_tensor(model, rng)
    shape = list(t.shape) if t.shape is not None else []
    choice = rng.randrange(5)
    if choice == 0 and shape:
        shape[rng.randrange(len(shape))] *= rng.choice([2, 3, 100, 100000])
    elif choice == 1 and shape:
        shape[rng.randrange(len(shape))] = rng.choice([0, -1, -5, 1, 2**31 - 1])
    elif choice == 2:
        shape.append(rng.choice([1, 2, 7]))
    elif choice == 3 and shape:
        shape.pop(rng.randrange(len(shape)))
    else:
        shape = [rng.randint(1, 64) for _ in range(rng.randint(0, 6))]
    t.shape = np.array(shape, dtype=np.int32)
    if rng.random() < 0.5:
        t.shapeSignature = None


def tensor_fields(model: Any, rng: random.Random) -> None:
    t = _pick_tensor(model, rng)
    field = rng.choice(["buffer", "type", "isVariable"])
    if field == "buffer":
        t.buffer = _bad_index(rng, len(model.buffers))
    elif field == "type":
        t.type = rng.choice([0, 1, 2, 3, 4, 5, 7, 9, 10, 13, 17, 99])
    else:
        t.isVariable = not t.isVariable


def quantization(model: Any, rng: random.Random) -> None:
    candidates = [t for t in model.subgraphs[0].tensors if t.quantization is not None and t.quantization.scale is not None]
    if not candidates:
        return
    q = rng.choice(candidates).quantization
    choice = rng.randrange(5)
    if choice == 0:
        q.scale = np.array(list(q.scale)[:-1] or [], dtype=np.float32)
    elif choice == 1:
        q.zeroPoint = np.array(list(q.zeroPoint) + [0, 0], dtype=np.int64)
    elif choice == 2:
        q.quantizedDimension = rng.choice([-1, 1, 3, 9])
    elif choice == 3:
        q.scale = np.array([rng.choice([0.0, -1.0, float("nan"), float("inf"), 1e-30])] * len(q.scale), dtype=np.float32)
    else:
        q.zeroPoint = np.array([rng.choice([-1000, 127, 300])] * len(q.zeroPoint), dtype=np.int64)


def buffer_data(model: Any, rng: random.Random) -> None:
    full = [b for b in model.buffers if b.data is not None and len(b.data) > 0]
    if not full:
        return
    b = rng.choice(full)
    n = len(b.data)
    b.data = np.array(list(b.data)[: rng.randrange(n)] if rng.random() < 0.5 else list(b.data) + [0] * rng.randint(1, 64), dtype=np.uint8)


def options(model: Any, rng: random.Random) -> None:
    sg = model.subgraphs[0]
    op = sg.operators[rng.randrange(len(sg.operators))]
    if op.builtinOptions is not None and rng.random() < 0.7:
        keys = [k for k, v in vars(op.builtinOptions).items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if keys:
            setattr(op.builtinOptions, rng.choice(keys), rng.choice([0, -1, 7, 100, 2**31 - 1]))
            return
    op.builtinOptionsType = rng.choice([0, 1, 2, 3, 5, 9, 200])
    if rng.random() < 0.5:
        op.builtinOptions = None


def opcode(model: Any, rng: random.Random) -> None:
    code = model.operatorCodes[rng.randrange(len(model.operatorCodes))]
    choice = rng.randrange(3)
    if choice == 0:
        code.builtinCode = rng.choice([0, 3, 9, 22, 32, 127, 500])
        code.deprecatedBuiltinCode = min(code.builtinCode, 127)
    elif choice == 1:
        code.version = rng.choice([0, -1, 99])
    else:
        model.version = rng.choice([0, 2, 4])


def structure(model: Any, rng: random.Random) -> None:
    sg = model.subgraphs[0]
    choice = rng.randrange(4)
    if choice == 0 and len(sg.operators) > 1:
        sg.operators.pop(rng.randrange(len(sg.operators)))
    elif choice == 1:
        sg.tensors.pop()
    elif choice == 2:
        model.subgraphs.append(model.subgraphs[0])
    else:
        sg.operators = [*sg.operators, sg.operators[rng.randrange(len(sg.operators))]]


def _written(sg: Any, buffers: list[Any]) -> set[int]:
    """Tensors readable before the first op: graph inputs, constants (buffer data), variables."""
    tensors = sg.tensors or []
    done = {int(i) for i in (sg.inputs if sg.inputs is not None else [])}
    for i, t in enumerate(tensors):
        data = buffers[t.buffer].data if 0 <= t.buffer < len(buffers) else None
        if (data is not None and len(data) > 0) or t.isVariable:
            done.add(i)
    return done


def _unwritten_tensor(model: Any, like: int, rng: random.Random) -> int:
    """A new activation tensor shaped like ``like`` that no op writes (buffer 0 is empty)."""
    sg = model.subgraphs[0]
    src = sg.tensors[like]
    t = _schema().TensorT()
    t.shape, t.type, t.quantization, t.buffer = src.shape, src.type, src.quantization, 0
    t.name = f"hole{rng.randrange(1000)}".encode()
    sg.tensors.append(t)
    return len(sg.tensors) - 1


def dataflow(model: Any, rng: random.Random) -> None:
    """One dataflow hole, by construction (see the module docstring); the graph stays well typed
    where it can (a rewired input keeps the shape and type of the one it replaces)."""
    sg = model.subgraphs[0]
    ops = sg.operators
    writer = {int(v): o for o, op in enumerate(ops) for v in op.outputs}
    choice = rng.randrange(5)
    if choice == 0:  # an op input rewired to a tensor nothing writes
        o = rng.randrange(len(ops))
        slots = [k for k, v in enumerate(ops[o].inputs) if v >= 0 and v not in _written(sg, model.buffers)] or [0]
        k = rng.choice(slots)
        inputs = list(ops[o].inputs)
        inputs[k] = _unwritten_tensor(model, int(inputs[k]) if inputs[k] >= 0 else int(ops[o].outputs[0]), rng)
        ops[o].inputs = np.array(inputs, dtype=np.int32)
    elif choice == 1:  # ops reordered: a consumer moved before its producer
        pairs = [(o, writer[int(v)]) for o, op in enumerate(ops) for v in op.inputs if writer.get(int(v), o) < o]
        if not pairs:
            return dataflow_graph_output(model, rng)
        o, p = rng.choice(pairs)
        ops.insert(p, ops.pop(o))
    elif choice == 2:  # an op input rewired to a tensor of the same shape and type a later op writes

        def same(a: int, b: int) -> bool:
            ta, tb = sg.tensors[a], sg.tensors[b]
            return ta.type == tb.type and list(ta.shape if ta.shape is not None else []) == list(tb.shape if tb.shape is not None else [])

        triples = [
            (o, k, v)
            for o, op in enumerate(ops)
            for k, x in enumerate(op.inputs)
            for v, w in writer.items()
            if w >= o and x >= 0 and same(int(x), v)
        ]
        if not triples:
            o = rng.randrange(len(ops))
            triples = [(o, 0, int(ops[o].outputs[0]))]  # an op reading its own output
        o, k, v = rng.choice(triples)
        inputs = list(ops[o].inputs)
        inputs[k] = v
        ops[o].inputs = np.array(inputs, dtype=np.int32)
    else:
        dataflow_graph_output(model, rng)
    return None


def dataflow_graph_output(model: Any, rng: random.Random) -> None:
    """A graph output replaced by a constant weight tensor or by a tensor nothing writes."""
    sg = model.subgraphs[0]
    outputs = list(sg.outputs)
    k = rng.randrange(len(outputs))
    constants = [i for i, t in enumerate(sg.tensors) if model.buffers[t.buffer].data is not None and len(model.buffers[t.buffer].data)]
    if constants and rng.random() < 0.5:
        outputs[k] = rng.choice(constants)
    else:
        outputs[k] = _unwritten_tensor(model, int(outputs[k]), rng)
    sg.outputs = np.array(outputs, dtype=np.int32)


def dataflow_hole(raw: bytes, rng: random.Random) -> bytes:
    """``raw`` with one dataflow hole (for tests that need a hole, not a random mutant)."""
    model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
    dataflow(model, rng)
    return _pack(model)


def has_hole(raw: bytes) -> bool:
    """Whether the main subgraph of ``raw`` reads a tensor nothing wrote, or returns a constant or
    an unwritten tensor: written independently of mcuq's verifier, to judge its answers. False
    for files the schema cannot decode or whose indices are out of range (other defects)."""
    try:
        model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
        sg = model.subgraphs[0]
        n = len(sg.tensors)
        done = _written(sg, model.buffers)
        constants = {i for i in done if not sg.tensors[i].isVariable and i not in set(int(x) for x in sg.inputs)}
        for op in sg.operators or []:
            for v in op.inputs if op.inputs is not None else []:
                if 0 <= v < n and v not in done:
                    return True
            done.update(int(v) for v in (op.outputs if op.outputs is not None else []))
        return any(0 <= v < n and (v not in done or v in constants) for v in sg.outputs)
    except Exception:  # noqa: BLE001 - undecodable: not a dataflow question
        return False


SCHEMA_MUTATIONS: dict[str, Callable[[Any, random.Random], None]] = {
    "op index": op_index,
    "graph index": graph_index,
    "shape": tensor_shape,
    "tensor field": tensor_fields,
    "quantization": quantization,
    "buffer size": buffer_data,
    "options": options,
    "opcode": opcode,
    "structure": structure,
    "dataflow": dataflow,
}
BYTE_MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "bit flip": bit_flips,
    "overwrite": overwrite,
    "int32 write": int32_write,
    "truncate": truncate,
}
KINDS = [*BYTE_MUTATIONS, *SCHEMA_MUTATIONS]


def mutate(raw: bytes, kind: str, rng: random.Random) -> bytes:
    if kind in BYTE_MUTATIONS:
        return BYTE_MUTATIONS[kind](raw, rng)
    for _ in range(10):  # a value the field's type cannot hold is retried with another draw
        model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
        SCHEMA_MUTATIONS[kind](model, rng)
        try:
            return _pack(model)
        except (TypeError, struct.error, OverflowError):
            continue
    return bit_flips(raw, rng)


def mutants(seeds: list[bytes], count: int, seed: int) -> list[tuple[str, bytes]]:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        out.append((kind, mutate(seeds[i % len(seeds)], kind, rng)))
    return out


def run_pipeline(raw: bytes) -> tuple[str, str]:
    """Every in-process stage that reads a model: parse (verifier), inspect, full-int8 check,
    TFLite Micro op resolver + arena model, plain-C compile. ('accepted'|'rejected'|'traceback', detail)."""
    from mcuq.backends.c.program import compile_model
    from mcuq.frontend.fullint8 import check_full_int8, detect_mode
    from mcuq.inspection import format_inspection, inspect_info
    from mcuq.model.info import parse_model

    try:
        info = parse_model(raw, "mutant.tflite")
        format_inspection(inspect_info(info, "mutant.tflite"))
        activations, io = detect_mode(info)
        check_full_int8(info, activations, io, source="mutant.tflite")
        compile_model(info)
    except MCUQError as exc:
        return "rejected", str(exc)
    except Exception:  # noqa: BLE001 - this is what the fuzz test counts
        return "traceback", traceback.format_exc()
    return "accepted", ""
