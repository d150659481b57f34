"""The inspected model: ops, tensors and quantization parameters of a .tflite file.

Every later stage (full-int8 check, op resolver, arena sizing, C arrays, validation)
reads the model through this one structure, parsed with the flatbuffer schema binding
that ships with ``tflite-micro`` rather than by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from mcuq.common.errors import ModelLoadError
from mcuq.model.verify import verify_model

# TensorType enum values of the TFLite schema.
TENSOR_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    11: "complex128",
    12: "uint64",
    13: "resource",
    14: "variant",
    15: "uint32",
    16: "uint16",
    17: "int4",
}
FLOAT_TYPES = {"float32", "float16", "float64"}
INT_RANGES = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767), "int32": (-(2**31), 2**31 - 1)}
NUMPY_DTYPES: dict[str, type] = {
    "int8": np.int8,
    "uint8": np.uint8,
    "int16": np.int16,
    "int32": np.int32,
    "int64": np.int64,
    "float32": np.float32,
}

# Ops whose input at this index is a bias (int32 in int8 mode, int64 in 16x8 mode).
BIAS_INPUT_INDEX = {"CONV_2D": 2, "DEPTHWISE_CONV_2D": 2, "FULLY_CONNECTED": 2, "TRANSPOSE_CONV": 3}


@lru_cache(maxsize=1)
def _schema() -> Any:
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated

    return schema_py_generated


@lru_cache(maxsize=1)
def builtin_op_names() -> dict[int, str]:
    ops = _schema().BuiltinOperator
    return {getattr(ops, name): name for name in dir(ops) if not name.startswith("_")}


@dataclass(frozen=True)
class Quantization:
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    shape_signature: tuple[int, ...] | None
    dtype: str
    quant: Quantization | None
    is_constant: bool
    is_variable: bool
    data: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def nbytes(self) -> int:
        itemsize = np.dtype(NUMPY_DTYPES.get(self.dtype, np.uint8)).itemsize
        return int(np.prod(self.shape, dtype=np.int64)) * itemsize if self.shape else itemsize

    @property
    def layer(self) -> str:
        return keras_layer_name(self.name)


@dataclass(frozen=True)
class OpInfo:
    index: int
    name: str  # BuiltinOperator name, e.g. CONV_2D, or CUSTOM:<code>
    version: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    macs: int
    options: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def is_custom(self) -> bool:
        return self.name.startswith("CUSTOM")


@dataclass(frozen=True)
class ModelInfo:
    """What mcuq knows about a .tflite model; ``raw`` keeps the exact bytes."""

    raw: bytes = field(repr=False)
    num_subgraphs: int
    tensors: tuple[TensorInfo, ...]
    ops: tuple[OpInfo, ...]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    metadata_names: tuple[str, ...]
    # Readable names of the graph inputs/outputs, in graph order: the serving signature's
    # names (Keras input/output names when mcuq converted the model), else the tensor name
    # without the converter's "serving_default_" prefix and ":0" suffix.
    input_names: tuple[str, ...] = ()
    output_names: tuple[str, ...] = ()

    @property
    def input_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[TensorInfo]:
        return [self.tensors[i] for i in self.outputs]

    @property
    def op_names(self) -> list[str]:
        """Distinct op names in order of first use (the order a resolver registers them)."""
        seen: dict[str, None] = {}
        for op in self.ops:
            seen.setdefault(op.name, None)
        return list(seen)

    @property
    def weight_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors if t.is_constant)

    @property
    def total_macs(self) -> int:
        return sum(op.macs for op in self.ops)

    def layer_of_op(self, op: OpInfo) -> str:
        """The Keras layer an op came from; graph outputs are named after the signature, so
        fall back to the op's inputs when its output carries no layer path."""
        for i in op.outputs:
            if i >= 0 and "/" in self.tensors[i].name:
                return self.tensors[i].layer
        for i in op.inputs:
            if i >= 0 and "/" in self.tensors[i].name:
                return f"the model output after {self.tensors[i].layer}"
        return self.tensors[op.outputs[0]].layer if op.outputs else "?"


