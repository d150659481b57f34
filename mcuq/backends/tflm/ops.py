"""Which ops TFLite Micro provides: the installed x86 build and each device library.

The host list is read from the ``tflite-micro`` wheel itself (its kernel registration
symbols), so ``inspect`` always answers for the version installed. Device libraries are
data files in ``boards/libraries/`` listing the ``Add*`` methods of their
``MicroMutableOpResolver``; generated resolvers are checked against them, like
TFLite Micro's own ``VerifyOpList``.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from mcuq.common.compat import tomllib
from mcuq.common.errors import BoardError
from mcuq.common.resources import boards_dir

# Names that the generic CONV_2D -> Conv2D rule gets wrong (tflite-micro's
# generate_micro_mutable_op_resolver_from_model.py carries the same exceptions).
ADD_METHOD_EXCEPTIONS = {
    "UNIDIRECTIONAL_SEQUENCE_LSTM": "AddUnidirectionalSequenceLSTM",
    "BATCH_MATMUL": "AddBatchMatMul",
    "CUMSUM": "AddCumSum",
    "PADV2": "AddPadV2",
    "SPLIT_V": "AddSplitV",
    "REVERSE_V2": "AddReverseV2",
    "SELECT_V2": "AddSelectV2",
    "DETECTION_POSTPROCESS": "AddDetectionPostprocess",
}


def add_method_name(op: str) -> str:
    """``CONV_2D`` -> ``AddConv2D``, ``BATCH_TO_SPACE_ND`` -> ``AddBatchToSpaceNd``."""
    if op in ADD_METHOD_EXCEPTIONS:
        return ADD_METHOD_EXCEPTIONS[op]
    words = []
    for word in op.split("_"):
        if re.fullmatch(r"\d+D", word) or re.fullmatch(r"L\d+", word):
            words.append(word)
        else:
            words.append(word[:1] + word[1:].lower())
    return "Add" + "".join(words)


@lru_cache(maxsize=1)
def installed_tflm_ops() -> frozenset[str]:
    """Builtin ops registered by the installed ``tflite-micro`` x86 interpreter."""
    from mcuq.model.info import builtin_op_names

    spec = importlib.util.find_spec("tflite_micro")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    lib = Path(next(iter(spec.submodule_search_locations))) / "python" / "tflite_micro" / "_runtime.so"
    if not lib.exists():
        return frozenset()
    found = set(re.findall(rb"Register_([A-Z][A-Z0-9_]*)Ev", lib.read_bytes()))
    names = set(builtin_op_names().values())
    return frozenset(n.decode() for n in found if n.decode() in names)


@dataclass(frozen=True)
class TflmLibrary:
    """A TFLite Micro distribution a board builds against (data from boards/libraries)."""

    id: str
    name: str
    version: str
    snapshot: str
    source: str
    add_methods: frozenset[str]

    def missing_ops(self, ops: list[str]) -> list[str]:
        return [op for op in ops if add_method_name(op) not in self.add_methods]


@cache
def load_library(library_id: str) -> TflmLibrary:
    path = boards_dir() / "libraries" / f"{library_id}.toml"
    if not path.exists():
        raise BoardError(f"unknown TFLite Micro library '{library_id}' (no {path}); use one of: "
                         + ", ".join(sorted(p.stem for p in (boards_dir() / "libraries").glob("*.toml"))))
    data = tomllib.loads(path.read_text())
    methods = data.get("add_methods")
    if methods == "installed-tflite-micro":
        methods = [add_method_name(op) for op in installed_tflm_ops()]
    if not isinstance(methods, list):
        raise BoardError(f"{path}: add_methods must be a list of Add* names or \"installed-tflite-micro\"")
    return TflmLibrary(library_id, data["name"], data["version"], data["snapshot"], data["source"], frozenset(methods))


@lru_cache(maxsize=1)
def optimized_kernel_ops() -> dict[str, frozenset[str]]:
    """Per kernel set (boards' ``tflm.kernels``), the ops that have an optimized kernel."""
    data = tomllib.loads((boards_dir() / "libraries" / "kernel_sets.toml").read_text())
    return {name: frozenset(ops) for name, ops in data.items()}
