"""Reading a user's file safely: regular files only, with a size cap checked before reading.

Why: a path the user (or a cloned project) names may be a FIFO, which blocks ``open``/``read``
forever, or a symbolic link to ``/dev/zero``, which reads until memory runs out. Every reader of
a model, data, labels, board or config file goes through ``regular_file``/``read_regular``, so
such a path is refused in one line naming the file and what it is. ``O_NONBLOCK`` lets a FIFO be
opened without a writer, so the refusal itself cannot hang; ``fstat`` on the opened file checks
what is actually read (no window between the check and the read).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from mcuq.common.errors import MCUQError

KB, MB, GB = 1 << 10, 1 << 20, 1 << 30
MODEL_LIMIT = 2 * GB  # a .tflite is a flatbuffer: 2 GB is its format's limit
DATA_LIMIT = 8 * GB  # calibration/validation arrays
IMAGE_LIMIT = 256 * MB  # one calibration image
TEXT_LIMIT = 16 * MB  # labels, configs, recorded JSON
BOARD_LIMIT = 1 * MB  # a board file is a few hundred bytes
MANIFEST_LIMIT = 256 * MB  # mcuq.lock.json, golden vectors


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words (``a FIFO (named pipe)``), for one-line refusals."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def _describe(path: Path, mode: int) -> str:
    """``x.tflite is a FIFO`` / ``x.tflite is a symbolic link to /dev/zero, a character device``."""
    try:
        if path.is_symlink():
            return f"{path} is a symbolic link to {os.path.realpath(path)}, {file_kind(mode)}"
    except OSError:
        pass
    return f"{path} is {file_kind(mode)}"


def _size(n: int) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else (f"{n / MB:.1f} MB" if n >= MB else f"{n:,} bytes")


def check_stat(path: Path, st: os.stat_result, what: str, limit: int, error: type[MCUQError]) -> None:
    """Refuse anything but a regular file of at most ``limit`` bytes (``st`` of the followed path)."""
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{_describe(path, st.st_mode)}; {what} must be a regular file")
    if st.st_size > limit:
        raise error(f"{path}: {_size(st.st_size)}, more than the {_size(limit)} mcuq reads as {what}; check that this is the right file")


def regular_file(path: str | Path, what: str, limit: int, error: type[MCUQError] = MCUQError) -> Path:
    """The path, checked to be a regular file (after symlinks) no larger than ``limit``.

    For readers that take a path (Keras, PIL): the check is done on ``stat`` of the path; the
    file could still be swapped afterwards, which only a user racing mcuq on their own files can do."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise error(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror}) ({what})") from None
    check_stat(path, st, what, limit, error)
    return path


def read_regular(path: str | Path, what: str, limit: int, error: type[MCUQError] = MCUQError) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes; anything else is a one-line ``error``."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise error(f"{path}: no such file ({what})") from None
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror}) ({what})") from None
    try:
        check_stat(path, os.fstat(fd), what, limit, error)
        chunks: list[bytes] = []
        total = 0
        while True:  # a file that grows while read (or lies about its size, /proc) stops at the cap
            chunk = os.read(fd, min(1 << 24, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:
                raise error(f"{path}: more than the {_size(limit)} mcuq reads as {what}; check that this is the right file")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{path}: cannot read it ({exc.strerror}) ({what})") from None
    finally:
        os.close(fd)


def read_regular_text(path: str | Path, what: str, limit: int = TEXT_LIMIT, error: type[MCUQError] = MCUQError) -> str:
    """UTF-8 text of a regular file; a non-UTF-8 file is a one-line ``error`` naming the byte."""
    data = read_regular(path, what, limit, error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}) ({what}); save it as UTF-8") from None
