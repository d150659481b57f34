"""The validation link's commands, with retries and bounded waits (docs/device_protocol.md).

``Session.open`` opens the port, lets an Arduino reset (DTR) and boot, ends whatever an
interrupted run left half-sent, and identifies the firmware. ``infer`` loads one input in
chunks of 24 bytes (each acknowledged, so a 64-byte UART buffer never overflows) and runs it
once; a corrupted or missing answer is retried (input included: the runtime may have reused
the input's memory) and then reported in one line. A boot line in the middle of a command means
the board restarted (HardFault, watchdog, brown-out).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from mcuq.device.link import Corrupted, DeviceError, NoAnswer, Rebooted, SerialLink

CHUNK = 24
RETRIES = 3
BOOT_WAIT = 2.5  # an Arduino's bootloader waits ~1.5 s after the DTR reset, then the self-test prints
ANSWER_TIMEOUT = 2.0
FIRST_RUN_TIMEOUT = 60.0  # one inference of a large model on an 8-bit AVR (or in simavr) takes seconds
ERRORS = {1: "malformed command", 2: "checksum mismatch", 3: "line too long", 4: "model not initialised", 5: "offset out of range"}
STATUS = {0: "ok", 1: "not initialized", 2: "model data", 3: "arena too small", 4: "ops", 5: "invoke failed", 6: "bad argument"}


@dataclass(frozen=True)
class Identity:
    """What the firmware says it is (the =I answer)."""

    protocol: int
    crc32: int
    model_bytes: int
    runtime: str
    library: str
    arena_bytes: int
    arena_used: int
    cpu_hz: int
    tick_hz: int
    input_bytes: int
    output_bytes: int

    @classmethod
    def parse(cls, text: str) -> Identity:
        f = text.split()
        if len(f) != 12 or f[0] != "=I":
            raise Corrupted(f"unexpected identify answer: {text[:80]}")
        h = [int(x, 16) for x in f[1:4]] + [0, 0] + [int(x, 16) for x in f[6:]]
        return cls(h[0], h[1], h[2], f[4], f[5], h[5], h[6], h[7], h[8], h[9], h[10])


@dataclass
class Inference:
    output: bytes
    ticks: int
    stack_bytes: int


@dataclass
class Session:
    link: SerialLink
    identity: Identity | None = None
    boot_log: list[str] = field(default_factory=list)
    retries: int = 0  # commands sent again after a lost or corrupted answer

    @classmethod
    def open(cls, port: str, baud: int = 115200, reset: bool = True, boot_wait: float = BOOT_WAIT) -> Session:
        link = SerialLink(port, baud)
        try:
            if reset:
                link.pulse_reset()
            session = cls(link)
            session.boot_log = link.drain(quiet=boot_wait, limit=boot_wait + 8.0)
            link.write(b"\n")  # ends a command an interrupted run left half-sent
            link.drain(quiet=0.1, limit=1.0)
            session.identify()
        except BaseException:
            link.close()
            raise
        return session

    def close(self) -> None:
        try:
            self.link.send("Q")  # the application runs again
        except DeviceError:
            pass
        self.link.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one command

    def _answers(self, command: str, last: str, timeout: float) -> list[str]:
        """Sends ``command`` once; returns the verified answer lines up to the one starting with
        ``last``. Raises Corrupted, NoAnswer or Rebooted."""
        self.link.send(command)
        deadline = time.monotonic() + timeout
        lines: list[str] = []
        from mcuq.device.link import classify

        while True:
            raw = self.link.read_line(deadline)
            if raw is None:
                raise NoAnswer(f"no answer to '{command.split()[0]}' within {timeout:.0f} s")
            line = classify(raw)
            if line.kind == "boot":
                raise Rebooted(raw)
            if line.kind == "corrupt":
                raise Corrupted(f"answer with a bad checksum: {raw[:40]}")
            if line.kind != "reply":
                continue
            if line.text.startswith("=E"):
                code = int(line.text.split()[1], 16) if len(line.text.split()) > 1 else 0
                raise Corrupted(f"the board refused '{command.split()[0]}': {ERRORS.get(code, f'error {code}')}")
            if line.text.startswith("=B"):  # the link's ready line: the board just started
                raise Rebooted(raw)
            lines.append(line.text)
            if line.text.startswith(last):
                return lines

    def _retry(self, what: str, attempt: object, timeout: float) -> list[str]:
        """Runs ``attempt`` (a callable returning the answer lines) with retries on a lost or
        corrupted answer; a reboot is never retried."""
        problem, silent = "", True
        for n in range(RETRIES):
            try:
                return attempt()  # type: ignore[operator, no-any-return]
            except Rebooted:
                raise Rebooted(
                    f"{self.link.port_name}: the board restarted during {what} (its boot output appeared): a HardFault, the watchdog "
                    "or a brown-out; check the stack size and the power supply, then run again"
                ) from None
            except (Corrupted, NoAnswer) as exc:
                problem, silent = str(exc), silent and isinstance(exc, NoAnswer)
                if n + 1 < RETRIES:
                    self.retries += 1
                    self.link.write(b"\n")
                    self.link.drain(quiet=0.1, limit=1.0)
        if silent:
            raise NoAnswer(
                f"{self.link.port_name}: no answer to {what} within {timeout:.0f} s ({RETRIES} tries): the board stopped, "
                f"restarted without printing, or the baud rate ({self.link.baud}) is wrong"
            )
        raise Corrupted(
            f"{self.link.port_name}: {what} failed {RETRIES} times ({problem}); the link loses or corrupts bytes: "
            f"check the cable and the baud rate ({self.link.baud})"
        )

    # ------------------------------------------------------------------ commands

    def identify(self) -> Identity:
        try:
            lines = self._retry("identify", lambda: self._answers("I", "=I", ANSWER_TIMEOUT), ANSWER_TIMEOUT)
        except NoAnswer:
            raise NoAnswer(
                f"{self.link.port_name}: no answer from an mcuq firmware at {self.link.baud} baud: wrong --baud, or the board runs "
                "another firmware (flash this project: pio run -t upload)"
            ) from None
        self.identity = Identity.parse(lines[-1])
        return self.identity

    def reset(self) -> int:
        """Clears the model's state on the board; a refusal is an error, since the outputs that
        follow would continue from the old state and be compared with the wrong reference."""
        lines = self._retry("reset", lambda: self._answers("Z", "=Z", ANSWER_TIMEOUT), ANSWER_TIMEOUT)
        status = int(lines[-1].split()[1], 16)
        if status != 0:
            raise DeviceError(
                f"{self.link.port_name}: the board refused to reset the model's state: {STATUS.get(status, f'status {status}')}"
            )
        return status

    def _load(self, data: bytes, boundaries: list[int]) -> None:
        """The input in chunks that never cross a tensor's end (``boundaries``: end offsets)."""
        offset = 0
        while offset < len(data):
            end = min(offset + CHUNK, next(b for b in boundaries if b > offset))
            chunk = data[offset:end]
            text = f"L {offset:x} {chunk.hex()}"
            answer = self._answers(text, "=L", ANSWER_TIMEOUT)[-1]
            if int(answer.split()[1], 16) != end:
                raise Corrupted(f"the board acknowledged offset {answer.split()[1]} instead of {end:x}")
            offset = end

    def infer(self, data: bytes, boundaries: list[int], timeout: float = FIRST_RUN_TIMEOUT) -> Inference:
        """Loads ``data`` (all inputs in order) and runs the model once."""
        identity = self.identity
        assert identity is not None
        if len(data) != identity.input_bytes:
            raise DeviceError(f"input of {len(data)} bytes, the firmware expects {identity.input_bytes}")

        def attempt() -> list[str]:
            self._load(data, boundaries)
            return self._answers("R 1", "=R", timeout)

        lines = self._retry("an inference", attempt, timeout)
        status = int(lines[-1].split()[1], 16)
        if status != 0:
            raise DeviceError(f"{self.link.port_name}: invoke failed on the board: {STATUS.get(status, f'status {status}')}")
        output = bytearray(identity.output_bytes)
        seen = 0
        ticks = stack = 0
        for line in lines[:-1]:
            parts = line.split()
            if parts[0] == "=O" and len(parts) == 3:
                off, payload = int(parts[1], 16), bytes.fromhex(parts[2])
                output[off : off + len(payload)] = payload
                seen += len(payload)
            elif parts[0] == "=T" and len(parts) == 3:
                ticks, stack = int(parts[1], 16), int(parts[2], 16)
        if seen != identity.output_bytes:
            raise DeviceError(f"{self.link.port_name}: the board sent {seen} output bytes, expected {identity.output_bytes}")
        return Inference(bytes(output), ticks, stack)
