"""``mcuq.lock.json``: the typed, versioned record of a generated project.

One definition is both written (by ``deploy``) and read (by ``validate`` and by the writer when
it regenerates), so the two cannot drift apart. Why it looks like this:

* ``schema_version`` says which layout a file has; a missing, older or malformed manifest is a
  one-line error, never a ``KeyError`` deep inside validation.
* Nothing host-specific or time-dependent is recorded: no timestamps, and a path (model,
  calibration and validation data, board file, library sources) is relative to the project
  when the file lies inside it, else the file's name only with its sha256 (``project_relative``,
  ``file_sha256``), so a project committed to git does not change when it is regenerated from
  the same model or moved, and does not leak the author's directory layout.
* ``files`` maps every generated file to its sha256: ``validate`` proves the project is exactly
  what mcuq wrote before it runs anything, and ``deploy --force`` replaces only files that
  still match.
* The runtime's own part (TFLite Micro library and resolver, plain-C buffer sizes, ...) is
  typed too: each backend declares it as a dataclass (``mcuq/backends/<runtime>/section.py``,
  found through the registry) stored under that class's ``KEY``. Every record is read back
  through :func:`load_record`, which checks each field against its type hint, so a damaged
  file fails in one line naming the key, and nothing downstream reads the JSON by string keys.
"""

from __future__ import annotations

import hashlib
import json
import platform
import types
import zlib
from collections.abc import Sized
from dataclasses import MISSING, asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints, is_typeddict

from mcuq.backends.registry import backend_names, section_type
from mcuq.common.errors import MCUQError
from mcuq.common.resources import boards_dir
from mcuq.project.records import ApiJSON, ArenaJSON, FitJSON, QuantizationJSON, WeightScalesJSON

# 3: the runtime's part is one typed record under its own key (tflm / c_runtime)
SCHEMA_VERSION = 3
MANIFEST = "mcuq.lock.json"
REGENERATE = "regenerate the project with 'mcuq deploy --force'"

T = TypeVar("T")

if TYPE_CHECKING:
    from mcuq.boards import Board
    from mcuq.frontend.converter import QuantizedModel
    from mcuq.model.info import ModelInfo


# What build_manifest reads of a deploy job and of a backend's plan (mcuq.backends.base.DeployJob
# and BackendPlan have it): protocols here, so the project stage imports nothing of backends/.
class JobFacts(Protocol):
    @property
    def quantized(self) -> QuantizedModel: ...
    @property
    def board(self) -> Board: ...
    @property
    def info(self) -> ModelInfo: ...
    @property
    def name(self) -> str: ...
    @property
    def runtime(self) -> str: ...
    @property
    def golden_in(self) -> Sized: ...
    @property
    def golden_source(self) -> str: ...
    @property
    def prefix(self) -> str: ...
    @property
    def labels(self) -> tuple[str, ...]: ...
    @property
    def labels_source(self) -> str | None: ...


class ArenaFacts(Protocol):
    def as_dict(self) -> ArenaJSON: ...


class FitFacts(Protocol):
    def as_dict(self) -> FitJSON: ...


class PlanFacts(Protocol):
    @property
    def arena(self) -> ArenaFacts: ...
    @property
    def fit(self) -> FitFacts: ...
    @property
    def section(self) -> RuntimeSection: ...
    @property
    def golden_computed_by(self) -> str | None: ...


# The data files every project carries, whatever its runtime: validate reads the model and the
# golden vectors from these (hashed) files, never from C.
INT8_MODEL_PATH = "mcuq/model_int8.tflite"
FLOAT_MODEL_PATH = "mcuq/float_model.tflite"


class ManifestError(MCUQError):
    """A project's manifest is missing, from another mcuq version, or damaged."""


class RuntimeSection(Protocol):
    """A backend's part of the manifest: a frozen dataclass stored under its ``KEY``."""

    KEY: ClassVar[str]


