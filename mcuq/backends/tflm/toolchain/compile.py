"""Compile only the framework plus the kernels a model registers, cached per (library, version,
CPU, flags, file), and link the project's own ``src/`` files with the framework shim.

The whole library takes 10-15 minutes per CPU on 2 cores; this takes about a minute once.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mcuq.backends.tflm.toolchain.library_tree import LibraryTree
from mcuq.backends.tflm.toolchain.targets import (
    COMMON_C,
    COMMON_CXX,
    COMPILE_TIMEOUT,
    JOBS_ENV,
    OPT,
    OPTIONAL,
    PCH_HEADERS,
    BuildError,
    Cpu,
    cache_root,
    shim_dir,
)
from mcuq.libraries import add_method_name


def _jobs() -> int:
    try:
        return max(1, int(os.environ.get(JOBS_ENV, "")))
    except ValueError:
        return max(1, min(os.cpu_count() or 1, 4))


@lru_cache(maxsize=8)
def _compiler_id(tool: str) -> str:
    proc = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout.splitlines() or [tool])[0]


def _compile_cmd(cpu: Cpu, source: Path, obj: Path, includes: Sequence[Path], defines: Sequence[str], pch: Path | None = None) -> list[str]:
    cxx = source.suffix in (".cc", ".cpp", ".h")
    tool = cpu.tool("g++" if cxx else "gcc")
    lang = COMMON_CXX if cxx else COMMON_C
    pre = ["-include", str(pch)] if pch is not None and cxx else []
    kind = ["-x", "c++-header"] if source.suffix == ".h" else []
    return [
        tool,
        *cpu.flags,
        *lang,
        "-O2" if cpu.is_host else "-Os",
        *OPT,
        *defines,
        *[f"-I{d}" for d in includes],
        *pre,
        *kind,
        "-c",
        str(source),
        "-o",
        str(obj),
    ]


def _run_compile(cmd: list[str], source: Path, final: Path | None = None) -> None:
    """Compile one file; with ``final``, move the object there once complete (atomic cache fill)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise BuildError(f"{source}: the compiler did not finish within {COMPILE_TIMEOUT} s") from None
    if proc.returncode != 0:
        errors = [ln for ln in proc.stderr.splitlines() if "error" in ln] or proc.stderr.strip().splitlines() or ["(no output)"]
        raise BuildError(f"{cmd[0]} failed: {errors[0][:300]}")
    if final is not None:
        Path(cmd[-1]).replace(final)


def compile_library_objects(tree: LibraryTree, cpu: Cpu, sources: Sequence[Path], extra_defines: Sequence[str] = ()) -> list[Path]:
    """Objects for library files, from the cache or compiled now (in parallel, atomically cached)."""
    defines = (*tree.defines, *extra_defines)
    flags_key = hashlib.sha256(
        repr((cpu.flags, COMMON_CXX, COMMON_C, OPT, cpu.is_host, defines, _compiler_id(cpu.tool("g++")))).encode()
    ).hexdigest()[:12]
    folder = cache_root() / "tflm-objects" / cpu.name / f"{tree.cache_tag}-{flags_key}"
    folder.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[list[str], Path, Path]] = []  # (command, source, cached object)
    objects = []
    for source in sources:
        try:
            rel = source.relative_to(tree.root)
        except ValueError:
            rel = Path(source.parent.name) / source.name
        digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
        obj = folder / f"{str(rel.with_suffix('')).replace('/', '__')}-{digest}.o"
        objects.append(obj)
        if not obj.is_file():
            tmp = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
            jobs.append((_compile_cmd(cpu, source, tmp, tree.include_dirs, defines), source, obj))
    if jobs:
        _compile_with_pch(tree, cpu, defines, jobs)
    return objects


