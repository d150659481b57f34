"""Plain-C runtime, UNIDIRECTIONAL_SEQUENCE_LSTM: flash of the kernel and RAM of LSTM models.

Prints two tables (markdown):
1. flash of the LSTM kernel per symbol and in total (avr-gcc -Os for the ATmega2560,
   arm-none-eabi-gcc -Os for the Cortex-M4, -ffunction-sections; nm -S): mcuq_lstm.c plus the
   int16 gate functions and the 512-byte sigmoid table it shares with the 16x8 LOGISTIC/TANH in
   mcuq_kernels_s16.c and the dot product and requantizations it shares with FULLY_CONNECTED in
   mcuq_kernels.c. mcuq_lstm.c is copied into a project only when the model has an LSTM.
2. two streaming LSTM .tflite files from the standard converter (the mnist_lstm recipe: tf_keras,
   batch 1), deployed with --runtime c to nucleo_f446re (qemu) and mega2560 (simavr): the state
   (static arrays, outside the buffer), the activation buffer, the x86 TFLite Micro minimum arena,
   the self-test firmware's flash and static RAM, and the emulator's count per inference.

Run: python benchmarks/lstm_c.py   (a few minutes: two conversions, four emulated deploys)
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
KERNEL = ROOT / "firmware_templates" / "c" / "runtime" / "mcuq_lstm.c"
# what the LSTM links of the other runtime files: the int16 gate functions, the FC kernel's dot
# product and int16 requantization, the generic requantization (its fallback, the hidden value)
SHARED = {
    KERNEL.parent / "mcuq_kernels_s16.c": ("mcuq_sigmoid16", "mcuq_tanh16", "sigmoid_u16"),
    KERNEL.parent / "mcuq_kernels.c": ("mcuq_dot_rows_s8", "mcuq_requant_s16", "mcuq_mbqm", "mbqm", "srdhm_core"),
}
TOOLS = {
    "ATmega2560": ("avr-gcc", "avr-nm", ["-mmcu=atmega2560"]),
    "Cortex-M4": ("arm-none-eabi-gcc", "arm-none-eabi-nm", ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]),
}
# name -> (steps, features, units, dense outputs)
MODELS = {"LSTM(5), 6 x 3 steps": (6, 3, 5, 4), "mnist_lstm shape: LSTM(20), 28 x 28": (28, 28, 20, 10)}
BOARDS = ("nucleo_f446re", "mega2560")
EMULATED_HEADER = (
    "| model | board | state (B) | plain-C buffer (B) | x86 TFLM min arena (B) | firmware flash (B) | static RAM (B) | self-test | per inference |",
    "|---|---|---|---|---|---|---|---|---|",
)


def _object_symbols(cc: str, nm: str, flags: list[str], source: Path, obj: Path) -> dict[str, int]:
    cmd = [cc, *flags, "-Os", "-std=c99", "-ffunction-sections", "-fdata-sections", "-I", str(KERNEL.parent), "-c", str(source)]
    subprocess.run([*cmd, "-o", str(obj)], check=True)
    out = subprocess.run([nm, "-S", "--size-sort", str(obj)], capture_output=True, text=True, check=True).stdout
    return {p[3]: int(p[1], 16) for p in (line.split() for line in out.splitlines()) if len(p) == 4 and p[2].lower() in "trd"}


def _symbols(cc: str, nm: str, flags: list[str], tmp: Path) -> dict[str, int]:
    sizes = _object_symbols(cc, nm, flags, KERNEL, tmp / f"lstm_{cc}.o")
    for source, names in SHARED.items():
        shared = _object_symbols(cc, nm, flags, source, tmp / f"{source.stem}_{cc}.o")
        sizes.update({n: shared[n] for n in names if n in shared})
    return sizes


def flash_table(tmp: Path) -> list[str]:
    per = {target: _symbols(cc, nm, flags, tmp) for target, (cc, nm, flags) in TOOLS.items()}
    names = sorted({n for sizes in per.values() for n in sizes}, key=lambda n: -max(s.get(n, 0) for s in per.values()))
    rows = ["| symbol | ATmega2560 (B) | Cortex-M4 (B) |", "|---|---|---|"]
    rows += [f"| `{n}` | {' | '.join(str(per[t].get(n, 'inlined')) for t in TOOLS)} |" for n in names]
    rows.append(f"| **total** | {' | '.join(f'**{sum(per[t].values()):,}**' for t in TOOLS)} |")
    return rows


def _convert(steps: int, features: int, units: int, dense: int, path: Path) -> None:
    from mcuq.frontend.tf import import_tensorflow

    tf = import_tensorflow()
    import tf_keras

    tf_keras.utils.set_random_seed(2)
    x = tf_keras.Input(shape=(steps, features), batch_size=1)
    y = tf_keras.layers.Dense(dense)(tf_keras.layers.Flatten()(tf_keras.layers.LSTM(units, return_sequences=True)(x)))
    rng = np.random.default_rng(3)
    converter = tf.lite.TFLiteConverter.from_keras_model(tf_keras.Model(x, y))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([rng.normal(size=(1, steps, features)).astype(np.float32)] for _ in range(30))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    path.write_bytes(converter.convert())


def model_table(tmp: Path) -> list[str]:
    rows = list(EMULATED_HEADER)
    for name, shape in MODELS.items():
        path = tmp / f"lstm_{shape[2]}.tflite"
        _convert(*shape, path)
        rows += emulated_rows(name, path, tmp)
    return rows


def emulated_rows(name: str, path: Path, tmp: Path) -> list[str]:
    """One table row per board: the model deployed with --runtime c (golden sequences with a
    reset), its state, buffer, x86 TFLite Micro's minimum arena, and the emulator's figures."""
    from mcuq.backends.c.program import compile_model
    from mcuq.deploy import DeployRequest, deploy
    from mcuq.model.info import parse_model

    state = compile_model(parse_model(path.read_bytes()), state_mode="streaming").state_bytes
    rows = []
    for board in BOARDS:
        out = tmp / f"{path.stem}_{board}"
        deploy(DeployRequest(model=str(path), board=board, runtime="c", out=str(out), golden=4))
        c = json.loads((out / "mcuq.lock.json").read_text())["c_runtime"]
        e = c["emulation"]
        rows.append(
            f"| {name} | {board} | {state:,} | {c['arena_bytes']:,} | {c['tflm_host_min_bytes']:,} | {e['flash_bytes']:,} | "
            f"{e['ram_bytes']:,} | {'PASS' if e['passed'] else 'FAIL'} | {e['ticks']:,} {e['unit']} |"
        )
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("### Flash of the LSTM kernel (-Os, -ffunction-sections; nm -S)\n")
        print("\n".join(flash_table(tmp)))
        print("\n### Streaming LSTM models with --runtime c (golden sequences with a reset, emulators)\n")
        print("\n".join(model_table(tmp)))


if __name__ == "__main__":
    main()
