"""Plain-C runtime, the ops beyond the CNN set: flash per op and RAM against the liveness bound.

Prints three tables (markdown):
1. flash of each new kernel function (avr-gcc -Os for the ATmega2560, arm-none-eabi-gcc -Os for
   the Cortex-M4), read with avr-nm / arm-none-eabi-nm from an object built with
   -ffunction-sections, i.e. exactly what --gc-sections keeps or drops per function;
2. the proof that unused kernels are not linked: a firmware calling only mcuq_add, linked with
   --gc-sections, lists which new kernel symbols it contains (none);
3. RAM: for the two test models that use every new op (tests/test_c_ops_extra_deploy.py), the
   plain-C activation buffer, the liveness lower bound and the x86 TFLite Micro minimum arena.

Run: python benchmarks/new_ops.py   (a minute: two TensorFlow conversions)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "firmware_templates" / "c" / "runtime" / "mcuq_kernels.c"
# kernel function -> the ops it runs
NEW_KERNELS = {
    "mcuq_gather": "TRANSPOSE, STRIDED_SLICE, RESIZE_NEAREST_NEIGHBOR",
    "mcuq_lut": "HARD_SWISH, LEAKY_RELU, RSQRT",
    "mcuq_resize_bilinear": "RESIZE_BILINEAR",
    "mcuq_reduce_max_min": "REDUCE_MAX, REDUCE_MIN",
    "mcuq_batch_matmul": "BATCH_MATMUL",
    "mcuq_sub": "SUB (+ add_sub, shared with ADD)",
    "add_sub": "ADD, SUB (shared body)",
    "mcuq_max_min": "MAXIMUM, MINIMUM",
    "mcuq_prelu": "PRELU",
    "broadcast_binary": "ADD, SUB, MUL, MAXIMUM, MINIMUM, PRELU (shared broadcast walk)",
}
TOOLS = {
    "ATmega2560": ("avr-gcc", "avr-nm", ["-mmcu=atmega2560"]),
    "Cortex-M4": ("arm-none-eabi-gcc", "arm-none-eabi-nm", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]),
}


def _sizes(cc: str, nm: str, flags: list[str], tmp: Path) -> dict[str, int]:
    obj = tmp / f"k_{cc}.o"
    subprocess.run([cc, *flags, "-Os", "-std=c99", "-ffunction-sections", "-c", str(KERNELS), "-o", str(obj)], check=True)
    out = subprocess.run([nm, "-S", "--size-sort", str(obj)], capture_output=True, text=True, check=True).stdout
    sizes: dict[str, int] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[2].lower() == "t":
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def flash_table(tmp: Path) -> list[str]:
    per_target = {name: _sizes(cc, nm, flags, tmp) for name, (cc, nm, flags) in TOOLS.items()}
    rows = ["| kernel | ops | ATmega2560 flash (B) | Cortex-M4 flash (B) |", "|---|---|---|---|"]
    for fn, ops in NEW_KERNELS.items():
        cells = [str(per_target[t].get(fn, "inlined")) for t in TOOLS]
        rows.append(f"| `{fn}` | {ops} | {' | '.join(cells)} |")
    return rows


def linked_symbols(tmp: Path) -> list[str]:
    main = tmp / "main.c"
    main.write_text(
        '#include "mcuq_kernels.h"\nstatic const mcuq_dim d[4] = {1, 1, 1, 4};\nint8_t a[4], b[4], o[4];\n'
        "int main(void) { mcuq_add(a, d, b, d, o, d, 0, 1073741824L, 0, 0, 1073741824L, 0, 20, 0, 1073741824L, 0, -128, 127); return o[0]; }\n"
    )
    elf = tmp / "fw.elf"
    subprocess.run(
        ["avr-gcc", "-mmcu=atmega2560", "-Os", "-std=c99", "-ffunction-sections", "-Wl,--gc-sections", "-I", str(KERNELS.parent)]
        + [str(main), str(KERNELS), "-o", str(elf)],
        check=True,
    )
    out = subprocess.run(["avr-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    present = {line.split()[-1] for line in out.splitlines() if line.split()}
    return [f"| {fn} | {'linked' if fn in present else 'not linked'} |" for fn in NEW_KERNELS]


def ram_table() -> list[str]:
    sys.path.insert(0, str(ROOT / "tests"))
    import keras
    import numpy as np
    from test_c_ops_extra_deploy import MODELS

    from mcuq.backends.c.program import compile_model
    from mcuq.common.console import SILENT
    from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process
    from mcuq.model.info import parse_model
    from mcuq.reference.host_tflm import measure_min_arena

    rows = [
        "| model | new ops | plain-C buffer | liveness lower bound | x86 TFLM min arena |",
        "|---|---|---|---|---|",
    ]
    for name, build in MODELS.items():
        with tempfile.TemporaryDirectory() as tmp_name:
            folder = Path(tmp_name)
            model, shape = build()
            model.save(folder / "m.keras")
            np.save(folder / "cal.npy", np.random.default_rng(3).normal(size=(64, *shape)).astype(np.float32))
            out = convert_in_this_process(folder / "m.keras", str(folder / "cal.npy"), QuantizeOptions(calibration_samples=64), SILENT)
            keras.backend.clear_session()
        info = parse_model(out["tflite"])
        plan = compile_model(info).plan
        assert plan is not None
        sample = [np.zeros(t.shape, np.int8) for t in info.input_tensors]
        ops = ", ".join(sorted({o for o in info.op_names if o in {*NEW_OPS}}))
        rows.append(f"| {name} | {ops} | {plan.arena_bytes:,} | {plan.lower_bound:,} | {measure_min_arena(info.raw, sample):,} |")
    return rows


NEW_OPS = [op.strip() for ops in NEW_KERNELS.values() for op in ops.split("(")[0].split(",")]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("### Flash per new kernel (-Os, -ffunction-sections; nm -S)\n")
        print("\n".join(flash_table(tmp)))
        print("\n### A firmware calling only mcuq_add, linked with --gc-sections (avr-gcc)\n")
        print("| kernel | in the firmware |\n|---|---|")
        print("\n".join(linked_symbols(tmp)))
    print("\n### RAM of the models using the new ops (bytes)\n")
    print("\n".join(ram_table()))


if __name__ == "__main__":
    main()
