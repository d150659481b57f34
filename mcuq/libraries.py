"""The TensorFlow Lite Micro libraries boards build against: data, like the boards.

Each library is a data file in ``boards/libraries/`` listing the ``Add*`` methods of its
``MicroMutableOpResolver`` and the kernel ``[features]`` that change what a model computes;
the installed x86 ``tflite-micro`` wheel is read from its kernel registration symbols, so
``inspect`` always answers for the version installed. The TFLite Micro backend checks
generated resolvers against these lists (like TFLite Micro's own ``VerifyOpList``); the
toolchains build the libraries; ``mcuq.boards`` checks that a board names one.
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


# TFLite Micro's signal library: custom ops that MicroMutableOpResolver registers with its own
# Add* methods (tensorflow/lite/micro/micro_mutable_op_resolver.h, e.g. AddWindow() ->
# AddCustom("SignalWindow", tflm_signal::Register_WINDOW())). Kernels: signal/micro/kernels/.
# tests/test_library_ops.py checks this table against the header.
SIGNAL_ADD_METHODS = {
    "SignalDelay": "AddDelay",
    "SignalEnergy": "AddEnergy",
    "SignalFftAutoScale": "AddFftAutoScale",
    "SignalFilterBank": "AddFilterBank",
    "SignalFilterBankLog": "AddFilterBankLog",
    "SignalFilterBankSpectralSubtraction": "AddFilterBankSpectralSubtraction",
    "SignalFilterBankSquareRoot": "AddFilterBankSquareRoot",
    "SignalFramer": "AddFramer",
    "SignalIrfft": "AddIrfft",
    "SignalOverlapAdd": "AddOverlapAdd",
    "SignalPCAN": "AddPCAN",
    "SignalRfft": "AddRfft",
    "SignalStacker": "AddStacker",
    "SignalWindow": "AddWindow",
}
CUSTOM_PREFIX = "CUSTOM:"


def signal_op(op: str) -> bool:
    """Whether ``op`` (``CUSTOM:<code>`` as mcuq.model.info names custom ops) is a signal-library op."""
    return op.startswith(CUSTOM_PREFIX) and op[len(CUSTOM_PREFIX) :] in SIGNAL_ADD_METHODS


def add_method_name(op: str) -> str:
    """``CONV_2D`` -> ``AddConv2D``, ``BATCH_TO_SPACE_ND`` -> ``AddBatchToSpaceNd``,
    ``CUSTOM:SignalWindow`` -> ``AddWindow``."""
    if signal_op(op):
        return SIGNAL_ADD_METHODS[op[len(CUSTOM_PREFIX) :]]
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
    """Ops registered by the installed ``tflite-micro`` x86 interpreter: builtins by name, the
    signal library's custom ops as ``CUSTOM:<name>`` (as mcuq.model.info names custom ops)."""
    from mcuq.model.info import builtin_op_names

    spec = importlib.util.find_spec("tflite_micro")
    if spec is None or not spec.submodule_search_locations:
        return frozenset()
    lib = Path(next(iter(spec.submodule_search_locations))) / "python" / "tflite_micro" / "_runtime.so"
    if not lib.exists():
        return frozenset()
    data = lib.read_bytes()
    found = set(re.findall(rb"Register_([A-Z][A-Z0-9_]*)Ev", data))
    names = set(builtin_op_names().values())
    builtins = {n.decode() for n in found if n.decode() in names}
    # Signal-library custom ops: registered under their custom names (AddCustom("SignalWindow", ...)).
    signal = {CUSTOM_PREFIX + name for name in SIGNAL_ADD_METHODS if name.encode() + b"\0" in data}
    return frozenset(builtins | signal)


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
    # "current": the LSTM kernel of the x86 wheel (kernels/lstm_eval.cc, 2023 rewrite); "legacy":
    # the 2022 kernel, whose arena x86 TFLite Micro cannot predict (its own scratch, row sums and
    # op data): an LSTM's arena then comes from the library itself (deploy --tflm-source).
    lstm_kernel: str = "current"
    # "reference": svdf_common.cc (what the x86 wheel computes); "cmsis-nn-int16-state": CMSIS-NN's
    # arm_svdf_s8 / arm_svdf_state_s16_s8, which ignore the activation state's zero point and keep
    # an int8 state clamped to the int16 range, then truncated: equal to the reference only for an
    # int16 state with zero point 0 (the keyword-spotting form).
    svdf_kernel: str = "reference"

    def int16x8_missing(self, ops: list[str]) -> list[str]:
        """Ops of a 16x8 model this library has no int16-activation kernel for."""
        return [op for op in ops if op not in self.int16x8_ops and op not in TYPE_AGNOSTIC_OPS and not op.startswith(CUSTOM_PREFIX)]


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
            lstm_kernel=str(raw.get("lstm_kernel", "current")),
            svdf_kernel=str(raw.get("svdf_kernel", "reference")),
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