class Malformed(Exception):
    """A record does not match its dataclass: ``key`` is the dotted path of the bad value."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"'{key}' {problem}")
        self.key = key


def _kind(value: Any) -> str:
    return "null" if value is None else f"{type(value).__name__} {json.dumps(value, default=str)[:40]}"


def _type_name(hint: Any) -> str:
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(hint))
    if hint is type(None):
        return "null"
    origin = get_origin(hint)
    if origin is list:
        return "a list"
    if origin is dict or is_dataclass(hint) or is_typeddict(hint):
        return "an object"
    return getattr(hint, "__name__", str(hint))


def _value(hint: Any, value: Any, key: str) -> Any:
    """``value`` checked against ``hint`` (JSON types, unions, lists, dicts, nested dataclasses)."""
    if hint is Any:
        return value
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        for arg in get_args(hint):
            try:
                return _value(arg, value, key)
            except Malformed as exc:
                if exc.key != key:
                    raise  # the value has the right shape; something inside it is wrong
        raise Malformed(key, f"must be {_type_name(hint)}, got {_kind(value)}")
    if hint is type(None):
        if value is not None:
            raise Malformed(key, f"must be null, got {_kind(value)}")
        return None
    if origin is list:
        if not isinstance(value, list):
            raise Malformed(key, f"must be a list, got {_kind(value)}")
        (item,) = get_args(hint)
        return [_value(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise Malformed(key, f"must be an object, got {_kind(value)}")
        _, item = get_args(hint)
        return {k: _value(item, v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(hint, type) and is_dataclass(hint):
        return load_record(hint, value, key)
    if is_typeddict(hint):
        return _typed_dict(hint, value, key)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise Malformed(key, f"must be {_type_name(hint)}, got {_kind(value)}")
    return value


def _typed_dict(hint: Any, value: Any, key: str) -> dict[str, object]:
    """A JSON object checked against a TypedDict (mcuq.project.records): required keys present,
    every declared key of its type; keys it does not declare are kept as they are, so the file
    is written back byte for byte."""
    if not isinstance(value, dict):
        raise Malformed(key, f"must be an object, got {_kind(value)}")
    hints = get_type_hints(hint)
    for name in sorted(hint.__required_keys__):
        if name not in value:
            raise Malformed(f"{key}.{name}", "is missing")
    return {k: _value(hints[k], v, f"{key}.{k}") if k in hints else v for k, v in value.items()}


def load_record(cls: type[T], data: Any, key: str, **given: Any) -> T:
    """``data`` (parsed JSON) as the dataclass ``cls``, every field checked against its type
    hint; raises :class:`Malformed` naming the dotted key that is missing or of the wrong type.
    Fields in ``given`` are taken as they are (already typed); keys the dataclass does not
    declare are ignored."""
    if not isinstance(data, dict):
        raise Malformed(key, f"must be an object, got {_kind(data)}")
    hints = get_type_hints(cls)
    kwargs: dict[str, object] = dict(given)
    for f in fields(cls):  # type: ignore[arg-type]
        where = f"{key}.{f.name}" if key else f.name
        if f.name in given:
            continue
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise Malformed(where, "is missing")
            continue
        kwargs[f.name] = _value(hints[f.name], data[f.name], where)
    return cls(**kwargs)


def project_relative(path: str | Path | None, project: Path) -> str | None:
    """How a file deploy read is named in the project's files and manifest.

    Inside the project: relative to it (POSIX separators). Outside: its name only, never
    ``../..``, which would leak the author's folder layout and change with where the project
    sits; :func:`file_sha256` identifies the file instead. 'random' and module:function kept."""
    if path is None:
        return None
    text = str(path)
    if text == "random" or (":" in text and not Path(text).exists()):
        return text  # 'random' and module:function are not paths
    resolved, root = Path(text).resolve(), project.resolve()
    if resolved == root or root in resolved.parents:
        return resolved.relative_to(root).as_posix()
    return resolved.name


def file_sha256(path: str | Path | None) -> str | None:
    """sha256 of a file deploy read (what identifies it when only its name is recorded);
    None for a folder (SavedModel), a missing path or a special value."""
    if path is None or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_from_project(path: str | None, project: Path) -> str | None:
    """A recorded path as usable from the current folder (a file recorded by name only is looked
    for in the project folder; the caller treats a missing file as moved away)."""
    if path is None or path == "random" or (":" in path and not (project / path).exists()):
        return path
    return str(project / path)


@dataclass(frozen=True)
class BoardRecord:
    id: str
    file: str  # 'mcuq:boards/<id>.toml', or a user's board file (see project_relative)
    sha256: str
    architecture: str
    mcu: str


@dataclass(frozen=True)
class ModelRecord:
    name: str
    source: str | None  # see project_relative
    source_kind: str
    bytes: int
    crc32: str
    sha256: str
    ops: list[str]
    op_count: int
    tensor_count: int
    macs: int
    float_reference: str | None = None
    int8_reference: str | None = None
    source_sha256: str | None = None  # of the model file deploy read (None: a SavedModel folder)


@dataclass(frozen=True)
class GoldenRecord:
    count: int
    source: str
    computed_by: str


@dataclass(frozen=True)
class Manifest:
    """Everything ``validate`` needs to know about a project, and the hashes that prove its files."""

    mcuq_version: str
    tensorflow_version: str
    tflite_micro_version: str
    python: str
    runtime: str
    board: BoardRecord
    model: ModelRecord
    quantization: QuantizationJSON
    golden: GoldenRecord
    validation_data: str | None  # see project_relative
    arena: ArenaJSON
    fit: FitJSON
    # The backend's typed part (its SECTION dataclass), stored under SECTION.KEY
    runtime_section: RuntimeSection
    # --per-channel auto: which Dense quantization deploy kept, why, both arenas (None: no choice)
    weight_scales: WeightScalesJSON | None = None
    # The generated API: C prefix, header, class labels, readable input/output names
    api: ApiJSON | None = None
    files: dict[str, str] = field(default_factory=dict)
    user_files: list[str] = field(default_factory=list)
    validation_data_sha256: str | None = None
    schema_version: int = SCHEMA_VERSION

    def section(self, cls: type[T]) -> T:
        """The runtime section as the backend's own class (a backend asks for its own)."""
        if not isinstance(self.runtime_section, cls):
            raise ManifestError(
                f"{MANIFEST}: runtime '{self.runtime}' has a {type(self.runtime_section).__name__}, not a {cls.__name__}; {REGENERATE}"
            )
        return self.runtime_section

    def as_dict(self) -> dict[str, object]:
        """The JSON layout: schema_version first, the typed fields, the runtime's section under its key.
        Code reads the typed fields; this is only what is written and printed."""
        data: dict[str, object] = {"schema_version": self.schema_version}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "runtime_section":
                data[value.KEY] = asdict(value)
            elif f.name != "schema_version":
                data[f.name] = asdict(value) if is_dataclass(value) and not isinstance(value, type) else value
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False, default=_jsonable) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: malformed manifest (a JSON {type(data).__name__}, not an object); {REGENERATE}")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            older = "an older mcuq (no schema_version)" if version is None else f"schema version {version!r}"
            raise ManifestError(f"{where}: written by {older}; this mcuq reads schema version {SCHEMA_VERSION}: {REGENERATE}")
        try:
            runtime = _value(str, data.get("runtime"), "runtime")
            section_cls: type[RuntimeSection] | None = section_type(runtime)
            if section_cls is None:
                raise Malformed("runtime", f"'{runtime}' is not one of {', '.join(backend_names())}")
            if section_cls.KEY not in data:
                raise Malformed(section_cls.KEY, "is missing")
            section = load_record(section_cls, data[section_cls.KEY], section_cls.KEY)
            manifest = load_record(cls, data, "", runtime_section=section)
        except Malformed as exc:
            raise ManifestError(f"{where}: malformed manifest ({exc}); {REGENERATE}") from None
        _check_values(manifest, where)
        return manifest