def readable_tensor_name(tensor_name: str) -> str:
    """``serving_default_accel:0`` -> ``accel``: the name a person gave the tensor."""
    return re.sub(r":\d+$", "", tensor_name.removeprefix("serving_default_"))


def _signature_names(model: Any, sg: Any, tensors: list[TensorInfo]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Graph input/output names from the serving signature (tensor names as fallback)."""
    by_index: dict[int, str] = {}
    for sig in model.signatureDefs or []:
        if int(sig.subgraphIndex) != 0:
            continue
        for entry in list(sig.inputs or []) + list(sig.outputs or []):
            by_index.setdefault(int(entry.tensorIndex), _decode(entry.name))
    inputs = tuple(by_index.get(int(i)) or readable_tensor_name(tensors[int(i)].name) for i in sg.inputs)
    outputs = tuple(by_index.get(int(i)) or readable_tensor_name(tensors[int(i)].name) for i in sg.outputs)
    return inputs, outputs


def keras_layer_name(tensor_name: str) -> str:
    """Best guess of the Keras layer a tensor came from, for error messages.

    Converter tensor names look like ``model_1/conv1_1/Relu;model_1/conv1_1/BiasAdd``:
    the layer is the second path part with the export suffix ``_1`` removed.
    """
    first = tensor_name.split(";")[0]
    parts = [p for p in first.split("/") if p]
    if len(parts) >= 2:
        return re.sub(r"_\d+$", "", parts[1])
    return re.sub(r":\d+$", "", first)


def _decode(name: Any) -> str:
    return name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name or "")


def _options_dict(options: Any) -> dict[str, Any]:
    if options is None:
        return {}
    out: dict[str, Any] = {}
    for key, value in vars(options).items():
        if isinstance(value, (int, float, bool)):
            out[key] = value
    return out


def _tensor_from_schema(index: int, t: Any, buffers: list[Any]) -> TensorInfo:
    dtype = TENSOR_TYPE_NAMES.get(int(t.type), f"type{t.type}")
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    signature = tuple(int(d) for d in t.shapeSignature) if t.shapeSignature is not None else None
    quant = None
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale) > 0:
        zps = q.zeroPoint if q.zeroPoint is not None else [0] * len(q.scale)
        quant = Quantization(tuple(float(s) for s in q.scale), tuple(int(z) for z in zps), int(q.quantizedDimension))
    data: np.ndarray | None = None
    buf = buffers[t.buffer] if 0 < t.buffer < len(buffers) else None
    if buf is not None and buf.data is not None and len(buf.data) > 0 and dtype in NUMPY_DTYPES:
        data = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=NUMPY_DTYPES[dtype])
        if shape and data.size == int(np.prod(shape)):
            data = data.reshape(shape)
    is_constant = buf is not None and buf.data is not None and len(buf.data) > 0
    return TensorInfo(index, _decode(t.name), shape, signature, dtype, quant, is_constant, bool(t.isVariable), data)


def _op_macs(name: str, inputs: tuple[int, ...], outputs: tuple[int, ...], tensors: list[TensorInfo]) -> int:
    """Multiply-accumulates of one op, as STM32Cube.AI and MLPerf Tiny count them."""

    def shape(i: int) -> tuple[int, ...]:
        return tensors[i].shape if 0 <= i < len(tensors) else ()

    out = shape(outputs[0]) if outputs else ()
    n_out = int(np.prod(out)) if out else 0
    if name == "CONV_2D" and len(inputs) > 1:
        w = shape(inputs[1])  # [out_c, kh, kw, in_c]
        return n_out * int(np.prod(w[1:])) if len(w) == 4 else 0
    if name == "DEPTHWISE_CONV_2D" and len(inputs) > 1:
        w = shape(inputs[1])  # [1, kh, kw, out_c]
        return n_out * w[1] * w[2] if len(w) == 4 else 0
    if name == "FULLY_CONNECTED" and len(inputs) > 1:
        w = shape(inputs[1])  # [units, in]
        return n_out * w[-1] if w else 0
    if name == "TRANSPOSE_CONV" and len(inputs) > 2:
        w = shape(inputs[1])  # [out_c, kh, kw, in_c]
        x = shape(inputs[2])
        return int(np.prod(x)) * w[0] * w[1] * w[2] if len(w) == 4 and x else 0
    if name in {"ADD", "SUB", "MUL", "AVERAGE_POOL_2D", "MEAN", "SQUARED_DIFFERENCE"}:
        return n_out
    return 0


def parse_model(raw: bytes, source: str = "model") -> ModelInfo:
    """Parse .tflite bytes; any malformed input becomes a one-line ModelLoadError."""
    if len(raw) < 8 or raw[4:8] != b"TFL3":
        raise ModelLoadError(
            f"{source}: not a TFLite flatbuffer (missing the 'TFL3' identifier); pass a .tflite file written by the TFLite converter"
        )
    try:
        model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
        verify_model(model, raw, source)  # before anything reads an index, shape or buffer
        return _model_info_from_schema(model, raw)
    except ModelLoadError:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser failure means a damaged file
        raise ModelLoadError(f"{source}: the .tflite file is truncated or corrupted ({type(exc).__name__}); re-export it") from None


def _model_info_from_schema(model: Any, raw: bytes) -> ModelInfo:
    subgraphs = model.subgraphs or []
    if not subgraphs:
        raise ModelLoadError("the .tflite file has no subgraph; re-export it")
    sg = subgraphs[0]
    buffers = model.buffers or []
    tensors = [_tensor_from_schema(i, t, buffers) for i, t in enumerate(sg.tensors or [])]
    names = builtin_op_names()
    ops = []
    for i, op in enumerate(sg.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        builtin = max(int(code.builtinCode), int(code.deprecatedBuiltinCode))
        name = names.get(builtin, f"BUILTIN_{builtin}")
        if name == "CUSTOM":
            name = f"CUSTOM:{_decode(code.customCode)}"
        inputs = tuple(int(x) for x in (op.inputs if op.inputs is not None else []))
        outputs = tuple(int(x) for x in (op.outputs if op.outputs is not None else []))
        ops.append(
            OpInfo(i, name, int(code.version), inputs, outputs, _op_macs(name, inputs, outputs, tensors), _options_dict(op.builtinOptions))
        )
    metadata = tuple(_decode(m.name) for m in (model.metadata or []))
    input_names, output_names = _signature_names(model, sg, tensors)
    return ModelInfo(
        raw=raw,
        num_subgraphs=len(subgraphs),
        tensors=tuple(tensors),
        ops=tuple(ops),
        inputs=tuple(int(x) for x in sg.inputs),
        outputs=tuple(int(x) for x in sg.outputs),
        metadata_names=metadata,
        input_names=input_names,
        output_names=output_names,
    )


def quantize_array(values: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    """Float -> the tensor's integer type with its scale and zero point (as TFLite does)."""
    if tensor.quant is None or tensor.dtype in FLOAT_TYPES:
        return values.astype(NUMPY_DTYPES.get(tensor.dtype, np.float32))
    lo, hi = INT_RANGES[tensor.dtype]
    scaled = np.asarray(values, dtype=np.float32) / np.float32(tensor.quant.scale[0])
    q = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5) + tensor.quant.zero_point[0]  # std::round: ties away from zero
    return np.clip(q, lo, hi).astype(NUMPY_DTYPES[tensor.dtype])


def dequantize_array(values: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    if tensor.quant is None or tensor.dtype in FLOAT_TYPES:
        return values.astype(np.float32)
    return ((values.astype(np.float32) - tensor.quant.zero_point[0]) * tensor.quant.scale[0]).astype(np.float32)
