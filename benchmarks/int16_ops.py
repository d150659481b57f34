"""Plain-C runtime, 16x8 kernels (int16 activations, int8 weights): flash per kernel and RAM.

Prints three tables (markdown):
1. flash of each function of mcuq_kernels_s16.c (avr-gcc -Os for the ATmega2560,
   arm-none-eabi-gcc -Os for the Cortex-M4), read with avr-nm / arm-none-eabi-nm -S from an
   object built with -ffunction-sections: what --gc-sections keeps or drops per function;
2. the proof that the 16x8 kernels cost an int8 model nothing: the int8 digits model's self-test
   firmware, linked with --gc-sections, contains none of their symbols;
3. RAM of the 16x8 classifier of tests/test_c_int16_deploy.py: the plain-C activation buffer,
   the liveness lower bound and the x86 TFLite Micro minimum arena.

Run: python benchmarks/int16_ops.py   (a minute: two TensorFlow conversions)
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNTIME = ROOT / "firmware_templates" / "c" / "runtime"
KERNELS = RUNTIME / "mcuq_kernels_s16.c"
# kernel function -> the ops it runs
S16_KERNELS = {
    "mcuq_conv_s16": "CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED",
    "mcuq_binary_s16": "ADD, SUB, MUL, MAXIMUM, MINIMUM, PRELU",
    "mcuq_requantize_s16": "QUANTIZE (int16 -> int16, int8 <-> int16)",
    "mcuq_softmax_s16": "SOFTMAX (+ 2 x 1026 B of tables in flash)",
    "mcuq_pool_s16": "MAX_POOL_2D, AVERAGE_POOL_2D",
    "mcuq_mean_s16": "MEAN",
    "mcuq_logistic_s16": "LOGISTIC (+ 512 B sigmoid table, shared with TANH)",
    "mcuq_tanh_s16": "TANH",
    "mcuq_transpose_conv_s16": "TRANSPOSE_CONV (no scratch buffer)",
    "mcuq_rsqrt_s16": "RSQRT",
    "mcuq_batch_matmul_s16": "BATCH_MATMUL",
}
TOOLS = {
    "ATmega2560": ("avr-gcc", "avr-nm", ["-mmcu=atmega2560"]),
    "Cortex-M4": ("arm-none-eabi-gcc", "arm-none-eabi-nm", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]),
}


def _sizes(cc: str, nm: str, flags: list[str], tmp: Path) -> dict[str, int]:
    obj = tmp / f"k_{cc}.o"
    subprocess.run(
        [cc, *flags, "-Os", "-std=c99", "-ffunction-sections", "-I", str(RUNTIME), "-c", str(KERNELS), "-o", str(obj)], check=True
    )
    out = subprocess.run([nm, "-S", "--size-sort", str(obj)], capture_output=True, text=True, check=True).stdout
    return {p[3]: int(p[1], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 4 and p[2].lower() == "t"}


def flash_table(tmp: Path) -> list[str]:
    per_target = {name: _sizes(cc, nm, flags, tmp) for name, (cc, nm, flags) in TOOLS.items()}
    rows = ["| kernel | ops | ATmega2560 flash (B) | Cortex-M4 flash (B) |", "|---|---|---|---|"]
    for fn, ops in S16_KERNELS.items():
        rows.append(f"| `{fn}` | {ops} | {' | '.join(str(per_target[t].get(fn, 'inlined')) for t in TOOLS)} |")
    return rows


def int8_firmware_symbols(tmp: Path) -> list[str]:
    """Which 16x8 kernels the int8 digits model's self-test firmware (avr-gcc, --gc-sections) links."""
    from mcuq.backends.c.codegen import render_c_model
    from mcuq.backends.c.program import compile_model
    from mcuq.frontend.converter import quantize

    digits = ROOT / "examples" / "digits"
    info = quantize(digits / "model.keras", str(digits / "calibration.npy")).info
    files = render_c_model(compile_model(info), "digits")
    main = '#include "mcuq_model.h"\nint main(void) { mcuq_invoke(); return 0; }\n'
    for name, text in {**files, "main.c": main}.items():
        (tmp / name).write_text(text)
    elf = tmp / "fw.elf"
    sources = [str(tmp / n) for n in ("main.c", "mcuq_model.c", "mcuq_kernels.c", "mcuq_kernels_s16.c")]
    cmd = ["avr-gcc", "-mmcu=atmega2560", "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections"]
    subprocess.run([*cmd, "-I", str(tmp), *sources, "-o", str(elf), "-lm"], check=True)
    present = {
        line.split()[-1] for line in subprocess.run(["avr-nm", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines()
    }
    return ["| kernel | in the int8 digits firmware |", "|---|---|"] + [
        f"| {fn} | {'linked' if fn in present else 'not linked'} |" for fn in S16_KERNELS
    ]


def ram_table(tmp: Path) -> list[str]:
    import keras
    import numpy as np

    from mcuq.backends.c.program import compile_model
    from mcuq.frontend.converter import QuantizeOptions, quantize
    from mcuq.reference.host_tflm import measure_min_arena

    layers = keras.layers
    keras.utils.set_random_seed(21)
    inp = keras.Input((10, 10, 1))
    x = layers.Conv2D(4, 3, strides=2, padding="same", activation="relu")(inp)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.Conv2DTranspose(3, 2, strides=2, bias_initializer=keras.initializers.RandomNormal(0, 0.5, seed=2))(x)
    x = layers.Dense(8, activation="relu")(layers.Flatten()(x))
    keras.Model(inp, layers.Dense(4, activation="softmax")(x)).save(tmp / "m.keras")
    np.save(tmp / "cal.npy", np.random.default_rng(3).normal(size=(32, 10, 10, 1)).astype(np.float32))
    info = quantize(tmp / "m.keras", str(tmp / "cal.npy"), options=QuantizeOptions(activations="int16")).info
    plan = compile_model(info).plan
    assert plan is not None
    sample = [np.zeros(t.shape, np.int16) for t in info.input_tensors]
    return [
        "| model | ops | plain-C buffer (B) | liveness lower bound (B) | x86 TFLite Micro min arena (B) |",
        "|---|---|---|---|---|",
        f"| 16x8 classifier | {', '.join(info.op_names)} | {plan.arena_bytes} | {plan.lower_bound} | {measure_min_arena(info.raw, sample)} |",
    ]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        for title, table in (
            ("Flash per 16x8 kernel (-Os, -ffunction-sections; nm -S)", flash_table),
            ("An int8 model's firmware, linked with --gc-sections (avr-gcc)", int8_firmware_symbols),
            ("RAM of a 16x8 model", ram_table),
        ):
            folder = Path(tmp) / table.__name__
            folder.mkdir()
            print(f"#### {title}\n")
            print("\n".join(table(folder)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
