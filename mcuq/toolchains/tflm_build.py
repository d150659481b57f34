"""Compile and run a generated TFLite Micro project against the library the board pins.

The host check of ``deploy``/``validate`` runs the ``tflite-micro`` wheel (a 2026 TFLite
Micro); the board runs the library its project pins (Chirale_TensorFLowLite 2.0.0 = TFLite
Micro of early 2023 with CMSIS-NN, or esp-tflite-micro 1.4.0 with ESP-NN). Their kernels
differ (per-channel FULLY_CONNECTED, rounding), so only a build of *that* library proves
the firmware computes what mcuq validated. This module:

- finds the library sources (``.pio/libdeps/<env>/<lib>/``, ``managed_components/...`` or a
  folder given with ``--tflm-source``) and checks their version against the board's pin;
- compiles only the TFLite Micro framework plus the kernel files of the ops the model
  registers (the whole library takes 10-15 min per CPU; this takes about a minute once), for
  x86-64 (CMSIS-NN and ESP-NN have portable C paths) or a Cortex-M CPU (arm-none-eabi-g++);
  objects are cached per (library, version, CPU, flags, file) in the user cache
  (``$MCUQ_CACHE_DIR``, default ``~/.cache/mcuq``), shared by tests, benchmarks and users;
- links the project's own ``src/`` files, unmodified, with the framework shim of
  ``firmware_templates/tflm/shim`` (Arduino ``Serial``/``millis``, ESP-IDF ``esp_timer``/
  ``vTaskDelay``) and runs the boot self-test natively or in qemu (mps2-an386 for Cortex-M4,
  mps2-an500 for Cortex-M7, mps2-an385 for Cortex-M0+: ARMv6-M is a subset of ARMv7-M);
- bisects the exact smallest arena with a probe program, each probe a fresh process
  (a too-small arena can crash on x86 or corrupt memory on a Cortex-M).

Every native run is a child process with a timeout.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from mcuq.common.errors import MCUQError
from mcuq.common.resources import templates_dir
from mcuq.libraries import TflmLibrary, add_method_name, load_library

CACHE_ENV = "MCUQ_CACHE_DIR"
JOBS_ENV = "MCUQ_BUILD_JOBS"
COMPILE_TIMEOUT = 600
HOST_RUN_TIMEOUT = 120
QEMU_RUN_TIMEOUT = 300
PROBE_TIMEOUT = 60
QEMU_RAM_BYTES = 4 * 1024 * 1024


class BuildError(MCUQError):
    """The library or the project did not compile or link (message names the file)."""


@dataclass(frozen=True)
class Cpu:
    """A compile target: x86-64 (native) or a Cortex-M run in qemu."""

    name: str
    prefix: str  # "" (host g++) or "arm-none-eabi-"
    flags: tuple[str, ...]
    machine: str | None = None  # qemu -M

    @property
    def is_host(self) -> bool:
        return self.machine is None

    @property
    def label(self) -> str:
        return "x86-64 (host)" if self.is_host else f"{self.name} in qemu {self.machine}"

    def tool(self, name: str) -> str:
        return self.prefix + name


HOST = Cpu("x86-64", "", ())
CPUS: dict[str, Cpu] = {
    "x86-64": HOST,
    # Cortex-M4F boards (nRF52840, STM32F4/L4) build with the FPU; mps2-an386 is a Cortex-M4F.
    "cortex-m4": Cpu(
        "cortex-m4", "arm-none-eabi-", ("-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=softfp", "-mfpu=fpv4-sp-d16"), "mps2-an386"
    ),
    "cortex-m7": Cpu("cortex-m7", "arm-none-eabi-", ("-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"), "mps2-an500"),
    # ARMv6-M code runs unchanged on the Cortex-M3 of mps2-an385.
    "cortex-m0plus": Cpu("cortex-m0plus", "arm-none-eabi-", ("-mcpu=cortex-m0plus", "-mthumb", "-mfloat-abi=soft"), "mps2-an385"),
}
# The MCU of each board file -> its CPU (a board file may also say `cpu = "..."`).
MCU_CPUS = {
    "nRF52840": "cortex-m4",
    "STM32F446RE": "cortex-m4",
    "STM32L4R5ZI": "cortex-m4",
    "i.MX RT1062": "cortex-m7",
    "RP2040": "cortex-m0plus",
}

COMMON_CXX = ("-std=gnu++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics", "-fno-use-cxa-atexit")
COMMON_C = ("-std=gnu11",)
# -Os on the MCU (what Arduino/PlatformIO and ESP-IDF builds use, so flash sizes are real);
# -O2 on the host. The library's own warnings are not ours to fix: -w.
OPT = ("-ffunction-sections", "-fdata-sections", "-w")
# Library files never needed by a firmware (tests, the all-ops resolver, audio front end).
EXCLUDE = re.compile(
    r"(_test\.|test_helper|/testing/|/tools/|/examples?/|all_ops_resolver|mock_micro_graph|fake_micro_context|"
    r"kernel_runner|microfrontend|kissfft|/signal/|hexdump)"
)
# Framework files an interpreter + op resolver firmware does not reference (checked with a
# link map); compiled only if a link needs them (see build_* fallbacks).
OPTIONAL = re.compile(
    r"(recording_|micro_profiler|micro_time|linear_memory_planner|non_persistent_buffer_planner_shim|"
    r"/peripherals/|lstm_eval|micro_tensor_utils|/esp/)"
)
# Headers most library files include: compiled once into a precompiled header per build
# (parsing them is 2/3 of the compile time; the generated code is the same).
PCH_HEADERS = (
    "tensorflow/lite/schema/schema_generated.h",
    "tensorflow/lite/micro/micro_mutable_op_resolver.h",
    "tensorflow/lite/micro/micro_interpreter.h",
    "tensorflow/lite/micro/kernels/kernel_util.h",
    "tensorflow/lite/kernels/internal/common.h",
    "tensorflow/lite/kernels/kernel_util.h",
)
REGISTER = re.compile(r"(?:TfLiteRegistration|TFLMRegistration|TfLiteRegistration_V1)\s*\*?\s+Register_([A-Z0-9_]+)\s*\(\s*\)\s*\{")


def cache_root() -> Path:
    """Where compiled library objects are kept (``$MCUQ_CACHE_DIR`` or ``~/.cache/mcuq``)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mcuq"


