"""``mcuq validate --build``: the generated firmware, compiled against the board's own library.

The x86 check of ``validate`` runs the installed ``tflite-micro`` wheel; the board runs the
library its project pins, whose kernels can differ. This check compiles the project's
``src/`` files, unmodified, against that library (mcuq.backends.tflm.toolchain) and runs the
boot self-test:

- x86-64 with the library's portable kernels, for every board. The host's structs are
  64-bit, so the arena there is the declared one plus the measured 64-vs-32-bit difference
  (host minimum - target minimum, both found by bisection); the binary is built from a
  temporary copy whose only change is that one constant.
- the board's Cortex-M CPU in qemu, from the unmodified sources at the declared arena:
  self-test, flash/RAM from ``arm-none-eabi-size``, and the exact smallest arena.
- Xtensa (ESP32): no emulator here; host build only, and the output says so.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mcuq.backends.tflm import toolchain as tb
from mcuq.backends.tflm.section import TflmSection
from mcuq.checks.outcome import ValidationReport
from mcuq.common.console import SILENT, Console
from mcuq.model.info import parse_model

if TYPE_CHECKING:
    from mcuq.project.manifest import Manifest

ARENA_LINE = re.compile(r"(?i)(\b\w*arena\w*\s*=\s*|#define\s+\w*arena\w*\s+)(\d+)")
PROBE_CEILING = 4 * 1024 * 1024 - 256 * 1024  # below qemu's 4 MB RAM, stack and firmware


@dataclass
class TargetRun:
    """The self-test of one build (host or Cortex-M) and what was measured with it."""

    cpu: str
    label: str
    passed: bool
    detail: str
    arena_bytes: int
    true_min_bytes: int | None = None
    flash_bytes: int | None = None
    ram_bytes: int | None = None
    vectors: int = 0
    log: str = ""


@dataclass
class BuildOutcome:
    library: str
    declared_arena: int
    runs: list[TargetRun] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return bool(self.runs) and all(r.passed for r in self.runs)

    def run(self, cpu: str) -> TargetRun | None:
        return next((r for r in self.runs if r.cpu == cpu), None)


def declared_arena(project: Path, manifest: Manifest) -> int:
    return int(manifest.arena["target_bytes"])


def _copy_with_arena(project: Path, declared: int, arena: int, into: Path) -> Path:
    """A copy of the project's ``src/`` whose arena constant is ``arena`` (host run only)."""
    copy = into / "project"
    shutil.copytree(project / "src", copy / "src")
    changed = 0
    for header in sorted((copy / "src").rglob("*.h")):
        text = header.read_text(errors="replace")
        new = ARENA_LINE.sub(lambda m: m.group(1) + str(arena) if int(m.group(2)) == declared else m.group(0), text)
        if new != text:
            header.write_text(new)
            changed += 1
    if changed == 0:
        raise tb.BuildError(f"{project / 'src'}: no arena constant equal to the declared {declared} B found in a header")
    return copy


def _selftest_detail(result: tb.SelfTest, where: str) -> str:
    n = len(result.vectors)
    if result.passed:
        return f"self-test PASS ({n}/{n} golden vectors bit-exact) {where}"
    return f"self-test FAIL {where}: {result.problem}"


_MIN_ARENA_MEMO: dict[tuple[str, str, str, str], int] = {}


def _measure_min(tree: tb.LibraryTree, cpu: tb.Cpu, raw: bytes, ops: list[str], ceiling: int) -> int:
    """Exact minimum for this library, CPU and model; remembered for the process (it is a
    property of those three only: boards sharing them share the answer)."""
    key = (str(tree.root), tree.cache_tag, cpu.name, hashlib.sha256(raw).hexdigest())
    if key not in _MIN_ARENA_MEMO:
        fw = tb.build_probe(raw, ops, tree, cpu, ceiling)
        try:
            _MIN_ARENA_MEMO[key] = tb.min_arena(fw, ceiling)[0]
        finally:
            fw.close()
    return _MIN_ARENA_MEMO[key]


def _board_target(board_id: str) -> tb.Cpu | None:
    """The CPU of a shipped board file (its ``[cpu]`` table), None for a custom or unknown board."""
    from mcuq.boards import get_board
    from mcuq.common.errors import BoardError

    try:
        return tb.cpu_target(get_board(board_id).cpu)
    except BoardError:
        return None


