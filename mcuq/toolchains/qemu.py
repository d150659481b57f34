"""The one qemu-system-arm command line every Cortex-M run uses: the plain-C self-test, the board
library's firmware and probes, and the emulated board behind ``validate --device``.

``-icount shift=0`` makes qemu count one virtual nanosecond per instruction (the speed tables'
unit); semihosting carries the program's arguments and its exit code; the UART is off unless the
caller wants it on a pseudo-terminal (the validation link).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

QEMU = "qemu-system-arm"


def qemu_command(machine: str, elf: Path, args: Sequence[str] | None = None, serial: str = "none", semihosting: bool = True) -> list[str]:
    """``args``: the program's argv after its name, passed by semihosting (None: no argv)."""
    cmd = [QEMU, "-M", machine, "-nographic", "-monitor", "none", "-serial", serial]
    if semihosting:
        config = "enable=on,target=native"
        if args is not None:
            config += "".join(f",arg={a}" for a in ["firmware", *args])
        cmd += ["-semihosting-config", config]
    return [*cmd, "-icount", "shift=0", "-kernel", str(elf)]
