"""The thin writer: puts rendered files on disk without ever losing a user's work.

Why it is built this way:

* **All or nothing.** The whole new project (new generated files plus every file of the old
  project that stays) is staged in a hidden sibling folder, then swapped with the old folder
  in one ``renameat2(RENAME_EXCHANGE)`` (two renames with a recovery record where the kernel
  lacks it). A failure or ``kill -9`` at any moment leaves the old project or the new one,
  never a mix; the leftover staging folder is removed on the next run.
* **Nothing foreign is touched.** With ``--force`` mcuq replaces or drops a file only when it
  lies inside the project, the previous manifest lists it, and its bytes still hash to what
  mcuq wrote. A listed file the user edited is kept under a new name and reported; paths the
  manifest lists outside the project are never looked at. Old files that stay are carried into
  the staging folder as hard links, so even a large ``.pio`` build folder costs no copy.
* **An interrupted deploy is recognised.** The project carries ``.mcuq-unvalidated`` (with the
  deploy's pid) from the moment it is moved in until deploy's own validation finished, so a rerun
  after a kill in that window regenerates it without ``--force``. A deploy still running holds
  the project lock (``mcuq.project.lock``) for that whole time, so the marker lets in only a run
  whose owner is gone.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from mcuq.common.errors import OutputDirError, UsageError
from mcuq.common.files import MANIFEST_LIMIT, read_regular
from mcuq.common.isolation import pid_alive
from mcuq.project.escape import file_name
from mcuq.project.integrity import inside_project, sha256_file
from mcuq.project.manifest import MANIFEST, Manifest

UNVALIDATED_MARK = ".mcuq-unvalidated"
EDITED_SUFFIX = ".mcuq-edited"
_STAGE_RE = re.compile(r"^\.(?P<name>.+)\.mcuq-(?P<pid>\d+)-(?P<kind>stage|old|probe)-[A-Za-z0-9_]+$")


def _as_bytes(content: str | bytes) -> bytes:
    return content.encode("utf-8") if isinstance(content, str) else content


@dataclass
class WriteResult:
    out_dir: Path
    written: list[str]
    kept_user_files: list[str] = field(default_factory=list)
    edited_generated: list[str] = field(default_factory=list)  # listed, edited by the user: kept as <path>.mcuq-edited
    ignored_manifest_paths: list[str] = field(default_factory=list)  # listed but outside the project: never touched
    manifest: Manifest | None = None  # what was written, with the file hashes


@dataclass(frozen=True)
class PreviousProject:
    """What the writer needs of the project already in the output folder: which files mcuq wrote
    there (sha256 as listed; a value that is not a hash matches no file: treated as edited), which
    of them still hold exactly those bytes (its own, free to replace or drop), which listed paths
    lie outside the project (never looked at), and what a deploy killed before its validation left.

    The hashes are taken when the manifest is read: ``write_project`` reads it again under the
    project lock, just before it stages anything."""

    files: dict[str, str]
    unchanged: frozenset[str] = frozenset()
    outside: tuple[str, ...] = ()
    interrupted: tuple[str, ...] = ()


def read_manifest(out_dir: Path) -> PreviousProject | None:
    """The previous manifest's file table, None when absent; raises when present but malformed."""
    path = out_dir / MANIFEST
    if not path.exists() and not path.is_symlink():
        return None
    try:  # a FIFO or a link to /dev/zero in the user's folder must not hang or fill memory
        data = json.loads(read_regular(path, "the previous project's manifest", MANIFEST_LIMIT, OutputDirError).decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise OutputDirError(
            f"{path}: damaged manifest ({type(exc).__name__}); mcuq cannot tell its files from yours: "
            "move the folder away or choose another --out"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise OutputDirError(
            f"{path}: malformed manifest (no 'files' table); mcuq cannot tell its files from yours: "
            "move the folder away or choose another --out"
        )
    files = {p: d if isinstance(d, str) else "" for p, d in data["files"].items() if isinstance(p, str)}
    outside = tuple(sorted(p for p in files if not inside_project(p)))
    unchanged = frozenset(p for p, digest in files.items() if p not in outside and sha256_file(out_dir / p) == digest)
    return PreviousProject(files, unchanged, outside)


def clean_stale(out_dir: Path) -> list[str]:
    """Remove staging folders of dead mcuq runs next to ``out_dir``; bring back an old project a
    kill left between the two fallback renames. Returns what was done (for tests and logs)."""
    parent = out_dir.parent
    done: list[str] = []
    if not parent.is_dir():
        return done
    try:
        entries = list(parent.iterdir())
    except OSError:
        return done
    for entry in entries:
        m = _STAGE_RE.match(entry.name)
        if m is None or m.group("name") != out_dir.name or pid_alive(int(m.group("pid"))) or entry.is_symlink():
            continue
        if m.group("kind") == "old" and not out_dir.exists() and not out_dir.is_symlink():
            os.rename(entry, out_dir)  # killed between the two renames: the old project comes back
            done.append(f"restored {out_dir}")
        else:
            shutil.rmtree(entry, ignore_errors=True)
            done.append(f"removed {entry.name}")
    return done


def _check_parent(out_dir: Path) -> None:
    parent = out_dir.parent
    for anc in [parent, *parent.parents]:
        if anc.exists() and not anc.is_dir():
            raise OutputDirError(f"{out_dir}: {anc} is a file, not a folder; choose another --out")
        if anc.exists():
            # The staging folder will be made here: prove it can be, before minutes of work. The probe
            # is named for this run, so one a kill -9 leaves here is removed by clean_stale.
            probe_prefix = f".{out_dir.name}.mcuq-{os.getpid()}-probe-"
            try:
                os.rmdir(tempfile.mkdtemp(prefix=probe_prefix, dir=anc))
            except OSError as exc:
                raise OutputDirError(f"{out_dir}: cannot create folders in {anc} ({exc.strerror}); choose another --out") from None
            break
    if out_dir.is_symlink():
        raise OutputDirError(f"{out_dir} is a symbolic link{'' if out_dir.exists() else ' to nothing'}; give a real folder as --out")


def project_dir(out: str | None, board_id: str, model_name: str) -> Path:
    """--out, else build/<board>-<model>: always inside build/ (the board id is checked, but a
    Board made in Python is not: a '../' in it must not write elsewhere)."""
    if out:
        return Path(out)
    leaf = f"{board_id}-{model_name}"
    if not leaf or "/" in leaf or "\\" in leaf or leaf in (".", "..") or "\x00" in leaf:
        raise UsageError(f"board id {board_id!r} and model name {model_name!r} do not make a folder name under build/; pass --out DIR")
    return Path("build") / file_name(leaf)  # and no shell-hostile folder name


def interrupted_note(out_dir: Path) -> list[str]:
    """What a previous deploy killed before its validation left (its marker names it): the run
    that takes the folder over says so, instead of regenerating it silently."""
    mark = out_dir / UNVALIDATED_MARK
    if not mark.is_file() or mark.is_symlink():
        return []
    try:
        pid = mark.read_text(encoding="utf-8", errors="replace")[:20].split(" ")[0]
    except OSError:
        pid = ""
    who = f" (pid {pid})" if pid.isdigit() else ""
    return [f"{out_dir}: the deploy that wrote it{who} ended before its validation; taking the project over and regenerating it"]


def check_output_dir(out_dir: Path, force: bool) -> PreviousProject | None:
    """Refuse a foreign or existing project folder before any work is done; the project that is
    there (None: nothing), with the note of a deploy that ended before its validation."""
    _check_parent(out_dir)
    clean_stale(out_dir)
    if not out_dir.exists():
        return None
    if not out_dir.is_dir():
        raise OutputDirError(f"{out_dir} exists and is not a folder; choose another --out")
    try:
        empty = not any(out_dir.iterdir())
    except OSError as exc:
        raise OutputDirError(f"{out_dir}: cannot read the folder ({exc.strerror}); choose another --out") from None
    if empty:
        return None
    interrupted = interrupted_note(out_dir)
    manifest = read_manifest(out_dir)
    if manifest is None:
        raise OutputDirError(f"{out_dir} is not empty and was not generated by mcuq (no {MANIFEST}); choose another --out or empty it")
    if not force and not (out_dir / UNVALIDATED_MARK).is_file():
        raise OutputDirError(f"{out_dir} already holds an mcuq project; pass --force to regenerate its files (your own files are kept)")
    return replace(manifest, interrupted=tuple(interrupted))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _link_or_copy(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _free_name(out_dir: Path, rel: str, taken: set[str]) -> str:
    candidate, n = f"{rel}{EDITED_SUFFIX}", 1
    while candidate in taken or (out_dir / candidate).exists() or (out_dir / candidate).is_symlink():
        n += 1
        candidate = f"{rel}{EDITED_SUFFIX}.{n}"
    return candidate


def _stage_old_tree(out_dir: Path, staging: Path, generated: dict[str, bytes], previous: PreviousProject, result: WriteResult) -> set[str]:
    """Carry every old file that stays into ``staging``; return the paths that exist there."""
    old_files = previous.files
    result.ignored_manifest_paths = list(previous.outside)
    generated_dirs = {str(parent) for p in generated for parent in PurePosixPath(p).parents}
    present: set[str] = set()
    carried: list[tuple[Path, str]] = []
    for root, dirs, names in os.walk(out_dir):
        rel_root = Path(root).relative_to(out_dir)
        for d in list(dirs):
            full = Path(root) / d
            rel = (rel_root / d).as_posix()
            if full.is_symlink():  # a symlink to a folder: carried as a link, never walked
                dirs.remove(d)
                names.append(d)
            elif rel in generated:
                raise OutputDirError(f"{full} is a folder where mcuq generates a file; move it away, then retry (nothing was changed)")
            else:
                (staging / rel).mkdir(parents=True, exist_ok=True)
        for name in names:
            full = Path(root) / name
            rel = (rel_root / name).as_posix()
            if rel == MANIFEST or (rel == UNVALIDATED_MARK and rel_root == Path(".")):
                continue
            ours = rel in previous.unchanged
            if rel in generated or rel in generated_dirs:
                if rel in generated_dirs:
                    raise OutputDirError(
                        f"{full} is in the way of the generated folder {rel}/; move it away, then retry (nothing was changed)"
                    )
                if ours:
                    continue  # mcuq's own, unchanged: replaced
                if rel not in old_files:
                    raise OutputDirError(f"{full} exists but was not generated by mcuq; move it away, then retry (nothing was changed)")
                keep_as = _free_name(out_dir, rel, present | set(generated))
                carried.append((full, keep_as))
                result.edited_generated.append(f"{rel} (your edit kept as {keep_as})")
                continue
            if ours:
                continue  # generated before, no longer part of the project, unchanged: dropped
            if rel in old_files:
                result.kept_user_files.append(f"{rel} (no longer generated; you edited it, so it was kept)")
            carried.append((full, rel))
    for src, rel in carried:
        _link_or_copy(src, staging / rel)
        present.add(rel)
    return present


_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the kernel or libc lacks it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd = -100
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), str(a))


def _swap_in(out_dir: Path, staging: Path) -> Path | None:
    """Put ``staging`` at ``out_dir``; return where the old project went (to be removed)."""
    if not out_dir.exists():
        os.rename(staging, out_dir)
        return None
    if not any(out_dir.iterdir()):
        out_dir.rmdir()
        os.rename(staging, out_dir)
        return None
    if _exchange(staging, out_dir):
        return staging
    old = out_dir.parent / staging.name.replace("-stage-", "-old-")
    os.rename(out_dir, old)  # a kill here is repaired by clean_stale on the next run
    try:
        os.rename(staging, out_dir)
    except OSError:
        os.rename(old, out_dir)
        raise
    return old


def write_project(
    out_dir: Path,
    files: dict[str, str | bytes],
    user_files: dict[str, str | bytes],
    manifest: Manifest | dict[str, Any],
    force: bool,
    mark_unvalidated: bool = False,
) -> WriteResult:
    """Write the project all-or-nothing. ``mark_unvalidated`` leaves ``.mcuq-unvalidated`` in it
    until ``mark_validated`` is called, so a killed deploy is recognised on the rerun."""
    previous = check_output_dir(out_dir, force)
    generated = {path: _as_bytes(content) for path, content in files.items()}
    hashes = {p: hashlib.sha256(b).hexdigest() for p, b in sorted(generated.items())}
    typed = None
    if isinstance(manifest, Manifest):
        typed = replace(manifest, files=hashes, user_files=sorted(user_files))
        manifest_bytes = typed.to_json().encode()
    else:  # a bare record (tests of the writer alone)
        manifest_bytes = (
            json.dumps({**manifest, "files": hashes, "user_files": sorted(user_files)}, indent=2, default=str) + "\n"
        ).encode()
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.mcuq-{os.getpid()}-stage-", dir=out_dir.parent))
    except OSError as exc:
        raise OutputDirError(f"{out_dir}: cannot create the project there ({exc.strerror}); choose another --out") from None
    old: Path | None = None
    try:
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp makes 0700; a project folder is a normal folder
        result = WriteResult(out_dir, sorted([*generated, MANIFEST]), manifest=typed)
        present: set[str] = set()
        if previous is not None:
            present = _stage_old_tree(out_dir, staging, generated, previous, result)
        for path, data in generated.items():
            (staging / path).parent.mkdir(parents=True, exist_ok=True)
            (staging / path).write_bytes(data)
        for path, content in user_files.items():
            if path in present:
                result.kept_user_files.insert(0, path)
            else:
                (staging / path).parent.mkdir(parents=True, exist_ok=True)
                (staging / path).write_bytes(_as_bytes(content))
        if mark_unvalidated:
            # the pid names the run, so the one that takes the project over (under the project lock) can say whose it was
            (staging / UNVALIDATED_MARK).write_text(f"{os.getpid()} mcuq deploy wrote this project and has not finished validating it\n")
        (staging / MANIFEST).write_bytes(manifest_bytes)  # last: a staging folder without it is not a project
        old = _swap_in(out_dir, staging)
    except OSError as exc:
        raise OutputDirError(f"{out_dir}: could not write the project ({exc.strerror}: {exc.filename}); nothing was changed") from None
    finally:
        for leftover in (staging, old):
            if leftover is not None and leftover.exists():
                shutil.rmtree(leftover, ignore_errors=True)
    return result


def mark_validated(out_dir: Path) -> None:
    """Deploy's validation has run: the project is an ordinary one now (rerun needs --force)."""
    (out_dir / UNVALIDATED_MARK).unlink(missing_ok=True)