def build_and_check(
    project: Path, manifest: Manifest, raw: bytes, source: str | None = None, console: Console = SILENT, emulate: bool = True
) -> BuildOutcome:
    """Build the project against its library for the host (and its Cortex-M in qemu); raises
    tb.BuildError when the library is missing or a file does not compile."""
    info = parse_model(raw, "the project's model")
    ops = info.op_names
    library_id = manifest.section(TflmSection).library.id
    tree = tb.find_library_tree(library_id, project, Path(source) if source else None)
    declared = declared_arena(project, manifest)
    outcome = BuildOutcome(f"{tree.library.name} {tree.version}", declared)
    ceiling = min(max(declared * 4, 256 * 1024), PROBE_CEILING)
    cpu = _board_target(manifest.board.id)
    target_min = None
    if cpu is not None and emulate and not tb.missing_tools(cpu):
        with console.step(f"building {project.name} against {outcome.library} for {cpu.label}"):
            target_min = _measure_min(tree, cpu, raw, ops, ceiling)
            fw = tb.build_project(project, tree, cpu, ops)
            try:
                result = tb.run_selftest(fw)
            finally:
                fw.close()
        where = (
            f"at the declared {declared} B arena; true minimum {target_min} B (planned/true {declared / target_min:.3f}); "
            f"flash {fw.flash_bytes} B, RAM {fw.ram_bytes} B (arm-none-eabi-size)"
        )
        outcome.runs.append(
            TargetRun(
                cpu.name,
                cpu.label,
                result.passed,
                _selftest_detail(result, where),
                declared,
                target_min,
                fw.flash_bytes,
                fw.ram_bytes,
                len(result.vectors),
                result.log,
            )
        )
    elif cpu is None:
        outcome.note = f"{manifest.board.architecture}: no emulator for this CPU here; host build only"
    else:
        missing = ", ".join(tb.missing_tools(cpu)) if emulate else "skipped"
        outcome.note = f"{cpu.name}: not run in qemu ({missing}); host build only"
    with console.step(f"building {project.name} against {outcome.library} for x86-64"):
        host_min = _measure_min(tree, tb.HOST, raw, ops, max(ceiling, declared * 4))
        if target_min is not None:
            extra, why = host_min - target_min, "measured 64-bit minus 32-bit minimum"
        else:
            extra = int(manifest.arena["host_bytes"]) - declared
            why = "64-bit struct estimate"
        host_arena = declared + max(extra, 0)
        with tempfile.TemporaryDirectory(prefix="mcuq-hostcopy-") as tmp:
            copy = _copy_with_arena(project, declared, host_arena, Path(tmp))
            fw = tb.build_project(copy, tree, tb.HOST, ops)
            try:
                result = tb.run_selftest(fw)
            finally:
                fw.close()
    where = f"at {host_arena} B (declared {declared} B + {max(extra, 0)} B, {why}; host minimum {host_min} B)"
    outcome.runs.insert(
        0,
        TargetRun(
            "x86-64",
            tb.HOST.label,
            result.passed,
            _selftest_detail(result, where),
            host_arena,
            host_min,
            vectors=len(result.vectors),
            log=result.log,
        ),
    )
    return outcome


def add_build_checks(
    report: ValidationReport, project: Path, manifest: Manifest, raw: bytes, source: str | None, console: Console
) -> BuildOutcome | None:
    """Run :func:`build_and_check` and record one check per build in ``report``."""
    try:
        outcome = build_and_check(project, manifest, raw, source, console)
    except tb.BuildError as exc:
        report.add("library build", False, str(exc))
        return None
    for run in outcome.runs:
        report.add(f"library build ({run.label})", run.passed, f"{outcome.library}: {run.detail}")
    if outcome.note:
        report.skip("library build (board CPU)", outcome.note)  # not run there: never an [ok]
    return outcome


# --------------------------------------------------------------------------- deploy with the library at hand

