"""Lines on a serial port: the framing of the validation link (docs/device_protocol.md).

Every line the host sends ends with `` CC`` (CRC-8, polynomial 0x07, of the characters before
that space) and a newline, and is at most 63 characters, so it fits a 64-byte UART buffer. The
board's answers start with ``=`` and end the same way; lines starting with ``mcuq: `` are its
boot self-test, any other line is the application's and is ignored. Every read has a deadline:
nothing here waits without bound.
"""

from __future__ import annotations

import errno
import time
from dataclasses import dataclass

from mcuq.common.errors import MCUQError

MAX_LINE = 63
BOOT_PREFIX = "mcuq: "


class DeviceError(MCUQError):
    """A fault on the link, in one line that says what to do."""


class NoAnswer(DeviceError):
    pass


class Rebooted(DeviceError):
    pass


class Corrupted(DeviceError):
    pass


def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial 0 (what mcuq_link.c computes)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def frame(text: str) -> bytes:
    """``text`` as one command line: `` CC\\n`` appended."""
    body = text.encode("ascii")
    line = body + b" %02x\n" % crc8(body)
    if len(line) > MAX_LINE + 1:
        raise ValueError(f"command longer than {MAX_LINE} characters: {text[:20]}...")
    return line


def unframe(line: str) -> str | None:
    """The text of a framed answer line, or None when its checksum does not match."""
    if len(line) < 4 or line[-3] != " ":
        return None
    try:
        crc = int(line[-2:], 16)
    except ValueError:
        return None
    body = line[:-3]
    return body if crc8(body.encode("latin-1")) == crc else None


@dataclass
class Line:
    """One line from the board: ``kind`` 'reply' (text checked), 'corrupt' (an '=' line whose
    checksum is wrong), 'boot' (the self-test's output) or 'other' (the application's)."""

    kind: str
    text: str


def classify(raw: str) -> Line:
    if raw.startswith("="):
        body = unframe(raw)
        return Line("reply", body) if body is not None else Line("corrupt", raw)
    if raw.startswith(BOOT_PREFIX):
        return Line("boot", raw)
    return Line("other", raw)


def _open_error(port: str, baud: int, exc: Exception) -> DeviceError:
    code = getattr(exc, "errno", None)
    text = str(exc)
    if code == errno.ENOENT or "No such file" in text:
        return DeviceError(f"{port}: no such serial port; plug the board in and pass its port (ls /dev/ttyUSB* /dev/ttyACM*)")
    if code in (errno.EBUSY, errno.EAGAIN) or "exclusively lock" in text or "Resource temporarily unavailable" in text:
        return DeviceError(f"{port}: the port is busy (another program has it open: close pio device monitor or the IDE's serial monitor)")
    if code == errno.EACCES or "Permission denied" in text:
        return DeviceError(f"{port}: permission denied; add yourself to the 'dialout' group (then log in again)")
    return DeviceError(f"{port}: cannot open at {baud} baud: {text.splitlines()[0][:160] if text else type(exc).__name__}")


class SerialLink:
    """The board's serial port, opened exclusively (a second program would steal bytes)."""

    def __init__(self, port: str, baud: int = 115200) -> None:
        import serial  # pyserial: imported here so `mcuq --help` stays light

        self.port_name = port
        self.baud = baud
        self._buffer = b""
        try:
            self.port = serial.Serial(port, baud, timeout=0.05, write_timeout=2.0, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise _open_error(port, baud, exc) from None

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:  # noqa: BLE001 - closing a port that went away must not raise
            pass

    def pulse_reset(self) -> None:
        """The Arduino auto-reset: DTR low then high restarts boards with a USB-serial chip
        (a pseudo-terminal or a native-USB board ignores it)."""
        try:
            self.port.dtr = False
            time.sleep(0.1)
            self.port.dtr = True
        except (OSError, ValueError):
            pass

    def write(self, data: bytes) -> None:
        import termios

        import serial

        try:
            self.port.write(data)
            self.port.flush()
        # termios.error is not an OSError: pyserial's flush() (tcdrain) raises it when the far
        # end of a pseudo-terminal is gone, e.g. the emulator was killed mid-run.
        except (serial.SerialException, OSError, termios.error) as exc:
            raise DeviceError(
                f"{self.port_name}: the port closed while writing ({str(exc)[:80]}): the board was unplugged or the emulator stopped"
            ) from None

    def send(self, text: str) -> None:
        self.write(frame(text))

    def read_line(self, deadline: float) -> str | None:
        """The next line (without its newline), or None at ``deadline`` (time.monotonic())."""
        import serial

        while True:
            cut = self._buffer.find(b"\n")
            if cut >= 0:
                raw, self._buffer = self._buffer[:cut], self._buffer[cut + 1 :]
                return raw.rstrip(b"\r").decode("latin-1")
            if time.monotonic() >= deadline:
                return None
            try:
                chunk = self.port.read(256)
            except (serial.SerialException, OSError) as exc:
                raise DeviceError(
                    f"{self.port_name}: the port closed while reading ({str(exc)[:80]}): the board was unplugged or the emulator stopped"
                ) from None
            self._buffer += chunk
            if len(self._buffer) > 4096:  # no newline in 4 KB: wrong baud rate
                self._buffer = self._buffer[-256:]

    def drain(self, quiet: float = 0.2, limit: float = 2.0) -> list[str]:
        """Reads until the port is quiet for ``quiet`` seconds (at most ``limit``): stale answers
        of an interrupted run, the boot log. Returns the complete lines seen."""
        lines: list[str] = []
        end = time.monotonic() + limit
        while time.monotonic() < end:
            line = self.read_line(min(end, time.monotonic() + quiet))
            if line is None:
                if not self._buffer:
                    break
                continue
            lines.append(line)
        self._buffer = b""
        return lines
