"""The TensorFlow Lite Micro backend's declarations: its section of ``mcuq.lock.json`` (under
the key ``tflm``), its table of a board file (``[tflm]``) and its deploy/validate options.

Kept apart from ``backend.py`` and importing only the registry (which imports nothing of mcuq),
so that the manifest, the board loader and the CLI read it without loading the backend.
``validate``, ``validate --build`` and the report read these fields, never keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from mcuq.backends.registry import BackendOption

# Deploy: where the board's library sources are (golden vectors and the exact arena from it).
TFLM_SOURCE = BackendOption(
    "tflm_source",
    str,
    "the board's TFLite Micro library sources: golden vectors and the exact arena then come from "
    "that library (default: the output folder's .pio/libdeps or managed_components, if present)",
    path=True,
    metavar="DIR",
)
BUILD = BackendOption(
    "build",
    bool,
    "TFLite Micro projects: compile src/ against the board's pinned library (x86-64, and the board's "
    "Cortex-M in qemu) and run the self-test; prints flash/RAM and the true smallest arena",
    commands=("validate",),
)
BUILD_SOURCE = BackendOption(
    "tflm_source",
    str,
    "where the library sources are (default: .pio/libdeps/<env>/ or managed_components/ in the project)",
    commands=("validate",),
    path=True,
    metavar="DIR",
    requires="build",
)
OPTIONS = (TFLM_SOURCE, BUILD, BUILD_SOURCE)

KERNEL_SETS = ("reference", "cmsis-nn-dsp", "cmsis-nn-nodsp", "esp-nn", "esp-nn-s3")
API_FLAVOURS = ("esp-idf", "arduino-2023")


@dataclass(frozen=True)
class TflmBoardSection:
    """[tflm] of a board file: the TensorFlow Lite Micro library the board's project pulls in
    (``mcuq.boards`` parses it against this declaration; ``board.section(TflmBoardSection)``)."""

    TABLE: ClassVar[str] = "tflm"
    TEXT_RULES: ClassVar[dict[str, tuple[str, str]]] = {
        "library": (r"[a-z0-9][a-z0-9_-]{0,59}", "a library id of boards/libraries (lower-case letters, digits, _-)"),
        "core_architecture": (r"[a-z0-9_]{1,40}", "an Arduino architecture name (lower-case letters, digits, '_')"),
        "component": (r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", "owner/name of an ESP-IDF component"),
        "component_version": (r"[~^=<>!]{0,2}[0-9][0-9A-Za-z.+*-]{0,39}", "a version (range), e.g. ~1.4.0"),
    }
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"kernels": KERNEL_SETS, "api_flavour": API_FLAVOURS}

    library: str
    api_flavour: str
    kernels: str
    # The Arduino core's architecture as library.properties names it (mbed_nano, stm32, ...):
    # compared with the library's declared architectures (item shown by `mcuq boards`).
    core_architecture: str | None = None
    component: str | None = None
    component_version: str | None = None

    def check(self, where: str) -> None:
        """The library must be one mcuq ships data for (raises BoardError naming the known ones)."""
        from mcuq.libraries import load_library

        load_library(self.library)


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
BOARD_SECTION = TflmBoardSection