# Xtensa keeps 4-byte enums (perf_anchors.md 3a); arm-none-eabi defaults to short enums.
XTENSA_STAND_IN_FLAGS = ("-fno-short-enums",)
UNVERIFIED_NOTE = (
    "bit-exactness with {library} is unverified: the golden vectors and the arena come from the x86 "
    "tflite-micro wheel; run `mcuq validate --build` (library sources from `pio pkg install`, "
    "`idf.py reconfigure` or --tflm-source)"
)


@dataclass(frozen=True)
class LibraryMeasurement:
    """Golden outputs and the exact arena, measured with the library the board builds."""

    golden_out: list[list[Any]]
    true_min_bytes: int | None  # on the board's CPU (or its 32-bit stand-in); None: not measured
    host_min_bytes: int
    cpu_label: str
    library: str
    source: str


def _samples_bytes(samples: list[list[Any]]) -> bytes:
    return b"".join(x.tobytes() for sample in samples for x in sample)


def measure_with_library(
    raw: bytes,
    info_outputs: list[tuple[tuple[int, ...], str]],
    library_id: str,
    cpu: tb.Cpu | None,
    golden_in: list[list[Any]],
    source: Path | None,
    project: Path | None,
    console: Console = SILENT,
    resets: list[bool] | None = None,
) -> LibraryMeasurement | None:
    """None when the library sources are not at hand; raises tb.BuildError when they do not build."""
    import numpy as np

    try:
        tree = tb.find_library_tree(library_id, project, source)
    except tb.BuildError as exc:
        if "not found" in str(exc):
            return None
        raise
    info = parse_model(raw, "the quantized model")
    ops = info.op_names
    label = f"{tree.library.name} {tree.version}"
    ceiling = PROBE_CEILING
    flags: tuple[str, ...] = ()
    if cpu is None:
        cpu, flags = tb.shipped_cpu("cortex-m4"), XTENSA_STAND_IN_FLAGS
    true_min = None
    cpu_label = "x86-64 only"
    if not tb.missing_tools(cpu):
        cpu_label = cpu.label if not flags else f"32-bit stand-in ({cpu.label}, 4-byte enums like Xtensa)"
        with console.step(f"measuring the exact arena with {label} on {cpu_label}"):
            fw = tb.build_probe(raw, ops, tree, cpu, ceiling, flags)
            try:
                true_min, _ = tb.min_arena(fw, ceiling)
            finally:
                fw.close()
    with console.step(f"computing {len(golden_in)} golden vectors with {label} (x86-64 build)"):
        fw = tb.build_probe(raw, ops, tree, tb.HOST, ceiling)
        try:
            host_min, _ = tb.min_arena(fw, ceiling)
            out = tb.host_outputs(fw, ceiling, _samples_bytes(golden_in), len(golden_in), resets)
            # A fresh process must give the same bits, as on the x86 wheel
            # (mcuq.checks.golden.reproducible_golden): a model that reads memory nothing wrote gives
            # whatever the arena held. Independent vectors run in reverse order; sequences (resets:
            # a model with state) in their own order.
            order = list(range(len(golden_in))) if resets is not None else list(reversed(range(len(golden_in))))
            again = tb.host_outputs(fw, ceiling, _samples_bytes([golden_in[k] for k in order]), len(golden_in), resets)
        finally:
            fw.close()
    golden_out: list[list[Any]] = []
    offset = 0
    for _ in golden_in:
        vector = []
        for shape, dtype in info_outputs:
            n = int(np.prod(shape)) * np.dtype(dtype).itemsize
            vector.append(np.frombuffer(out[offset : offset + n], dtype=dtype).reshape(shape).copy())
            offset += n
        golden_out.append(vector)
    if offset != len(out):
        raise tb.BuildError(f"the host build of {label} wrote {len(out)} output bytes, expected {offset}")
    per_vector = offset // max(len(golden_in), 1)
    chunks = {k: again[j * per_vector : (j + 1) * per_vector] for j, k in enumerate(order)}
    reordered = b"".join(chunks[k] for k in range(len(golden_in)))
    if reordered != out:
        raise tb.BuildError(
            f"golden outputs of the host build of {label} differ between two runs: the model reads memory nothing wrote; "
            "re-export it with the TFLite converter"
        )
    return LibraryMeasurement(golden_out, true_min, host_min, cpu_label, label, str(tree.root))