def board_cpu(mcu: str, explicit: str | None = None) -> str | None:
    """The CPU name in :data:`CPUS` for a board's MCU, or None (AVR, Xtensa, RISC-V: no emulator here)."""
    if explicit in CPUS:
        return explicit
    return MCU_CPUS.get(mcu)


def missing_tools(cpu: Cpu) -> list[str]:
    tools = [cpu.tool("g++"), cpu.tool("gcc")] + ([] if cpu.is_host else [cpu.tool("size"), "qemu-system-arm"])
    return [t for t in tools if shutil.which(t) is None]


# --------------------------------------------------------------------------- library trees


@dataclass(frozen=True)
class LibraryTree:
    """One TFLite Micro distribution on disk and how its firmware build compiles it."""

    library: TflmLibrary
    root: Path  # include root (holds tensorflow/)
    version: str
    include_dirs: tuple[Path, ...]
    defines: tuple[str, ...]
    framework: tuple[Path, ...]
    kernel_dir: Path
    optimized_dir: Path | None
    extra_sources: tuple[Path, ...] = ()  # CMSIS-NN / ESP-NN C files
    framework_kind: str = "arduino"  # which shim main: arduino | espidf
    kernels: str = "optimized"  # "optimized" (CMSIS-NN / ESP-NN) or "reference"

    @property
    def label(self) -> str:
        kernels = "" if self.kernels == "optimized" else ", reference kernels"
        return f"{self.library.name} {self.version} ({self.root}{kernels})"

    @property
    def cache_tag(self) -> str:
        return f"{self.library.id}-{self.version}-{self.kernels}"

    def kernel_sources(self, ops: Iterable[str]) -> list[Path]:
        """Kernel files of these ops (optimized version first) + their ``*_common`` + helpers."""
        index = _register_index(self.kernel_dir, self.optimized_dir)
        chosen: dict[str, Path] = {}
        missing = []
        for op in ops:
            path = index.get(op)
            if path is None:
                missing.append(op)
            else:
                chosen[str(path)] = path
        if missing:
            raise BuildError(f"{self.label}: no kernel file defines Register_{missing[0]} ({add_method_name(missing[0])})")
        for path in _helper_files(self.kernel_dir, self.optimized_dir):
            chosen[str(path)] = path
        for path in list(chosen.values()):
            for folder in {path.parent, self.kernel_dir}:
                for common in (
                    folder / f"{path.stem}_common{path.suffix}",
                    folder / f"{path.stem}_common.cc",
                    folder / f"{path.stem}_common.cpp",
                ):
                    if common.is_file():
                        chosen[str(common)] = common
        return sorted(chosen.values())


