"""Flash and RAM cost of the validation link (docs/device_protocol.md), per board.

    python benchmarks/device_link.py [--boards uno,nano,...]

For every board with an emulator toolchain here (AVR: avr-gcc; Cortex-M: arm-none-eabi-gcc) the
digits model is deployed with the plain-C runtime and its firmware is linked twice with -Os and
--gc-sections, with the one emulator harness of its CPU: with -DMCUQ_EMULATED_LINK (mcuq_link.c,
the receive side of the UART, the link's hooks, the API calls it makes) and without. The difference of
`size` (flash = .text + .data, RAM = .data + .bss) is the link's cost. `mcuq_link.c` alone
(its object file) is printed too: the part that is the same on every framework. ESP32 boards
(Xtensa / RISC-V) have no compiler here and are listed as not measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_BOARDS = "uno,nano,mega2560,nano33ble,pico,nucleo_f446re,nucleo_l4r5zi,teensy41,esp32,esp32s3,esp32c3"


def sizes(tool: str, elf: Path) -> tuple[int, int]:
    out = subprocess.run([tool, "-B", str(elf)], capture_output=True, text=True, check=True).stdout.splitlines()[1].split()
    text, data, bss = (int(x) for x in out[:3])
    return text + data, data + bss


def link_object(board, src: Path, folder: Path) -> tuple[int, int]:
    cpu = board.cpu or {}
    if board.architecture == "avr8":
        cmd, tool = ["avr-gcc", f"-mmcu={str(cpu['core']).lower()}"], "avr-size"
    else:
        cmd, tool = ["arm-none-eabi-gcc", *cpu["cflags"]], "arm-none-eabi-size"
    obj = folder / "mcuq_link.o"
    subprocess.run([*cmd, "-std=c99", "-Os", "-c", str(src / "mcuq_link.c"), "-I", str(src), "-o", str(obj)], check=True)
    return sizes(tool, obj)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boards", default=DEFAULT_BOARDS)
    args = parser.parse_args()
    from mcuq import quantize
    from mcuq.boards import get_board
    from mcuq.deploy import DeployRequest, deploy
    from mcuq.device.emulated import build_link_firmware
    from mcuq.toolchains.emulate import no_emulator_reason

    rows = []
    with tempfile.TemporaryDirectory(prefix="mcuq-linkcost-") as tmp:
        work = Path(tmp)
        model = work / "digits.tflite"
        quantize(str(ROOT / "examples/digits/model.keras"), str(ROOT / "examples/digits/calibration.npy"), str(model))
        for board_id in args.boards.split(","):
            board = get_board(board_id)
            reason = no_emulator_reason(board)
            if reason:
                rows.append(f"| {board_id} | {board.mcu} | not measured: no compiler for this CPU here | | | |")
                continue
            out = work / board_id
            deploy(DeployRequest(model=str(model), board=board_id, out=str(out), runtime="c", golden=1))
            tool = "avr-size" if board.architecture == "avr8" else "arm-none-eabi-size"
            flash_link, ram_link = sizes(tool, build_link_firmware(out, board, work, link=True))
            flash_plain, ram_plain = sizes(tool, build_link_firmware(out, board, work, link=False))
            obj_flash, obj_ram = link_object(board, out / "src", work)
            rows.append(
                f"| {board_id} | {board.mcu} | {flash_link - flash_plain:+,} | {ram_link - ram_plain:+,} | {obj_flash:,} | {obj_ram:,} |"
            )
            print(rows[-1], flush=True)
    print("\n| board | MCU | firmware flash | firmware RAM | mcuq_link.o flash | mcuq_link.o RAM |")
    print("|---|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
