"""Store identical constant buffers once.

An unrolled recurrent layer uses the same weights at every step; the TFLite converter shares
one tensor per weight in the forms mcuq builds (measured: no duplicates), but a converter that
writes one copy per step would multiply the flash. This pass points every tensor at the first
buffer with the same bytes and empties the copies (buffer entries stay, so indices stay valid).
A model without duplicates is returned byte for byte.
"""

from __future__ import annotations

from typing import Any


def _payload(buffer: Any) -> bytes | None:
    data = getattr(buffer, "data", None)
    return bytes(bytearray(data)) if data is not None and len(data) > 0 else None


def duplicate_buffer_bytes(model: Any) -> int:
    """Bytes stored more than once in ``model`` (a ModelT)."""
    seen: set[bytes] = set()
    wasted = 0
    for buffer in model.buffers or []:
        data = _payload(buffer)
        if data is None:
            continue
        if data in seen:
            wasted += len(data)
        seen.add(data)
    return wasted


def dedupe_buffers(raw: bytes) -> tuple[bytes, int]:
    """(model with each distinct constant payload stored once, bytes saved)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(raw, 0))
    if not duplicate_buffer_bytes(model):
        return raw, 0
    first: dict[bytes, int] = {}
    remap: dict[int, int] = {}
    metadata = {int(m.buffer) for m in model.metadata or []}  # referenced by name, never remapped
    for index, buffer in enumerate(model.buffers):
        data = _payload(buffer)
        if data is None or index in metadata:
            continue
        keep = first.setdefault(data, index)
        if keep != index:
            remap[index] = keep
    for subgraph in model.subgraphs or []:
        for tensor in subgraph.tensors or []:
            tensor.buffer = remap.get(int(tensor.buffer), int(tensor.buffer))
    for index in remap:
        model.buffers[index].data = None
    builder = flatbuffers.Builder(len(raw))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    out = bytes(builder.Output())
    return out, len(raw) - len(out)