def _compile_with_pch(tree: LibraryTree, cpu: Cpu, defines: Sequence[str], jobs: list[tuple[list[str], Path, Path]]) -> None:
    """Compile the missing objects; with several C++ files, through a temporary precompiled header."""
    with tempfile.TemporaryDirectory(prefix="mcuq-pch-") as tmp:
        pch = None
        heavy = sum(1 for _, src, _ in jobs if src.suffix in (".cc", ".cpp"))
        headers = [h for h in PCH_HEADERS if (tree.root / h).is_file()]
        if heavy >= 4 and headers:
            header = Path(tmp) / "mcuq_tflm_pch.h"
            header.write_text("".join(f'#include "{h}"\n' for h in headers))
            try:
                _run_compile(_compile_cmd(cpu, header, Path(tmp) / "mcuq_tflm_pch.h.gch", tree.include_dirs, defines), header)
                pch = header
            except BuildError:
                pch = None  # compile each file in full
        _parallel(
            [
                ([*cmd[:-4], "-include", str(pch), *cmd[-4:]] if pch is not None and src.suffix in (".cc", ".cpp") else cmd, src, obj)
                for cmd, src, obj in jobs
            ]
        )


def _parallel(jobs: Sequence[tuple[list[str], Path, Path | None]]) -> None:
    """Run compile jobs on the build cores; the first error cancels the rest and is raised."""
    pool = ThreadPoolExecutor(max_workers=_jobs())
    try:
        futures = [pool.submit(_run_compile, cmd, src, obj) for cmd, src, obj in jobs]
        for future in as_completed(futures):
            future.result()
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def library_objects(tree: LibraryTree, cpu: Cpu, ops: Iterable[str], extra_defines: Sequence[str] = (), full: bool = False) -> list[Path]:
    """Framework + the kernels of ``ops`` + CMSIS-NN/ESP-NN C files, compiled for ``cpu``.

    Without ``full``, the :data:`OPTIONAL` files are left out; callers relink with
    ``full=True`` when the first link reports an undefined reference.
    """
    sources = [*tree.framework, *tree.kernel_sources(ops), *tree.extra_sources]
    if not full:
        sources = [s for s in sources if not OPTIONAL.search(s.as_posix())]
    return compile_library_objects(tree, cpu, sources, extra_defines)


def _archive(cpu: Cpu, objects: Sequence[Path], out: Path) -> Path:
    """A static archive, so the linker takes only the members the firmware references."""
    out.unlink(missing_ok=True)
    subprocess.run([cpu.tool("ar"), "rcs", str(out), *map(str, objects)], check=True, capture_output=True, timeout=COMPILE_TIMEOUT)
    return out


def _link(cpu: Cpu, objects: Sequence[Path], archive: Path, out: Path) -> Path:
    if cpu.is_host:
        cmd = ["g++", *objects, str(archive), "-Wl,--gc-sections", "-lm", "-o", str(out)]
    else:
        cmd = [
            cpu.tool("g++"),
            *cpu.flags,
            "-nostartfiles",
            "--specs=nano.specs",
            "--specs=nosys.specs",
            "-u",
            "_printf_float",
            "-T",
            str(shim_dir() / "cortexm.ld"),
            *objects,
            str(archive),
            "-Wl,--gc-sections",
            "-lm",
            "-o",
            str(out),
        ]
    proc = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=COMPILE_TIMEOUT, check=False)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if "undefined reference" in ln or "error" in ln] or proc.stderr.splitlines() or [""]
        raise BuildError(f"linking {out.name} for {cpu.name} failed: {lines[0][:300]}")
    return out


def _link_with_library(
    cpu: Cpu, objects: Sequence[Path], tree: LibraryTree, ops: Sequence[str], extra_defines: Sequence[str], folder: Path, out: Path
) -> Path:
    """Link against the lean library; if a symbol is missing, against the full framework."""
    lib = library_objects(tree, cpu, ops, extra_defines)
    try:
        return _link(cpu, objects, _archive(cpu, lib, folder / "libtflm.a"), out)
    except BuildError as exc:
        if "undefined reference" not in str(exc):
            raise
    lib = library_objects(tree, cpu, ops, extra_defines, full=True)
    return _link(cpu, objects, _archive(cpu, lib, folder / "libtflm.a"), out)


