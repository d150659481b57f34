"""Plain-C runtime, SVDF: flash of the kernel and RAM/speed of SVDF models in the emulators.

Prints two tables (markdown):
1. flash of mcuq_svdf.c per symbol and in total (avr-gcc -Os for the ATmega2560,
   arm-none-eabi-gcc -Os for the Cortex-M4, -ffunction-sections; nm -S). It is copied into a
   project only when the model has an SVDF.
2. SVDF .tflite files built as in tests/test_c_svdf.py (the converter does not emit SVDF from
   Keras), deployed with --runtime c to nucleo_f446re (qemu) and mega2560 (simavr): the state
   (a static array, outside the buffer), the activation buffer, the x86 TFLite Micro minimum
   arena, the self-test firmware's flash and static RAM, and the emulator's count per inference.

Run: python benchmarks/svdf_c.py   (about a minute: four emulated deploys)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from lstm_c import EMULATED_HEADER, TOOLS, _object_symbols, emulated_rows  # noqa: E402
from test_c_svdf import Case, build_svdf  # noqa: E402

KERNEL = ROOT / "firmware_templates" / "c" / "runtime" / "mcuq_svdf.c"
MODELS = {
    "int8 state: 6 in, 3 units x rank 2, memory 4": Case(units=3, rank=2, memory=4, state_zp=5, in_zp=-7),
    "KWS-like int16 state: 40 in, 64 units x rank 1, memory 8": Case(
        in_dim=40, units=64, rank=1, memory=8, state16=True, feature_scale=1e-4, state_scale=2.0**-15, time_scale=3.0e-5, time_range=20000
    ),
}


def flash_table(tmp: Path) -> list[str]:
    per = {t: _object_symbols(cc, nm, flags, KERNEL, tmp / f"svdf_{cc}.o") for t, (cc, nm, flags) in TOOLS.items()}
    names = sorted({n for sizes in per.values() for n in sizes}, key=lambda n: -max(s.get(n, 0) for s in per.values()))
    rows = ["| symbol | ATmega2560 (B) | Cortex-M4 (B) |", "|---|---|---|"]
    rows += [f"| `{n}` | {' | '.join(str(per[t].get(n, 'inlined')) for t in TOOLS)} |" for n in names]
    rows.append(f"| **total** | {' | '.join(f'**{sum(per[t].values()):,}**' for t in TOOLS)} |")
    return rows


def model_table(tmp: Path) -> list[str]:
    rows = list(EMULATED_HEADER)
    for k, (name, case) in enumerate(MODELS.items()):
        path = tmp / f"svdf_{k}.tflite"
        path.write_bytes(build_svdf(case, seed=3))
        rows += emulated_rows(name, path, tmp)
    return rows


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print("### Flash of the SVDF kernel (-Os, -ffunction-sections; nm -S)\n")
        print("\n".join(flash_table(tmp)))
        print("\n### SVDF models with --runtime c (golden sequences with a reset, emulators)\n")
        print("\n".join(model_table(tmp)))


if __name__ == "__main__":
    main()
