"""``mcuq.lock.json``: the typed, versioned record of a generated project.

One definition is both written (by ``deploy``) and read (by ``validate`` and by the writer when
it regenerates), so the two cannot drift apart. Why it looks like this:

* ``schema_version`` says which layout a file has; a missing, older or malformed manifest is a
  one-line error, never a ``KeyError`` deep inside validation.
* Nothing host-specific or time-dependent is recorded: no timestamps, and every path (model,
  calibration and validation data, board file) is relative to the project folder, so a project
  committed to git does not change when it is regenerated from the same model, and does not
  leak the author's directory layout.
* ``files`` maps every generated file to its sha256: ``validate`` proves the project is exactly
  what mcuq wrote before it runs anything, and ``deploy --force`` replaces only files that
  still match.
* The runtime's own part (TFLite Micro library and resolver, plain-C buffer sizes, ...) is a
  section the backend provides; it is stored at the top level under the backend's own keys.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from mcuq.common.errors import MCUQError

SCHEMA_VERSION = 2
MANIFEST = "mcuq.lock.json"


class ManifestError(MCUQError):
    """A project's manifest is missing, from another mcuq version, or damaged."""


def project_relative(path: str | Path | None, project: Path) -> str | None:
    """``path`` relative to the project folder (POSIX separators); special values kept as is."""
    if path is None:
        return None
    text = str(path)
    if text == "random" or (":" in text and not Path(text).exists()):
        return text  # 'random' and module:function are not paths
    try:
        return Path(os.path.relpath(Path(text).resolve(), project.resolve())).as_posix()
    except ValueError:  # another drive on Windows
        return Path(text).name


def resolve_from_project(path: str | None, project: Path) -> str | None:
    """Inverse of ``project_relative``: a recorded path as usable from the current folder."""
    if path is None or path == "random" or (":" in path and not (project / path).exists()):
        return path
    return str(project / path)


@dataclass(frozen=True)
class BoardRecord:
    id: str
    file: str  # relative to the project (a user's board file) or 'mcuq:boards/<id>.toml'
    sha256: str
    architecture: str
    mcu: str


@dataclass(frozen=True)
class ModelRecord:
    name: str
    source: str | None  # relative to the project
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
    quantization: dict[str, Any]
    golden: GoldenRecord
    validation_data: str | None
    arena: dict[str, Any]
    fit: dict[str, Any]
    runtime_section: dict[str, Any] = field(default_factory=dict)
    # --per-channel auto: which Dense quantization deploy kept, why, both arenas (None: no choice)
    weight_scales: dict[str, Any] | None = None
    # The generated API: C prefix, header, class labels, readable input/output names
    api: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    user_files: list[str] = field(default_factory=list)
    schema_version: int = SCHEMA_VERSION

    def as_dict(self) -> dict[str, Any]:
        """The JSON layout: typed fields, then the runtime's section at the top level."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "runtime_section"}
        data["board"], data["model"], data["golden"] = asdict(self.board), asdict(self.model), asdict(self.golden)
        clash = set(self.runtime_section) & set(data)
        if clash:
            raise ValueError(f"internal error: runtime section keys {sorted(clash)} clash with the manifest's own")
        return {"schema_version": self.schema_version, **{k: v for k, v in data.items() if k != "schema_version"}, **self.runtime_section}

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, sort_keys=False, default=_jsonable) + "\n"

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError(
                f"{where}: malformed manifest (a JSON {type(data).__name__}, not an object); "
                "regenerate the project with 'mcuq deploy --force'"
            )
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            older = "an older mcuq (no schema_version)" if version is None else f"schema version {version!r}"
            raise ManifestError(
                f"{where}: written by {older}; this mcuq reads schema version {SCHEMA_VERSION}: "
                "regenerate the project with 'mcuq deploy --force'"
            )
        own = {f.name for f in fields(cls)} - {"runtime_section"}
        try:
            kwargs: dict[str, Any] = {k: data[k] for k in own if k in data}
            kwargs["board"] = _record(BoardRecord, data["board"])
            kwargs["model"] = _record(ModelRecord, data["model"])
            kwargs["golden"] = _record(GoldenRecord, data["golden"])
            manifest = cls(**kwargs, runtime_section={k: v for k, v in data.items() if k not in own})
        except (KeyError, TypeError) as exc:
            raise ManifestError(
                f"{where}: malformed manifest ({type(exc).__name__}: {exc}); regenerate the project with 'mcuq deploy --force'"
            ) from None
        _check_types(manifest, where)
        return manifest


def _jsonable(value: Any) -> Any:
    return value.tolist() if hasattr(value, "tolist") else str(value)


def _record(cls: Any, data: Any) -> Any:
    if not isinstance(data, dict):
        raise TypeError(f"'{cls.__name__}' must be an object")
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in names})


def _check_types(m: Manifest, where: str) -> None:
    problems = []
    if not isinstance(m.files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in m.files.items()):
        problems.append("'files' must map paths to sha256 strings")
    if not isinstance(m.arena, dict) or not isinstance(m.arena.get("host_bytes"), int) or not isinstance(m.arena.get("target_bytes"), int):
        problems.append("'arena' needs integer target_bytes and host_bytes")
    if not isinstance(m.fit, dict):
        problems.append("'fit' must be an object")
    if not isinstance(m.model.bytes, int) or not isinstance(m.model.sha256, str):
        problems.append("'model' needs bytes and sha256")
    if not isinstance(m.golden.count, int) or m.golden.count < 1:
        problems.append("'golden.count' must be a positive integer")
    if not isinstance(m.runtime, str) or not isinstance(m.board.id, str):
        problems.append("'runtime' and 'board.id' must be strings")
    if problems:
        raise ManifestError(f"{where}: malformed manifest ({'; '.join(problems)}); regenerate the project with 'mcuq deploy --force'")


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
        raise ManifestError(f"{path}: damaged manifest ({type(exc).__name__}); regenerate the project with 'mcuq deploy --force'") from None
    return Manifest.from_dict(data, str(path))