@dataclass
class Firmware:
    """A linked program: the project's firmware (with the shim) or the arena probe."""

    path: Path
    cpu: Cpu
    flash_bytes: int = 0
    ram_bytes: int = 0
    workdir: tempfile.TemporaryDirectory[str] | None = field(default=None, repr=False)

    def close(self) -> None:
        if self.workdir is not None:
            self.workdir.cleanup()
            self.workdir = None


def elf_size(cpu: Cpu, elf: Path) -> tuple[int, int]:
    """(flash, RAM) from ``size -A``: flash = code + constants + initialised data; RAM = data + bss."""
    out = subprocess.run([cpu.tool("size"), "-A", str(elf)], capture_output=True, text=True, check=True, timeout=60).stdout
    sections = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)", out, re.M)}
    flash = sum(sections.get(s, 0) for s in (".text", ".rodata", ".data", ".ARM.exidx", ".ARM.extab"))
    ram = sum(sections.get(s, 0) for s in (".data", ".bss"))
    return flash, ram


def project_sources(project: Path) -> list[Path]:
    """Every C/C++ file the firmware compiles: the project's ``src/`` tree."""
    src = project / "src"
    return sorted(p for p in src.rglob("*") if p.suffix in (".c", ".cc", ".cpp"))


def _compile_local(cpu: Cpu, sources: Sequence[Path], includes: Sequence[Path], defines: Sequence[str], folder: Path) -> list[Path]:
    jobs = []
    for i, source in enumerate(sources):
        obj = folder / f"{i:02d}_{source.stem}.o"
        jobs.append((_compile_cmd(cpu, source, obj, includes, defines), source, obj))
    _parallel([(cmd, src, None) for cmd, src, _ in jobs])
    return [obj for _, _, obj in jobs]


@lru_cache(maxsize=1)
def _templates_digest() -> str:
    """The shim folder and the emulated board header it includes: what a shim unit may include
    besides the library (whose headers the tree's cache tag stands for, as for its objects)."""
    from mcuq.common.resources import templates_dir

    digest = hashlib.sha256()
    for path in sorted([*shim_dir().rglob("*"), templates_dir() / "c" / "emulate" / "mps2.h"]):
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:12]


def _compile_shim_units(cpu: Cpu, tree: LibraryTree, sources: Sequence[Path], defines: Sequence[str]) -> list[Path]:
    """Objects of units that include only the shim folder and the library (the platform shim, the
    probe's main and its op registration), cached like library objects: every build and arena
    probe used to recompile them, the probe's two against the library's heaviest headers.
    A unit that includes a project's files must not come here (its headers are not in the key)."""
    includes = (shim_dir(), *tree.include_dirs)
    key = repr((cpu.flags, COMMON_CXX, COMMON_C, OPT, cpu.is_host, tuple(defines), tuple(map(str, includes)), _templates_digest()))
    flags_key = hashlib.sha256((key + _compiler_id(cpu.tool("g++"))).encode()).hexdigest()[:12]
    folder = cache_root() / "tflm-objects" / cpu.name / f"{tree.cache_tag}-shim-{flags_key}"
    folder.mkdir(parents=True, exist_ok=True)
    objects, jobs = [], []
    for source in sources:
        obj = folder / f"{source.stem}-{hashlib.sha256(source.read_bytes()).hexdigest()[:12]}.o"
        objects.append(obj)
        if not obj.is_file():
            tmp = obj.with_name(f".{obj.name}.{os.getpid()}.tmp")
            jobs.append((_compile_cmd(cpu, source, tmp, includes, defines), source, obj))
    _parallel(jobs)
    return objects


def _platform_sources(cpu: Cpu) -> list[Path]:
    return [shim_dir() / ("shim_host.cpp" if cpu.is_host else "shim_cortexm.c")]


