"""Build and run a generated TFLite Micro project against the library its board pins.

The host check of ``deploy``/``validate`` runs the ``tflite-micro`` wheel (a 2026 TFLite Micro);
the board runs the library its project pins (Chirale_TensorFLowLite 2.0.0 = TFLite Micro of early
2023 with CMSIS-NN, or esp-tflite-micro 1.4.0 with ESP-NN). Their kernels differ (per-channel
FULLY_CONNECTED, rounding), so only a build of *that* library proves the firmware computes what
mcuq validated. The steps, one module each:

- ``targets``: the host or the board's Cortex-M (from its ``[cpu]`` data), tools, cache folder;
- ``library_tree``: finds the library sources and checks their version against the board's pin;
- ``compile``: only the framework plus the model's kernels, cached, linked with the project's own
  ``src/`` files and the framework shim (``firmware_templates/tflm/shim``);
- ``run``: the boot self-test natively or in qemu, and the exact smallest arena by bisection.

Callers use this package's names (``from mcuq.backends.tflm import toolchain as tb``).
"""

from mcuq.backends.tflm.toolchain.compile import Firmware, build_probe, build_project, build_units, elf_size, project_sources
from mcuq.backends.tflm.toolchain.library_tree import LibraryTree, find_library_tree
from mcuq.backends.tflm.toolchain.run import (
    Probe,
    RunResult,
    SelfTest,
    host_outputs,
    instructions_per_inference,
    min_arena,
    probe,
    run_firmware,
    run_selftest,
)
from mcuq.backends.tflm.toolchain.targets import HOST, BuildError, Cpu, cache_root, cpu_target, missing_tools, shipped_cpu

__all__ = [
    "HOST",
    "BuildError",
    "Cpu",
    "Firmware",
    "LibraryTree",
    "Probe",
    "RunResult",
    "SelfTest",
    "build_probe",
    "build_project",
    "build_units",
    "cache_root",
    "cpu_target",
    "elf_size",
    "find_library_tree",
    "host_outputs",
    "instructions_per_inference",
    "min_arena",
    "missing_tools",
    "probe",
    "project_sources",
    "run_firmware",
    "run_selftest",
    "shipped_cpu",
]
