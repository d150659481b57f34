"""The files ``mcuq quantize -o`` writes: the .tflite and its ``.mcuq.json`` record, never over a
file mcuq did not write, never half-written (a temporary file renamed into place)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from mcuq.common.errors import MCUQError


def record_path(output: Path) -> Path:
    """The provenance record mcuq writes next to a quantized model."""
    return Path(f"{output}.mcuq.json")


def _is_our_pair(path: Path, record: Path) -> bool:
    """Both files exist as regular files and the record names the model's exact bytes."""
    try:
        if path.is_symlink() or record.is_symlink() or not path.is_file() or not record.is_file():
            return False
        data = json.loads(record.read_text(encoding="utf-8"))
        return isinstance(data, dict) and data.get("model_sha256") == hashlib.sha256(path.read_bytes()).hexdigest()
    except (OSError, ValueError):
        return False


def check_output_file(path: Path, force: bool) -> None:
    """Refuse, before any work, an -o that cannot be written or would replace a foreign file.

    mcuq overwrites a model and its ``.mcuq.json`` record only as a pair it wrote itself (the
    record names the model's sha256); ``--force`` replaces regular files, never a folder."""
    record = record_path(path)
    for target in (path, record):
        if target.is_symlink():
            raise MCUQError(f"{target} is a symbolic link{'' if target.exists() else ' to nothing'}; give a plain file path as -o")
        if target.exists() and not target.is_file():
            raise MCUQError(f"{target} exists and is not a regular file; choose another -o")
    for anc in path.parents:
        if anc.exists() and not anc.is_dir():
            raise MCUQError(f"{path}: {anc} is a file, not a folder; choose another -o")
        if anc.exists():
            probe_writable(anc, f"{path}: cannot write in {anc}", "choose another -o")
            break
    if force or not (path.exists() or record.exists()):
        return
    if not _is_our_pair(path, record):
        foreign = path if path.exists() else record
        raise MCUQError(f"{foreign} exists and was not written by mcuq; choose another -o, or pass --force to replace it")


def probe_writable(folder: Path, what: str, fix: str) -> None:
    """Create and remove a scratch file: the only honest test that a folder takes files (root
    passes ``os.access`` on /proc, a read-only mount passes the permission bits)."""
    try:
        fd, name = tempfile.mkstemp(prefix=".mcuq-probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise MCUQError(f"{what} ({exc.strerror}); {fix}") from None


def write_new_file(path: Path, data: bytes) -> None:
    """Write via a temporary name so a failure never leaves a half-written model."""
    tmp = path.with_name(f".{path.name}.mcuq-tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        if tmp.parent.is_dir():
            tmp.unlink(missing_ok=True)
        raise MCUQError(f"{path}: cannot write it ({exc.strerror}); choose another -o") from None
