"""One mcuq at a time per project folder: an exclusive ``flock`` held for a whole deploy/validate.

Why it is built this way:

* **The lock is a sibling file**, ``.<name>.mcuq.lock`` next to the output folder, not a file
  inside it: the writer swaps the whole folder (``renameat2``), and the folder may not exist yet
  when the first deploy starts. Every process that means the same folder opens the same path.
* **A killed holder cannot block anyone**: the kernel drops a ``flock`` when its process dies,
  so the next run simply takes it (and says whose lock it took over). The file records the
  holder's pid and command, for the one line the second process prints.
* **No litter**: the holder removes the file while it still holds the lock; a process that
  opened the old file in that moment sees that its file is no longer the one at the path and
  opens it again. Parent folders created only for the lock are removed again when they stay empty.
* **Re-entrant within a process**: deploy validates the project it wrote under its own lock.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcuq.common.errors import OutputDirError

_held: dict[str, int] = {}  # lock path -> how many times this process holds it


def lock_path(out_dir: Path) -> Path:
    """The lock file of ``out_dir``: ``.<name>.mcuq.lock`` in its parent (absolute, normalised)."""
    absolute = Path(os.path.abspath(out_dir))
    return absolute.parent / f".{absolute.name}.mcuq.lock"


def _command() -> str:
    argv = list(sys.argv)
    if argv and (argv[0].endswith(("__main__.py", "/mcuq")) or argv[0] == "mcuq"):
        argv[0] = "mcuq"
    elif argv and argv[0] in ("-c", "-m", ""):
        argv = ["python", *(argv if argv[0] else argv[1:])]
    return shlex.join(argv)[:300] if argv else "python"


def _holder(path: Path) -> str:
    """'pid 123: mcuq deploy ...' from the lock file (written right after it was taken)."""
    for _ in range(10):  # the holder writes its line just after locking: give it a moment
        try:
            text = path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        if text:
            pid, _, command = text.partition(" ")
            return f"pid {pid}: {command}" if pid.isdigit() else text[:300]
        time.sleep(0.05)
    return "pid unknown"


def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing parents; return those created (deepest last)."""
    missing = [p for p in [folder, *folder.parents] if not p.exists()]
    created = []
    for p in reversed(missing):
        try:
            p.mkdir()
            created.append(p)
        except FileExistsError:
            pass
    return created


def _open_locked(path: Path, out_dir: Path) -> int:
    """Open and lock ``path``; the fd is the lock. Retries when the file was removed meanwhile."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputDirError(
                f"{out_dir}: another mcuq is working on this project ({_holder(path)}); wait for it to finish, then retry"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            same = os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)  # the previous holder removed the file after we opened it: take the new one


@contextmanager
def project_lock(out_dir: str | Path, console_note: list[str] | None = None, required: bool = True) -> Iterator[Path | None]:
    """Hold the exclusive lock of ``out_dir`` for the block; refuse in one line when another
    process holds it. ``console_note`` receives a line when a killed run's lock was taken over.

    ``required=False`` (validate) goes on without a lock where the lock file cannot be created at
    all (a read-only parent folder): no mcuq can deploy there either, its staging folder needs it."""
    out_dir = Path(out_dir)
    path = lock_path(out_dir)
    key = str(path)
    if _held.get(key):
        _held[key] += 1
        try:
            yield path
        finally:
            _held[key] -= 1
        return
    created: list[Path] = []
    try:
        created = _make_parents(path.parent)
        fd = _open_locked(path, out_dir)
    except OSError as exc:
        _remove_empty(created)
        if not required and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            yield None
            return
        if exc.errno == errno.ELOOP:
            raise OutputDirError(f"{path} is a symbolic link; remove it (mcuq's lock file for {out_dir})") from None
        raise OutputDirError(
            f"{out_dir}: cannot create the lock file {path.name} in {path.parent} ({exc.strerror}); choose another --out"
        ) from None
    try:
        previous = os.read(fd, 400).decode("utf-8", "replace").strip()
        if previous and console_note is not None:
            console_note.append(f"took over the lock of a killed mcuq run (pid {previous.partition(' ')[0]})")
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {_command()}\n".encode())
        _held[key] = 1
        yield path
    finally:
        _held.pop(key, None)
        try:
            os.unlink(path)  # still holding the lock: nobody can have taken it meanwhile
        except OSError:
            pass
        os.close(fd)
        _remove_empty(created)


def _remove_empty(created: list[Path]) -> None:
    for folder in reversed(created):
        try:
            folder.rmdir()
        except OSError:
            break  # something was put there (the project): keep it and its parents
