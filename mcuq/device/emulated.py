"""Emulated boards on a pseudo-terminal: the validation link tested without hardware.

A plain-C project's firmware is built with the self-test's emulator harness compiled with
``-DMCUQ_EMULATED_LINK`` (``firmware_templates/c/emulate/avr_main.c`` for simavr, ``cm4_main.c``
for qemu's mps2 boards, whose CMSDK UART0 qemu puts on ``-serial pty``): after the self-test the
link answers instead of the program ending. The project's own ``src/`` files are compiled
unmodified, only main() differs, as in :mod:`mcuq.toolchains.emulate`. simavr has no
pseudo-terminal of its own, so a small bridge on libsimavr (``simavr_pty.c``) is compiled on
first use and cached. A host build (the ESP32 stand-in) is run with a pseudo-terminal's master as
its stdin/stdout. Every board is a child process; :meth:`EmulatedBoard.close` ends it.
"""

from __future__ import annotations

import hashlib
import os
import re
import select
import shutil
import subprocess
import tempfile
import threading
import time
import tty
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mcuq.boards import Board
from mcuq.common.errors import MCUQError
from mcuq.common.resources import templates_dir
from mcuq.toolchains.emulate import AVR_MCUS, OPTIONAL_SOURCES, SELFTEST_CFLAGS
from mcuq.toolchains.qemu import qemu_command

if TYPE_CHECKING:
    from mcuq.backends.tflm.toolchain import LibraryTree

START_TIMEOUT = 20.0
LINK_SOURCES = ("mcuq_model.c", "mcuq_kernels.c", "mcuq_kernels_s16.c", "mcuq_golden.c", "mcuq_selftest.c", "mcuq_api.c", "mcuq_link.c")
PLAIN_SOURCES = ("mcuq_model.c", "mcuq_kernels.c", "mcuq_kernels_s16.c", "mcuq_golden.c", "mcuq_selftest.c")


