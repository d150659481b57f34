"""Progress and messages for the terminal, kept out of the library's return values.

The library reports progress through one ``Console`` so that the CLI decides what is
shown (``--quiet``/``--verbose``) and tests stay silent.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from mcuq.project.escape import terminal


@dataclass
class Console:
    """Where progress lines go; level 0 = quiet, 1 = normal, 2 = verbose."""

    level: int = 0
    stream: object = field(default_factory=lambda: sys.stderr)
    record: bool = False  # keep (step, seconds) in `timings`, for benchmarks
    timings: list[tuple[str, float]] = field(default_factory=list)

    def info(self, message: str) -> None:
        if self.level >= 1:
            print(terminal(message, keep_newlines=True), file=self.stream, flush=True)  # type: ignore[call-overload]

    def debug(self, message: str) -> None:
        if self.level >= 2:
            print(terminal(message, keep_newlines=True), file=self.stream, flush=True)  # type: ignore[call-overload]

    def warn(self, message: str) -> None:
        """Warnings show even in quiet mode: they change what the output means."""
        print(terminal(f"warning: {message}", keep_newlines=True), file=self.stream, flush=True)  # type: ignore[call-overload]

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        """Announce a long step and its duration, so a user sees the tool is working."""
        start = time.perf_counter()
        if self.level >= 1:
            print(terminal(f"  {title} ...", keep_newlines=True), file=self.stream, end="", flush=True)  # type: ignore[call-overload]
        try:
            yield
        except BaseException:
            if self.level >= 1:
                print(" failed", file=self.stream, flush=True)  # type: ignore[call-overload]
            raise
        elapsed = time.perf_counter() - start
        if self.record:
            self.timings.append((title, elapsed))
        if self.level >= 1:
            print(f" done ({elapsed:.1f} s)", file=self.stream, flush=True)  # type: ignore[call-overload]


SILENT = Console(level=0)