def build_project(project: Path, tree: LibraryTree, cpu: Cpu, ops: Iterable[str]) -> Firmware:
    """The project's ``src/`` (unmodified) + the framework shim + the library, linked for ``cpu``."""
    sources = project_sources(project)
    if not sources:
        raise BuildError(f"{project / 'src'}: no source files to build")
    main = shim_dir() / ("main_espidf.cpp" if tree.framework_kind == "espidf" else "main_arduino.cpp")
    return build_units([([*sources, main], [project / "src"])], tree, cpu, ops)


def build_units(units: Sequence[tuple[Sequence[Path], Sequence[Path]]], tree: LibraryTree, cpu: Cpu, ops: Iterable[str]) -> Firmware:
    """Compile each unit (its sources, with its own include folders after the shim's and before
    the library's), add the platform shim, link against the library for ``cpu``. One unit per
    generated project: that is how several projects (each with its own ``--name`` prefix and
    same-named files) link into one program."""
    ops = list(ops)
    library_objects(tree, cpu, ops)  # fill the cache first (a library error is reported as such)
    work = tempfile.TemporaryDirectory(prefix=f"mcuq-build-{cpu.name}-")
    folder = Path(work.name)
    try:
        objects: list[Path] = []
        for n, (sources, includes) in enumerate(units):
            unit = folder / f"unit{n}"
            unit.mkdir()
            objects += _compile_local(cpu, list(sources), (shim_dir(), *includes, *tree.include_dirs), tree.defines, unit)
        objects += _compile_shim_units(cpu, tree, _platform_sources(cpu), tree.defines)
        elf = _link_with_library(cpu, objects, tree, ops, (), folder, folder / "firmware.elf")
        flash, ram = (0, 0) if cpu.is_host else elf_size(cpu, elf)
    except BaseException:
        work.cleanup()
        raise
    return Firmware(elf, cpu, flash, ram, work)


def _probe_model_source(model: bytes) -> str:
    """The model array alone: no header, so compiling it costs only its size."""
    body = ",".join(str(b) for b in model)
    return f"alignas(16) extern const unsigned char g_mcuq_probe_model[] = {{{body}}};\n"


def _probe_register_source(ops: Sequence[str]) -> str:
    """The op registration: the same text for the same ops, so its object is cached."""
    adds = "\n".join(f"  if (resolver.{add_method_name(op)}() != kTfLiteOk) return false;" for op in ops)
    return (
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
        "bool mcuq_probe_register(tflite::MicroMutableOpResolver<64>& resolver) {\n"
        f"{adds}\n  return true;\n}}\n"
    )


def build_probe(
    model: bytes, ops: Sequence[str], tree: LibraryTree, cpu: Cpu, max_arena: int, extra_defines: Sequence[str] = ()
) -> Firmware:
    """The arena probe for this model (see shim/probe_main.cpp)."""
    library_objects(tree, cpu, ops, extra_defines)
    work = tempfile.TemporaryDirectory(prefix=f"mcuq-probe-{cpu.name}-")
    folder = Path(work.name)
    try:
        model_src, register_src = folder / "mcuq_probe_model.cpp", folder / "mcuq_probe_register.cpp"
        model_src.write_text(_probe_model_source(model))
        register_src.write_text(_probe_register_source(ops))
        defines = (*tree.defines, *extra_defines, f"-DMCUQ_PROBE_ARENA_MAX={max_arena}", *(["-DMCUQ_PROBE_HOST_IO"] if cpu.is_host else []))
        objects = _compile_local(cpu, [model_src], (shim_dir(), *tree.include_dirs), defines, folder)
        objects += _compile_shim_units(cpu, tree, [register_src, shim_dir() / "probe_main.cpp", *_platform_sources(cpu)], defines)
        elf = _link_with_library(cpu, objects, tree, ops, extra_defines, folder, folder / "probe.elf")
    except BaseException:
        work.cleanup()
        raise
    return Firmware(elf, cpu, 0, 0, work)