@dataclass
class EmulatedBoard:
    """A running emulator whose UART is the pseudo-terminal ``port``."""

    port: str
    process: subprocess.Popen[bytes]
    what: str
    keep: list[object] = field(default_factory=list)  # fds, proxies and folders that live as long as the board

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for item in self.keep:
            if isinstance(item, int):
                try:
                    os.close(item)
                except OSError:
                    pass
            elif hasattr(item, "cleanup"):
                item.cleanup()
            elif hasattr(item, "close"):
                item.close()
        self.keep.clear()

    def __enter__(self) -> EmulatedBoard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cache() -> Path:
    from mcuq.backends.tflm.toolchain import cache_root

    folder = cache_root() / "device"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def simavr_bridge() -> Path:
    """The simavr-to-pty bridge, compiled against libsimavr once per source version."""
    source = templates_dir() / "c" / "emulate" / "simavr_pty.c"
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    exe = _cache() / f"mcuq_simavr_pty-{digest}"
    if exe.is_file():
        return exe
    if not Path("/usr/include/simavr/sim_avr.h").is_file():
        raise MCUQError("libsimavr-dev is not installed (apt-get install libsimavr-dev): the AVR link runs simavr through it")
    tmp = exe.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(
        ["gcc", "-O2", "-Wall", "-o", str(tmp), str(source), "-lsimavr", "-lutil"], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise MCUQError(f"cannot build the simavr bridge: {(proc.stderr.strip().splitlines() or [''])[0][:200]}")
    tmp.replace(exe)
    return exe


def _sources(src: Path, names: tuple[str, ...]) -> list[str]:
    missing = [n for n in names if not (src / n).is_file()]
    if missing:
        raise MCUQError(
            f"{src}: {', '.join(missing)} missing; this is not a plain-C project of this mcuq version (regenerate with deploy --force)"
        )
    optional = [n for n in OPTIONAL_SOURCES if (src / n).is_file()]  # kernels linked only by the models that use them
    return [str(src / n) for n in (*names, *optional)]


def build_link_firmware(project: Path, board: Board, folder: Path, link: bool = True) -> Path:
    """The project's plain-C firmware for the board's CPU with the link harness (``link``) or
    with the self-test-only harness (for the size comparison)."""
    cpu = board.cpu
    src = project / "src"
    emu = templates_dir() / "c" / "emulate"
    elf = folder / ("link.elf" if link else "plain.elf")
    if cpu is not None and cpu.emulator == "simavr":
        mcu = AVR_MCUS.get(cpu.core, cpu.core.lower())
        harness = emu / "avr_main.c"
        names = ",".join(str(b) for b in mcu.encode()) + ",0"
        cmd = ["avr-gcc", f"-mmcu={mcu}", f"-DF_CPU={board.clock_mhz * 1_000_000}UL", f'-DMCUQ_MMCU_NAME="{mcu}"']
        cmd += [f"-DMCUQ_MMCU_NAME_BYTES={names}", "-Wl,--undefined=_mmcu,--section-start=.mmcu=0x910000"]
    elif cpu is not None and cpu.emulator == "qemu":
        harness = emu / "cm4_main.c"
        cmd = ["arm-none-eabi-gcc", *cpu.cflags, "-T", str(emu / "mps2_an386.ld"), "-nostartfiles", "--specs=nano.specs"]
        cmd += [f"-DMCUQ_CPU_HZ={board.clock_mhz * 1_000_000}u"]
    else:
        raise MCUQError(f"{board.id}: no emulator for this CPU ({cpu.core if cpu else board.mcu})")
    sources = _sources(src, LINK_SOURCES if link else PLAIN_SOURCES)
    cmd += [*SELFTEST_CFLAGS, "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", "-I", str(src)]
    cmd += ["-DMCUQ_EMULATED_LINK"] if link else []
    cmd += [*sources, str(harness), "-o", str(elf), "-lm"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        first = next((ln for ln in proc.stderr.splitlines() if "error" in ln), proc.stderr.strip()[:200])
        raise MCUQError(f"{cmd[0]} could not build the link firmware of {project}: {first[:240]}")
    return elf


def _read_until(stream: object, pattern: str, process: subprocess.Popen[bytes], what: str) -> str:
    """The first match of ``pattern`` in the child's output, waiting at most START_TIMEOUT."""
    fd = stream.fileno()  # type: ignore[attr-defined]
    text, deadline = "", time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            chunk = os.read(fd, 4096).decode(errors="replace")
            if not chunk and process.poll() is not None:
                break
            text += chunk
            match = re.search(pattern, text)
            if match:
                return match.group(1)
        elif process.poll() is not None:
            break
    process.kill()
    raise MCUQError(f"{what} did not start (no pseudo-terminal within {START_TIMEOUT:.0f} s): {text.strip()[:200]}")


def start_simavr(elf: Path, board: Board) -> EmulatedBoard:
    core = board.cpu.core if board.cpu else board.mcu
    mcu = AVR_MCUS.get(core, core.lower())
    proc = subprocess.Popen(
        [str(simavr_bridge()), mcu, str(board.clock_mhz * 1_000_000), str(elf)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    port = _read_until(proc.stdout, r"pty: (\S+)", proc, f"simavr ({mcu})")
    return EmulatedBoard(port, proc, f"{mcu} in simavr")


def start_qemu(elf: Path, board: Board) -> EmulatedBoard:
    if shutil.which("qemu-system-arm") is None:
        raise MCUQError("qemu-system-arm is not installed (apt-get install qemu-system-arm)")
    machine = str(board.cpu.qemu_machine if board.cpu else None)
    cmd = qemu_command(machine, elf, serial="pty", semihosting=False)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    port = _read_until(proc.stdout, r"char device redirected to (/dev/pts/\d+)", proc, f"qemu ({machine})")
    return EmulatedBoard(port, proc, f"{board.cpu.core if board.cpu else None} code on qemu {machine}")


def start_emulated(project: Path, board: Board) -> EmulatedBoard:
    """Build the plain-C project's link firmware and start it in the board's emulator."""
    folder = tempfile.TemporaryDirectory(prefix="mcuq-link-")
    try:
        elf = build_link_firmware(project, board, Path(folder.name))
        emulator = board.cpu.emulator if board.cpu else None
        emulated = start_simavr(elf, board) if emulator == "simavr" else start_qemu(elf, board)
    except BaseException:
        folder.cleanup()
        raise
    emulated.keep.append(folder)
    return emulated


def start_host_program(cmd: list[str], env: dict[str, str] | None = None, what: str = "host build") -> EmulatedBoard:
    """A host program whose stdin/stdout is a pseudo-terminal (the ESP32 stand-in): its port is
    the terminal's slave, kept open here (raw, never read) so the program never sees a hang-up."""
    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    proc = subprocess.Popen(cmd, stdin=master, stdout=master, stderr=subprocess.DEVNULL, env=env)
    os.close(master)
    return EmulatedBoard(port, proc, what, [slave])


class LossyProxy:
    """A pseudo-terminal in front of ``port`` that drops every ``drop_every``-th byte in each
    direction (a link that loses bytes); its own port is :attr:`port`."""

    def __init__(self, port: str, drop_every: int) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.port = os.ttyname(self.slave)
        self.device = os.open(port, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.device)
        self.drop_every = drop_every
        self.dropped = 0
        self._stop = False
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        counts = {self.master: 0, self.device: 0}
        other = {self.master: self.device, self.device: self.master}
        while not self._stop:
            try:
                ready, _, _ = select.select([self.master, self.device], [], [], 0.1)
                for fd in ready:
                    data = os.read(fd, 256)
                    kept = bytearray()
                    for byte in data:
                        counts[fd] += 1
                        if counts[fd] % self.drop_every == 0:
                            self.dropped += 1
                        else:
                            kept.append(byte)
                    if kept:
                        os.write(other[fd], bytes(kept))
            except OSError:
                time.sleep(0.05)

    def close(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        for fd in (self.master, self.slave, self.device):
            try:
                os.close(fd)
            except OSError:
                pass


def _library_tree(project: Path, library_id: str, source: Path | None) -> tuple[LibraryTree, int, int]:
    """The board library's sources and the project's declared and x86 arena bytes."""
    from mcuq.backends.tflm import toolchain as tb
    from mcuq.project.manifest import read_manifest

    manifest = read_manifest(project)
    return tb.find_library_tree(library_id, project, source), int(manifest.arena["target_bytes"]), int(manifest.arena["host_bytes"])


def start_tflm_host(project: Path, library_id: str, ops: list[str], source: Path | None = None) -> EmulatedBoard:
    """A TFLite Micro project built for x86-64 against its board's library (``mcuq.backends.tflm.toolchain``) and
    run with the validation link on a pseudo-terminal: the stand-in for a board without an
    emulator (ESP32 Xtensa). The library sources come from the project or ``source``. As in
    ``validate --build``, the x86-64 build gets a copy of ``src/`` whose arena is enlarged for
    64-bit structs (the deploy's x86 estimate, doubled); every other byte is the project's."""
    from mcuq.backends.tflm import toolchain as tb
    from mcuq.backends.tflm.build_check import _copy_with_arena

    tree, declared, host = _library_tree(project, library_id, source)
    folder = tempfile.TemporaryDirectory(prefix="mcuq-standin-")
    try:
        copy = _copy_with_arena(project, declared, 2 * max(declared, host), Path(folder.name))
        fw = tb.build_project(copy, tree, tb.HOST, ops)
    except BaseException:
        folder.cleanup()
        raise
    try:
        board = start_host_program(
            [str(fw.path)], {**os.environ, "MCUQ_SHIM_LINK": "1"}, f"{project.name} host build ({tree.library.name})"
        )
    except BaseException:
        fw.close()
        folder.cleanup()
        raise
    board.keep += [fw, folder]
    return board


def start_tflm_qemu(project: Path, board: Board, ops: list[str], source: Path | None = None) -> EmulatedBoard:
    """A TFLite Micro project for a Cortex-M board, its ``src/`` unmodified, built against the
    board's library for the board's CPU (``mcuq.backends.tflm.toolchain``, as ``validate
    --build`` does) and run in qemu with the framework shim's UART on a pseudo-terminal: the
    semihosting argument ``link`` makes the shim serve Serial on the UART and run loop() for ever."""
    from mcuq.backends.tflm import toolchain as tb
    from mcuq.backends.tflm.section import TflmBoardSection

    cpu = tb.cpu_target(board.cpu)
    section = board.section(TflmBoardSection)
    if cpu is None or section is None:
        raise MCUQError(f"{board.id}: no TFLite Micro library build for this CPU in qemu")
    if shutil.which("qemu-system-arm") is None:
        raise MCUQError("qemu-system-arm is not installed (apt-get install qemu-system-arm)")
    tree, _, _ = _library_tree(project, section.library, source)
    fw = tb.build_project(project, tree, cpu, ops)
    try:
        proc = subprocess.Popen(
            qemu_command(str(cpu.machine), fw.path, ["link"], serial="pty"), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        port = _read_until(proc.stdout, r"char device redirected to (/dev/pts/\d+)", proc, f"qemu ({cpu.machine})")
    except BaseException:
        fw.close()
        raise
    return EmulatedBoard(port, proc, f"{project.name} ({tree.library.name}) on qemu {cpu.machine}", [fw])
