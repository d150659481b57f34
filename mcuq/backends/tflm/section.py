"""The TensorFlow Lite Micro backend's typed part of ``mcuq.lock.json`` (under the key ``tflm``).

Kept apart from ``backend.py`` and free of mcuq imports so that the manifest can read it
(``mcuq.project.manifest``, through the registry in ``mcuq.backends.base``) without loading
the backend. ``validate``, ``validate --build`` and the report read these fields, never keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class LibraryRecord:
    """The TFLite Micro distribution the project builds against (boards/libraries/<id>.toml)."""

    id: str
    name: str
    version: str
    snapshot: str
    kernels: str | None  # the board's kernel set (reference, cmsis-nn-dsp, esp-nn, ...)


@dataclass(frozen=True)
class ResolverRecord:
    """One ``Add*`` call of the generated op resolver, and how many operators use it."""

    op: str
    method: str
    count: int


@dataclass(frozen=True)
class LibraryCheck:
    """Whether the golden vectors and the arena came from the board's own library (its sources
    were at hand at deploy time) or from the x86 tflite-micro wheel (then ``note`` says what
    ``validate --build`` would prove)."""

    golden_from_library: bool
    library_sources: str | None  # where those sources were (project-relative, or a folder name)
    arena_measured_on: str | None
    note: str


@dataclass(frozen=True)
class TflmSection:
    KEY: ClassVar[str] = "tflm"

    library: LibraryRecord
    resolver: list[ResolverRecord]
    library_check: LibraryCheck


SECTION = TflmSection
