"""Where a board's TFLite Micro library sources are, and which of their files a model needs.

Sources come from ``.pio/libdeps/<env>/<lib>/``, ``managed_components/...`` or ``--tflm-source``;
their version is checked against the board's pin (boards/libraries/*.toml).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mcuq.backends.tflm.toolchain.targets import EXCLUDE, REGISTER, BuildError, shim_dir
from mcuq.libraries import TflmLibrary, add_method_name, load_library, signal_op
from mcuq.tools.derive_library_ops import resolver_registrations


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
        missing: list[str] = []
        ops = list(ops)
        for signal_path in self.signal_sources([op for op in ops if signal_op(op)]):
            chosen[str(signal_path)] = signal_path
        for op in ops:
            if signal_op(op):
                continue
            found = index.get(op)
            if found is None:
                missing.append(op)
            else:
                chosen[str(found)] = found
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

    def signal_sources(self, ops: list[str]) -> list[Path]:
        """The signal library's kernels for these ``CUSTOM:Signal*`` ops, with signal/src and the
        kissfft wrappers they call (esp-tflite-micro's CMakeLists.txt compiles all of signal/)."""
        if not ops:
            return []
        kernels = self.root / "signal" / "micro" / "kernels"
        header = next(self.root.rglob("micro_mutable_op_resolver.h"), None)
        if not kernels.is_dir() or header is None:
            raise BuildError(f"{self.label}: no signal/ folder, so no kernel for {ops[0]}")
        registrations = resolver_registrations(header)
        index = {name: path for path in sorted(kernels.glob("*.cc")) for name in REGISTER.findall(path.read_text(errors="replace"))}
        chosen = []
        for op in ops:
            register = registrations.get(add_method_name(op), "").removeprefix("Register_")
            if register not in index:
                raise BuildError(f"{self.label}: no kernel file defines Register_{register or '?'} ({add_method_name(op)}, {op})")
            path = index[register]
            chosen += [path, *[c for c in [kernels / f"{path.stem.removesuffix('_kernel')}_common.cc"] if c.is_file()]]
        src = self.root / "signal" / "src"
        chosen += sorted(src.glob("*.cc")) + sorted((src / "kiss_fft_wrappers").glob("*.cc"))
        return chosen


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
        if source is not None:  # the user named a folder: say it is not the library, not "pass a folder"
            raise BuildError(
                f"--tflm-source {source}: {library.name} {library.version} sources not found there (looked in {where}); "
                f"{hint}, or give --tflm-source the folder that holds them"
            )
        raise BuildError(f"{library.name} {library.version} sources not found (looked in {where}); {hint}, or pass --tflm-source DIR")
    tree = TREE_BUILDERS[library_id](folder.resolve(), library, kernels)
    if check_version and tree.version != library.version:
        raise BuildError(
            f"{folder}: {library.name} {tree.version} found, but the board pins {library.version}; "
            "pass the pinned version with --tflm-source"
        )
    return tree