def _sources(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in (".c", ".cc", ".cpp") and not EXCLUDE.search(p.as_posix()))


@lru_cache(maxsize=16)
def _register_index(kernel_dir: Path, optimized_dir: Path | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in ([optimized_dir] if optimized_dir else []) + [kernel_dir]:
        for path in sorted(folder.glob("*.c*")):
            if EXCLUDE.search(path.as_posix()):
                continue
            for op in REGISTER.findall(path.read_text(errors="replace")):
                found.setdefault(op, path)
    return found


@lru_cache(maxsize=16)
def _helper_files(kernel_dir: Path, optimized_dir: Path | None) -> tuple[Path, ...]:
    helpers = []
    for path in sorted(kernel_dir.glob("*.c*")):
        if EXCLUDE.search(path.as_posix()) or path.stem.endswith("_common"):
            continue
        if not REGISTER.search(path.read_text(errors="replace")):
            helpers.append(path)
    return tuple(helpers)


def _chirale_tree(folder: Path, library: TflmLibrary, kernels: str) -> LibraryTree:
    props = (folder / "library.properties").read_text(errors="replace")
    found = re.search(r"^version=(.+)$", props, re.M)
    version = found.group(1).strip() if found else "?"
    src = folder / "src"
    framework = [
        p
        for p in _sources(src)
        if ("micro/kernels/" not in p.as_posix() and "cmsis_nn/Source" not in p.as_posix() and "/peripherals/" not in p.as_posix())
        or p.name == "utility_arduino.cpp"
    ]
    cmsis = _sources(src / "third_party" / "cmsis_nn" / "Source")
    tp = src / "third_party"
    return LibraryTree(
        library,
        src,
        version,
        # The shim folder supplies <Arduino.h>, which system_setup.cpp and peripherals/ include.
        (
            src,
            tp / "flatbuffers" / "include",
            tp / "gemmlowp",
            tp / "ruy",
            tp / "kissfft",
            tp / "cmsis_nn",
            tp / "cmsis_nn" / "Include",
            shim_dir(),
        ),
        # Arduino builds define ARDUINO, which selects the CMSIS-NN registrations in the kernel headers.
        # (Not ARDUINO_ARCH_MBED: system_setup.cpp then takes the library's own ring buffer.)
        ("-DARDUINO=10819",),
        tuple(framework),
        src / "tensorflow" / "lite" / "micro" / "kernels",
        src / "tensorflow" / "lite" / "micro" / "kernels" / "cmsis_nn",
        tuple(cmsis),
        "arduino",
        kernels,
    )


def _esp_tree(folder: Path, library: TflmLibrary, kernels: str) -> LibraryTree:
    manifest = (folder / "idf_component.yml").read_text(errors="replace")
    found = re.search(r'^version:\s*"?([^"\s]+)"?', manifest, re.M)
    version = found.group(1) if found else "?"
    nn = next(
        (
            c
            for c in (folder.parent / "esp-nn", folder.parent / "espressif__esp-nn", folder / "esp-nn")
            if (c / "include" / "esp_nn.h").is_file()
        ),
        None,
    )
    if nn is None and kernels == "optimized":
        raise BuildError(
            f"{folder}: ESP-NN sources not found next to it (esp-nn/ or espressif__esp-nn/); "
            "run `idf.py reconfigure` once, or pass --tflm-source with a folder holding both"
        )
    micro = folder / "tensorflow" / "lite" / "micro"
    framework = []
    for p in _sources(folder / "tensorflow"):
        posix = p.as_posix()
        if "micro/kernels/" in posix:
            continue
        if p.parent == micro and (micro / "esp" / p.name).is_file():
            continue  # the component uses esp/micro_time.cc instead (CMakeLists.txt)
        framework.append(p)
    tp = folder / "third_party"
    # The shim folder supplies <esp_timer.h>, which the ESP-NN kernels include for profiling.
    includes = [folder, tp / "gemmlowp", tp / "flatbuffers" / "include", tp / "ruy", tp / "kissfft", shim_dir()]
    defines = ["-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON"]
    extra: list[Path] = []
    optimized = None
    if kernels == "optimized":
        assert nn is not None
        includes += [nn / "include", nn / "src" / "common"]
        # Plain ESP32 / ESP32-C3 use ESP-NN's generic C ("opt") kernels: CONFIG_NN_OPTIMIZED
        # without an ARCH_* define (esp-nn/include/esp_nn.h); the same C compiles here.
        defines += ["-DESP_NN", "-DCONFIG_NN_OPTIMIZED"]
        cmake = (nn / "CMakeLists.txt").read_text(errors="replace")
        c_srcs = re.search(r"set\(c_srcs(.*?)\)", cmake, re.S)
        extra = [nn / s for s in re.findall(r'"([^"]+\.c)"', c_srcs.group(1))] if c_srcs else _sources(nn / "src")
        optimized = micro / "kernels" / "esp_nn"
    return LibraryTree(
        library,
        folder,
        version,
        tuple(includes),
        tuple(defines),
        tuple(framework),
        micro / "kernels",
        optimized,
        tuple(extra),
        "espidf",
        kernels,
    )


TREE_BUILDERS = {"chirale-tensorflowlite": _chirale_tree, "esp-tflite-micro": _esp_tree}


def _looks_like(library_id: str, folder: Path) -> bool:
    if library_id == "chirale-tensorflowlite":
        return (folder / "library.properties").is_file() and (folder / "src" / "tensorflow" / "lite" / "micro").is_dir()
    return (folder / "idf_component.yml").is_file() and (folder / "tensorflow" / "lite" / "micro").is_dir()


LIBRARY_DIR_NAMES = {
    "chirale-tensorflowlite": ("Chirale_TensorFLowLite", "Chirale_TensorFlowLite"),
    "esp-tflite-micro": ("espressif__esp-tflite-micro", "esp-tflite-micro"),
}


def candidate_dirs(library_id: str, project: Path | None, source: Path | None) -> list[Path]:
    """Where the library may be: --tflm-source (or a folder of libraries), then the project."""
    names = LIBRARY_DIR_NAMES.get(library_id, ())
    found: list[Path] = []
    if source is not None:
        found += [source] + [source / n for n in names]
    if project is not None:
        found += [env / n for env in sorted((project / ".pio" / "libdeps").glob("*")) for n in names]
        found += [project / "managed_components" / n for n in names]
    return found


def find_library_tree(
    library_id: str, project: Path | None = None, source: Path | None = None, kernels: str = "optimized", check_version: bool = True
) -> LibraryTree:
    """The library sources for ``library_id``; a one-line error says where mcuq looked."""
    library = load_library(library_id)
    if library_id not in TREE_BUILDERS:
        raise BuildError(f"mcuq cannot build {library.name} from source yet (known: {', '.join(TREE_BUILDERS)})")
    candidates = candidate_dirs(library_id, project, source)
    folder = next((c for c in candidates if _looks_like(library_id, c)), None)
    if folder is None:
        where = ", ".join(str(c) for c in candidates[:4]) or "nowhere (no project or --tflm-source)"
        hint = "run `pio pkg install` in the project" if library_id != "esp-tflite-micro" else "run `idf.py reconfigure` in the project"
        raise BuildError(f"{library.name} {library.version} sources not found (looked in {where}); {hint}, or pass --tflm-source DIR")
    tree = TREE_BUILDERS[library_id](folder.resolve(), library, kernels)
    if check_version and tree.version != library.version:
        raise BuildError(
            f"{folder}: {library.name} {tree.version} found, but the board pins {library.version}; "
            "pass the pinned version with --tflm-source"
        )
    return tree


# --------------------------------------------------------------------------- compiling


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


def shim_dir() -> Path:
    return templates_dir() / "tflm" / "shim"


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
        for n, (sources, includes) in enumerate([*units, (_platform_sources(cpu), [])]):
            unit = folder / f"unit{n}"
            unit.mkdir()
            objects += _compile_local(cpu, list(sources), (shim_dir(), *includes, *tree.include_dirs), tree.defines, unit)
        elf = _link_with_library(cpu, objects, tree, ops, (), folder, folder / "firmware.elf")
        flash, ram = (0, 0) if cpu.is_host else elf_size(cpu, elf)
    except BaseException:
        work.cleanup()
        raise
    return Firmware(elf, cpu, flash, ram, work)


def _probe_model_source(model: bytes, ops: Sequence[str]) -> str:
    body = ",".join(str(b) for b in model)
    adds = "\n".join(f"  if (resolver.{add_method_name(op)}() != kTfLiteOk) return false;" for op in ops)
    return (
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"\n'
        f"alignas(16) extern const unsigned char g_mcuq_probe_model[] = {{{body}}};\n"
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
        model_src = folder / "mcuq_probe_model.cpp"
        model_src.write_text(_probe_model_source(model, ops))
        defines = (*tree.defines, *extra_defines, f"-DMCUQ_PROBE_ARENA_MAX={max_arena}", *(["-DMCUQ_PROBE_HOST_IO"] if cpu.is_host else []))
        objects = _compile_local(
            cpu, [model_src, shim_dir() / "probe_main.cpp", *_platform_sources(cpu)], (shim_dir(), *tree.include_dirs), defines, folder
        )
        elf = _link_with_library(cpu, objects, tree, ops, extra_defines, folder, folder / "probe.elf")
    except BaseException:
        work.cleanup()
        raise
    return Firmware(elf, cpu, 0, 0, work)


# --------------------------------------------------------------------------- running


@dataclass(frozen=True)
class RunResult:
    returncode: int
    log: str
    timed_out: bool = False


def run_firmware(fw: Firmware, arg: int | None = None, extra_args: Sequence[str] = (), timeout: float | None = None) -> RunResult:
    """Run natively or in qemu, in a child process with a timeout; never raises on a crash."""
    args = [str(arg)] if arg is not None else []
    if fw.cpu.is_host:
        cmd = [str(fw.path), *args, *extra_args]
        limit = timeout or HOST_RUN_TIMEOUT
    else:
        semi = "enable=on,target=native" + "".join(f",arg={a}" for a in ["firmware", *args])
        cmd = [
            "qemu-system-arm",
            "-M",
            str(fw.cpu.machine),
            "-nographic",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-semihosting-config",
            semi,
            "-icount",
            "shift=0",
            "-kernel",
            str(fw.path),
        ]
        limit = timeout or QEMU_RUN_TIMEOUT
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, check=False, errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return RunResult(-1, out + f"\nmcuq: timed out after {limit} s", True)
    return RunResult(proc.returncode, proc.stdout + proc.stderr)


@dataclass(frozen=True)
class SelfTest:
    """What the firmware's boot self-test printed."""

    passed: bool
    vectors: tuple[tuple[int, bool, str], ...]  # (index, pass, detail)
    log: str
    arena_used: int | None
    problem: str  # first failing line, or ""

    @classmethod
    def parse(cls, run: RunResult) -> SelfTest:
        log = run.log
        vectors = tuple(
            (int(m.group(1)), m.group(2) == "PASS", m.group(3).strip()) for m in re.finditer(r"mcuq: golden (\d+) (PASS|FAIL)(.*)", log)
        )
        used = re.search(r"mcuq: arena_used_bytes=(\d+)", log)
        passed = run.returncode == 0 and "mcuq: selftest PASS" in log and bool(vectors) and all(v[1] for v in vectors)
        problem = ""
        if not passed:
            fail = next((f"golden vector {i} FAIL{d and ' ' + d}" for i, ok, d in vectors if not ok), None)
            other = next((ln.strip() for ln in log.splitlines() if "FAIL" in ln or "FAULT" in ln or "failed" in ln), None)
            if run.timed_out:
                problem = "the self-test did not finish (timeout)"
            elif fail:
                problem = fail
            elif other:
                problem = other
            elif run.returncode != 0:
                problem = (
                    f"the firmware exited with code {run.returncode} ({'signal ' + str(-run.returncode) if run.returncode < 0 else 'exit'})"
                )
            else:
                problem = "no 'selftest PASS' line in the output"
        return cls(passed, vectors, log, int(used.group(1)) if used else None, problem)


def run_selftest(fw: Firmware) -> SelfTest:
    return SelfTest.parse(run_firmware(fw))


@dataclass(frozen=True)
class Probe:
    ok: bool
    crc: str | None
    used: int | None
    nanos: int | None
    log: str


def probe(fw: Firmware, arena: int) -> Probe:
    run = run_firmware(fw, arena, timeout=PROBE_TIMEOUT)
    m = re.search(rf"mcuq: probe {arena} OK used=(\d+) crc=([0-9a-f]+)", run.log)
    t = re.search(r"mcuq: probe_nanos=(\d+)", run.log)
    ok = run.returncode == 0 and m is not None
    return Probe(ok, m.group(2) if m else None, int(m.group(1)) if m else None, int(t.group(1)) if t else None, run.log)


def min_arena(fw: Firmware, high: int, low: int = 0) -> tuple[int, Probe]:
    """Exact smallest N (bytes) that allocates and invokes with the outputs of a large arena.

    Each probe is a fresh process (fresh qemu): below the minimum, TFLite Micro may write
    through a null pointer, which must not leak into the next probe. The search first
    brackets the minimum near the ``arena_used_bytes()`` of the large run (the minimum can
    be a few bytes below it, never far), so it needs about a dozen probes instead of twenty.
    """
    reference = probe(fw, high)
    if not reference.ok:
        raise BuildError(f"the arena probe fails even with {high} bytes: {_last_line(reference.log)}")
    lo, hi = low, high  # lo fails (or 0), hi works
    used = reference.used or 0
    start = used * 15 // 16
    if start > lo and not probe(fw, start).ok:
        lo = start
        step = max(64, used // 8)
        while lo + step < hi:
            trial = probe(fw, lo + step)
            if trial.ok and trial.crc == reference.crc:
                hi = lo + step
                break
            lo, step = lo + step, step * 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        result = probe(fw, mid)
        if result.ok and result.crc == reference.crc:
            hi = mid
        else:
            lo = mid
    return hi, reference


def _last_line(log: str) -> str:
    lines = [ln for ln in log.strip().splitlines() if ln.strip()]
    return lines[-1][:200] if lines else "(no output)"


def host_outputs(fw: Firmware, arena: int, inputs: bytes, n_vectors: int, resets: Sequence[bool] | None = None) -> bytes:
    """Outputs of the host probe for concatenated input vectors (golden vectors from the library).
    ``resets``: before which vectors the probe calls MicroInterpreter::Reset() (mcuq.model.state);
    default every one."""
    flags = "".join("1" if r else "0" for r in (resets if resets is not None else [True] * n_vectors))
    with tempfile.TemporaryDirectory(prefix="mcuq-io-") as tmp:
        src, dst = Path(tmp) / "in.bin", Path(tmp) / "out.bin"
        src.write_bytes(inputs)
        run = run_firmware(fw, arena, [str(src), str(dst), flags])
        if run.returncode != 0 or not dst.exists():
            raise BuildError(f"the host build of the library could not run the golden vectors: {_last_line(run.log)}")
        return dst.read_bytes()


# --------------------------------------------------------------------------- for benchmarks (issue #12)


def default_source_root() -> Path | None:
    """``../shared/tflm-libs`` beside a source checkout, if present (tests and benchmarks)."""
    here = Path(__file__).resolve().parents[2]
    for candidate in (here.parent / "shared" / "tflm-libs", here / ".." / "shared" / "tflm-libs"):
        if candidate.is_dir():
            return candidate.resolve()
    return None


def instructions_per_inference(
    model: bytes,
    ops: Sequence[str],
    kernels: str = "cmsis-nn",
    cpu: str = "cortex-m4",
    source_root: Path | None = None,
    arena: int = 512 * 1024,
) -> int:
    """Instructions qemu (``-icount shift=0``) executes for one ``Invoke()`` of ``model``.

    ``kernels="cmsis-nn"``: Chirale_TensorFLowLite 2.0.0 (TFLite Micro 2023 + CMSIS-NN);
    ``kernels="reference"``: esp-tflite-micro 1.4.0 built without ESP-NN, i.e. upstream TFLite
    Micro (2026) reference kernels. Resolution: 40 instructions (one SysTick tick at 25 MHz).
    """
    root = source_root or default_source_root()
    if root is None:
        raise BuildError("TFLite Micro library sources not found (../shared/tflm-libs); pass source_root")
    if kernels == "cmsis-nn":
        tree = find_library_tree("chirale-tensorflowlite", source=root)
    elif kernels == "reference":
        tree = find_library_tree("esp-tflite-micro", source=root, kernels="reference")
    else:
        raise BuildError(f"kernels must be 'cmsis-nn' or 'reference', got {kernels!r}")
    fw = build_probe(model, ops, tree, CPUS[cpu], arena)
    try:
        result = probe(fw, arena)
    finally:
        fw.close()
    if not result.ok or result.nanos is None:
        raise BuildError(f"{cpu} probe failed: {_last_line(result.log)}")
    return result.nanos  # in qemu one virtual nanosecond is one instruction
