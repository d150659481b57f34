"""Golden vectors: stored once as data (``mcuq/golden.json``), proven equal to the C arrays.

``validate`` reads the golden vectors from the hashed data file, never by parsing C: the
generated-files check proves every file is what mcuq wrote, and ``prove_sources`` proved at
render time that the C arrays (both runtimes use one naming) hold exactly these values. The
JSON is written deterministically (sorted, no timestamps) so regenerating changes nothing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from mcuq.common.errors import MCUQError, ValidationFailed
from mcuq.model.info import NUMPY_DTYPES, ModelInfo, TensorInfo

GOLDEN_DATA = "mcuq/golden.json"
GOLDEN_RE = re.compile(r"mcuq_golden_(?P<kind>in|out)_(?P<vec>\d+)_(?P<idx>\d+)\[(?P<n>\d+)\][^=;]*=\s*\{(?P<body>[^}]*)\}")
Samples = list[list[np.ndarray]]


def golden_data(golden_in: Samples, golden_out: Samples, resets: list[bool] | None = None) -> bytes:
    """The golden vectors as deterministic JSON (dtype, shape, values per tensor). ``resets``:
    before which vectors the model's state is reset (mcuq.model.state); stored only for a model
    whose vectors form sequences, so stateless projects keep their bytes."""

    def tensors(values: list[np.ndarray]) -> list[dict[str, Any]]:
        return [
            {"dtype": str(np.asarray(v).dtype), "shape": list(np.asarray(v).shape), "values": np.asarray(v).reshape(-1).tolist()}
            for v in values
        ]

    vectors = [{"inputs": tensors(i), "outputs": tensors(o)} for i, o in zip(golden_in, golden_out)]
    data: dict[str, Any] = {"vectors": vectors}
    if resets is not None and not all(resets):
        data["resets"] = [bool(r) for r in resets]
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()


def golden_resets(project: Path, count: int) -> list[bool]:
    """Reset points of the project's golden vectors (every vector when none are stored)."""
    try:
        resets = json.loads((project / GOLDEN_DATA).read_text(encoding="utf-8")).get("resets")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        resets = None
    if not isinstance(resets, list) or len(resets) != count:
        return [True] * count
    return [bool(r) for r in resets]


def golden_from_project(project: Path, info: ModelInfo) -> tuple[Samples, Samples]:
    """(inputs, outputs) per golden vector, from the project's hashed data file."""
    path = project / GOLDEN_DATA
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        vectors = data["vectors"]
        inputs = [[_tensor(t, spec) for t, spec in zip(v["inputs"], info.input_tensors, strict=True)] for v in vectors]
        outputs = [[_tensor(t, spec) for t, spec in zip(v["outputs"], info.output_tensors, strict=True)] for v in vectors]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(
            f"{GOLDEN_DATA}: missing or malformed ({type(exc).__name__}); regenerate with 'mcuq deploy --force'"
        ) from None
    if not inputs:
        raise ValidationFailed(f"{GOLDEN_DATA}: no golden vectors; regenerate with 'mcuq deploy --force'")
    return inputs, outputs


def _tensor(record: dict[str, Any], spec: TensorInfo) -> np.ndarray:
    if record["dtype"] != spec.dtype or tuple(record["shape"]) != spec.shape:
        raise ValueError(f"tensor {spec.name}: {record['dtype']}{record['shape']} is not {spec.dtype}{list(spec.shape)}")
    return np.array(record["values"], dtype=NUMPY_DTYPES[spec.dtype]).reshape(spec.shape)


def _parse_values(body: str, dtype: str) -> np.ndarray:
    tokens = [tok.rstrip("f") for tok in re.split(r"[\s,]+", body) if tok]
    return np.array([float(t) for t in tokens] if dtype == "float32" else [int(t) for t in tokens], dtype=NUMPY_DTYPES[dtype])


def prove_sources(files: dict[str, str | bytes], info: ModelInfo, golden_in: Samples, golden_out: Samples) -> int:
    """At render time, once: every golden C array in the rendered files equals the golden data.
    Returns how many arrays were checked (a project without any is an internal error too)."""
    expected = {("in", v, i): a for v, s in enumerate(golden_in) for i, a in enumerate(s)}
    expected.update({("out", v, i): a for v, s in enumerate(golden_out) for i, a in enumerate(s)})
    checked = 0
    for path, text in files.items():
        if not isinstance(text, str):
            continue
        for m in GOLDEN_RE.finditer(text):
            key = (m.group("kind"), int(m.group("vec")), int(m.group("idx")))
            want = expected.get(key)
            got = _parse_values(m.group("body"), str(want.dtype) if want is not None else "int32")
            if want is None or not np.array_equal(got, np.asarray(want).reshape(-1)):
                raise MCUQError(f"internal error: {path} renders golden array {key} differently from the golden data; please report this")
            checked += 1
    if checked < len(expected):
        raise MCUQError(f"internal error: the rendered project holds {checked} of {len(expected)} golden arrays; please report this")
    return checked
