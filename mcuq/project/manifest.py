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
import zlib
from collections.abc import Sized
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from mcuq.backends.registry import backend_names, section_type
from mcuq.common.errors import MCUQError
from mcuq.common.resources import boards_dir
from mcuq.project.records import ApiJSON, ArenaJSON, FitJSON, Malformed, QuantizationJSON, WeightScalesJSON, checked_value, load_record

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
            runtime = checked_value(str, data.get("runtime"), "runtime")
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


def build_manifest(
    job: JobFacts, plan: PlanFacts, out_dir: Path, validation_data: str | None, weight_scales: WeightScalesJSON | None
) -> Manifest:
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


def read_float_reference(project: Path, manifest: Manifest) -> bytes | None:
    """The float model deploy kept in the project (None: there is none to compare with)."""
    rel = manifest.model.float_reference
    return (project / rel).read_bytes() if rel and (project / rel).is_file() else None


def rewrites_note(manifest: Manifest) -> list[str]:
    """The note that layers were rewritten before quantizing: float vs int8 then compares with the
    rewritten model, and the reader must know it."""
    rewrites = manifest.quantization.get("rewrites")
    check = rewrites["float_check"] if rewrites else None
    if not rewrites or not check:
        return []
    return [
        f"mcuq rewrote {', '.join(r['layer'] for r in rewrites['layers'])} into int8-kernel ops before quantizing "
        f"(float outputs within {check['max_abs_diff']:.2g} of the original, limit {check['tolerance']:.2g}); "
        "float vs int8 below compares with the rewritten model in float"
    ]


VALIDATION_DATA = "validation data"


@dataclass
class DataLocation:
    """Where validate finds its validation data: ``path`` to run on, or ``missing`` (why the data
    deploy recorded cannot be used, naming the file to pass); ``notes`` for the report; ``name``
    the data as the project's files name it (for the reports, without the host's folders)."""

    path: str | None = None
    missing: str | None = None
    notes: list[str] = field(default_factory=list)
    name: str | None = None


def _short(digest: str) -> str:
    return f"sha256 {digest[:12]}..."


def find_validation_data(project: Path, data: str | None, manifest: Manifest) -> DataLocation:
    """The validation data to run on, or why the data deploy recorded cannot be used.

    ``--data`` wins (a one-line note when it is not the file deploy recorded). Otherwise the
    recorded data is used when it is still in the project. A file outside the project is recorded
    by name and sha256 only (no ../.. paths), so validate cannot find it by itself: ``missing``
    then names the file and says what to pass, for the caller to report instead of a silent PASS."""
    recorded, digest = manifest.validation_data, manifest.validation_data_sha256
    if data:
        found = DataLocation(data, name=project_relative(data, project))
        actual = file_sha256(data)
        if recorded and digest and actual and actual != digest:
            found.notes.append(  # named like the manifest does: the note goes into the reports too
                f"{VALIDATION_DATA}: --data {found.name} ({_short(actual)}) is not the file deploy recorded ('{recorded}', {_short(digest)}); "
                f"checked on {found.name}"
            )
        return found
    if not recorded:
        return DataLocation()
    path = resolve_from_project(recorded, project)
    what = f"'{recorded}'" + (f" ({_short(digest)})" if digest else "")
    if path is None or path == recorded:  # 'random' or module:function: not a file in the project
        return DataLocation(
            missing=f"{what} is not a file in the project, so float vs int8 accuracy was not measured; pass --data {recorded}"
        )
    if not Path(path).exists():
        where = "is missing from the project (moved or deleted since deploy)" if "/" in recorded else "is outside the project"
        return DataLocation(missing=f"{what} {where}, so float vs int8 accuracy was not measured; pass --data <path>/{Path(recorded).name}")
    found = DataLocation(path, name=project_relative(path, project))
    actual = file_sha256(path)
    if digest and actual and actual != digest:
        found.notes.append(
            f"{VALIDATION_DATA}: {recorded} changed since deploy ({_short(actual)}, recorded {_short(digest)}); checked on it as it is"
        )
    return found
