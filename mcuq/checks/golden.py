"""Golden vectors read back from a generated project's C source (both runtimes use one naming)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mcuq.common.errors import ValidationFailed
from mcuq.model.info import NUMPY_DTYPES, ModelInfo, TensorInfo

GOLDEN_RE = re.compile(r"mcuq_golden_(?P<kind>in|out)_(?P<vec>\d+)_(?P<idx>\d+)\[(?P<n>\d+)\][^=;]*=\s*\{(?P<body>[^}]*)\}")


def _parse_values(body: str, dtype: str) -> np.ndarray:
    tokens = [tok.rstrip("f") for tok in re.split(r"[\s,]+", body) if tok]
    return np.array([float(t) for t in tokens] if dtype == "float32" else [int(t) for t in tokens], dtype=NUMPY_DTYPES[dtype])


def golden_from_project(project: Path, info: ModelInfo, source: str) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """(inputs, outputs) per golden vector, as the firmware will see them."""
    text = (project / source).read_text()
    found: dict[tuple[str, int, int], str] = {}
    for m in GOLDEN_RE.finditer(text):
        found[(m.group("kind"), int(m.group("vec")), int(m.group("idx")))] = m.group("body")
    count = 1 + max((k[1] for k in found), default=-1)
    if count == 0:
        raise ValidationFailed(f"{source}: no golden vectors found; regenerate with 'mcuq deploy --force'")

    def tensor(kind: str, v: int, i: int, t: TensorInfo) -> np.ndarray:
        try:
            return _parse_values(found[(kind, v, i)], t.dtype).reshape(t.shape)
        except (KeyError, ValueError):
            what = "input" if kind == "in" else "output"
            raise ValidationFailed(f"{source}: golden vector {v} {what} {i} is missing or malformed "
                                   f"(expected {int(np.prod(t.shape))} {t.dtype} values)") from None

    inputs = [[tensor("in", v, i, t) for i, t in enumerate(info.input_tensors)] for v in range(count)]
    outputs = [[tensor("out", v, i, t) for i, t in enumerate(info.output_tensors)] for v in range(count)]
    return inputs, outputs
