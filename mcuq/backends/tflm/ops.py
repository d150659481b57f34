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
from typing import TYPE_CHECKING

from mcuq.common.compat import tomllib
from mcuq.common.errors import BoardError, UnsupportedOpError
from mcuq.common.resources import boards_dir

if TYPE_CHECKING:
    from mcuq.model.info import ModelInfo

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


# Ops that only move or reinterpret bytes: they run for any activation type.
TYPE_AGNOSTIC_OPS = frozenset(
    {
        "RESHAPE",
        "SQUEEZE",
        "EXPAND_DIMS",
        "GATHER",
        "TRANSPOSE",
        "PACK",
        "UNPACK",
        "SPLIT",
        "SPLIT_V",
        "SLICE",
        "STRIDED_SLICE",
        "PAD",
        "PADV2",
        "SHAPE",
    }
)


@dataclass(frozen=True)
class LibraryFeatures:
    """Kernel features of one library that change what a model computes (``[features]``).

    Each value is checked against the library's sources; the TOML comments name the file
    and line, and tests/test_library_features.py compiles the sources to re-check them.
    """

    per_channel_fully_connected: bool
    per_channel_conv: bool
    int16x8_ops: frozenset[str]
    op_versions: str
    static_memory: bool
    struct_bytes_32bit: dict[str, int]

    def int16x8_missing(self, ops: list[str]) -> list[str]:
        """Ops of a 16x8 model this library has no int16-activation kernel for."""
        return [op for op in ops if op not in self.int16x8_ops and op not in TYPE_AGNOSTIC_OPS]


@dataclass(frozen=True)
class TflmLibrary:
    """A TFLite Micro distribution a board builds against (data from boards/libraries)."""

    id: str
    name: str
    version: str
    snapshot: str
    source: str
    add_methods: frozenset[str]
    features: LibraryFeatures
    architectures: tuple[str, ...] | None = None  # None: the library declares no architecture list

    def lists_architecture(self, core_architecture: str | None) -> bool:
        """Whether the library declares this Arduino core (unknown core or no list: True)."""
        return self.architectures is None or core_architecture is None or core_architecture in self.architectures

    def missing_ops(self, ops: list[str]) -> list[str]:
        return [op for op in ops if add_method_name(op) not in self.add_methods]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def _features(data: dict[str, object], path: Path) -> LibraryFeatures:
    raw = data.get("features")
    if not isinstance(raw, dict):
        raise BoardError(f"{path}: missing [features] table (per_channel_fully_connected, int16x8_ops, ...)")
    try:
        structs = raw["struct_bytes_32bit"]
        return LibraryFeatures(
            per_channel_fully_connected=bool(raw["per_channel_fully_connected"]),
            per_channel_conv=bool(raw["per_channel_conv"]),
            int16x8_ops=frozenset(raw["int16x8_ops"]),
            op_versions=str(raw["op_versions"]),
            static_memory=bool(raw["static_memory"]),
            struct_bytes_32bit={str(k): int(v) for k, v in structs.items()},
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise BoardError(f"{path}: [features] is incomplete or malformed ({exc})") from None


@cache
def load_library(library_id: str) -> TflmLibrary:
    """The library data file ``boards/libraries/<id>.toml``, with its kernel ``features``."""
    path = boards_dir() / "libraries" / f"{library_id}.toml"
    if not path.exists():
        raise BoardError(
            f"unknown TFLite Micro library '{library_id}' (no {path}); use one of: "
            + ", ".join(sorted(p.stem for p in (boards_dir() / "libraries").glob("*.toml")))
        )
    data = tomllib.loads(path.read_text())
    methods = data.get("add_methods")
    if methods == "installed-tflite-micro":
        methods = [add_method_name(op) for op in installed_tflm_ops()]
    if not isinstance(methods, list):
        raise BoardError(f'{path}: add_methods must be a list of Add* names or "installed-tflite-micro"')
    architectures = data.get("architectures")
    return TflmLibrary(
        library_id,
        data["name"],
        data["version"],
        data["snapshot"],
        data["source"],
        frozenset(methods),
        _features(data, path),
        tuple(architectures) if isinstance(architectures, list) else None,
    )


@lru_cache(maxsize=1)
def optimized_kernel_ops() -> dict[str, frozenset[str]]:
    """Per kernel set (boards' ``tflm.kernels``), the ops that have an optimized kernel."""
    data = tomllib.loads((boards_dir() / "libraries" / "kernel_sets.toml").read_text())
    return {name: frozenset(ops) for name, ops in data.items()}


def library_rule_violations(info: ModelInfo, library: TflmLibrary) -> list[str]:
    """One line per thing in the quantized model this library cannot compute correctly.

    The op-name check cannot see these: the library registers FULLY_CONNECTED, but the
    2023 kernel applies one scale to every channel of a per-channel Dense, so the board
    would compute different numbers from the ones mcuq validated.
    """
    problems: list[str] = []
    features = library.features
    if not features.per_channel_fully_connected:
        for op in info.ops:
            if op.name != "FULLY_CONNECTED" or len(op.inputs) < 2 or op.inputs[1] < 0:
                continue
            weights = info.tensors[op.inputs[1]]
            if weights.quant is not None and weights.quant.per_channel:
                problems.append(
                    f"op {op.index} FULLY_CONNECTED (Keras layer '{info.layer_of_op(op)}') has per-channel weights, but "
                    f"{library.label} applies one scale to all channels (features.per_channel_fully_connected = false); "
                    "quantize Dense per tensor (--per-channel none or auto)"
                )
    activation_int16 = any(t.dtype == "int16" and not t.is_constant for t in info.tensors)
    if activation_int16:
        missing = features.int16x8_missing(info.op_names)
        if missing:
            problems.append(
                f"{library.label} has no int16-activation (16x8) kernel for {', '.join(missing)}; quantize with --activations int8"
            )
    return problems


def check_library_rules(info: ModelInfo, library: TflmLibrary, where: str) -> None:
    """Raise a one-line error when the library cannot compute this model (see above)."""
    problems = library_rule_violations(info, library)
    if problems:
        raise UnsupportedOpError(f"{where}: {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""))


def unlisted_core_note(library: TflmLibrary, core_architecture: str | None) -> str | None:
    """What is and is not verified for a board whose core the pinned library does not list."""
    if library.lists_architecture(core_architecture):
        return None
    return (
        f"{library.label} lists {', '.join(library.architectures or ())}, not {core_architecture} (built with "
        "lib_compat_mode = soft). Verified: its kernels for this CPU, bit-exact in qemu (`mcuq validate --build`). "
        "Not verified: the build with this Arduino core, the hardware."
    )