def _jsonable(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _check_values(m: Manifest, where: str) -> None:
    """What the types alone do not say: the arena numbers validate runs with, a golden count."""
    problems = []  # the arena's integer target_bytes and host_bytes are checked by its type (ArenaJSON)
    if m.golden.count < 1:
        problems.append("'golden.count' must be a positive integer")
    if problems:
        raise ManifestError(f"{where}: malformed manifest ({'; '.join(problems)}); {REGENERATE}")


def read_manifest(project: Path) -> Manifest:
    """The project's manifest, or a one-line ManifestError saying what is wrong with it."""
    path = project / MANIFEST
    if not project.is_dir():
        raise ManifestError(f"{project}: no such project folder")
    if not path.is_file():
        raise ManifestError(f"{project}: no {MANIFEST}; this folder was not generated by 'mcuq deploy'")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{path}: damaged manifest ({type(exc).__name__}); {REGENERATE}") from None
    return Manifest.from_dict(data, str(path))


def api_record(job: JobFacts) -> ApiJSON:
    """What the generated API offers (its prefix, header, labels and tensor names), recorded so
    the summary and ``mcuq validate`` name them as the project does."""
    return {
        "prefix": job.prefix,
        "header": f"src/{job.prefix}_model.h",
        "labels": list(job.labels),
        "labels_source": job.labels_source,
        "inputs": list(job.info.input_names),
        "outputs": list(job.info.output_names),
    }


def build_manifest(job: JobFacts, plan: PlanFacts, out_dir: Path, validation_data: str | None, weight_scales: WeightScalesJSON | None) -> Manifest:
    """The typed record of what was generated and how (``mcuq.lock.json``, before the writer adds the
    file hashes); the backend's own section rides along."""
    from mcuq import __version__
    from mcuq.frontend.tf import tensorflow_version
    from mcuq.reference.host_tflm import tflm_version

    q, board, info = job.quantized, job.board, job.info
    # A backend that computed the golden outputs another way (the board's own library) says so.
    computed_by = plan.golden_computed_by or f"x86 tflite-micro {tflm_version()}"
    quantization: QuantizationJSON = {
        **q.manifest_entry(),
        "source": project_relative(q.source, out_dir),
        "calibration": relative_source(q.calibration_source, out_dir),
        "calibration_sha256": file_sha256(q.calibration_source),
    }
    model = ModelRecord(
        name=job.name,
        source=project_relative(q.source, out_dir),
        source_kind=q.source_kind,
        bytes=len(info.raw),
        crc32=f"{zlib.crc32(info.raw) & 0xFFFFFFFF:08x}",
        sha256=hashlib.sha256(info.raw).hexdigest(),
        ops=info.op_names,
        op_count=len(info.ops),
        tensor_count=len(info.tensors),
        macs=info.total_macs,
        float_reference=FLOAT_MODEL_PATH if q.float_tflite is not None else None,
        source_sha256=file_sha256(q.source),
    )
    return Manifest(
        mcuq_version=__version__,
        tensorflow_version=tensorflow_version(),
        tflite_micro_version=tflm_version(),
        python=platform.python_version(),
        runtime=job.runtime,
        board=BoardRecord(board.id, board_file_record(board, out_dir), board.sha256, board.architecture, board.mcu),
        model=model,
        quantization=quantization,
        golden=GoldenRecord(len(job.golden_in), job.golden_source, computed_by),
        validation_data=project_relative(validation_data, out_dir),
        arena=plan.arena.as_dict(),
        fit=plan.fit.as_dict(),
        runtime_section=plan.section,
        validation_data_sha256=file_sha256(validation_data),
        weight_scales=weight_scales,
        api=api_record(job),
    )


def board_file_record(board: Board, out_dir: Path) -> str:
    shipped = boards_dir()
    try:
        return f"mcuq:boards/{Path(board.path).resolve().relative_to(shipped.resolve()).as_posix()}"
    except ValueError:  # a user's board file: identified by its name and the sha256 beside it
        return project_relative(board.path, out_dir) or str(board.path)


def relative_source(source: str, out_dir: Path) -> str:
    """A data source description with its path as ``project_relative`` names it ('random' kept)."""
    relative = project_relative(source, out_dir) if source and Path(source).exists() else None
    return relative or source
