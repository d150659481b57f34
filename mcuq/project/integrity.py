"""What a written project's manifest proves about its files: the read side of the writer.

Why apart from ``writer.py``: ``mcuq validate`` (and deploy's own validation) only reads a
project, so it must not depend on the code that stages and swaps folders; the writer, in turn,
needs the same two facts to decide which old files are still its own: a file's sha256 (never
following a symbolic link) and whether a manifest path stays inside the project.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path, PurePosixPath

from mcuq.common.errors import ValidationFailed
from mcuq.common.files import file_kind
from mcuq.project.manifest import MANIFEST, Manifest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    """Hash of a regular file (not following a symlink), None for anything else."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return None
        return sha256_bytes(path.read_bytes())
    except OSError:
        return None


def inside_project(rel: str) -> bool:
    """True for a relative path that stays inside the project (no '..', not absolute)."""
    p = PurePosixPath(rel)
    return bool(rel) and not p.is_absolute() and ".." not in p.parts and "\\" not in rel and not rel.startswith("~")


def check_project_files(project: Path, manifest: Manifest) -> None:
    """Refuse a project file validate would read that is not the project's own regular file.

    A symbolic link out of the project (``mcuq/model_int8.tflite -> /etc/shadow`` in a cloned
    project) would make validate read, run or hash any file; a FIFO would hang it."""
    root = Path(os.path.realpath(project))
    extra = [manifest.model.float_reference, manifest.validation_data]
    for rel in [MANIFEST, *manifest.files, *(r for r in extra if r)]:
        path = project / rel
        if not inside_project(rel) or (not path.exists() and not path.is_symlink()):
            continue  # outside or missing: reported by generated_files_check / find_validation_data
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(root):
            raise ValidationFailed(
                f"{path} is a symbolic link to {real}, outside the project; validate reads only the project's own files: "
                "remove the link and regenerate with 'mcuq deploy --force'"
            )
        kind = os.stat(path).st_mode
        if not stat.S_ISREG(kind):
            raise ValidationFailed(
                f"{path} is {file_kind(kind)}; a project file must be a regular file: regenerate it with 'mcuq deploy --force'"
            )


def generated_files_check(project: Path, manifest: Manifest) -> tuple[bool, str]:
    """Every generated file must still be byte-identical to what mcuq wrote (sha256 in the manifest):
    whether it is, and the line that says so.

    This is what makes the later checks mean something: the arena size in the sources, the model
    array, the golden vectors and the runtime code are all covered, not only the parts a check parses."""
    changed, missing = [], []
    for rel, digest in sorted(manifest.files.items()):
        if not inside_project(rel):
            changed.append(f"{rel} (outside the project)")
            continue
        actual = sha256_file(project / rel)
        if actual is None:
            missing.append(rel)
        elif actual != digest:
            changed.append(rel)
    if not changed and not missing:
        return True, f"{len(manifest.files)} generated files match the hashes in {MANIFEST}"
    parts = ([f"edited since deploy: {', '.join(changed)}"] if changed else []) + ([f"missing: {', '.join(missing)}"] if missing else [])
    return False, f"{'; '.join(parts)}; put your code in src/app.cpp (or your own files) and regenerate with 'mcuq deploy --force'"
