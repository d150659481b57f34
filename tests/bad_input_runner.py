"""Running one case of the bad-input matrix (tests/bad_inputs.py) and judging what a user sees:
the exit code, one stderr line naming the thing, no traceback, no byte changed in the workspace.

Shared by tests/test_robustness.py and benchmarks/robustness.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bad_inputs import ROOT, Case, Inputs


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry under root -> content hash (files), 'dir', or 'link:<target>'."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_symlink():
            out[rel] = "link:" + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        elif not path.is_file():  # a FIFO a case made: reading it would block
            out[rel] = "special"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@dataclass
class Outcome:
    case: str
    command: str
    code: int | None
    stderr: str
    clean: bool  # exit 1/2, one line naming the thing, nothing changed
    traceback: bool
    crash: bool
    hang: bool
    files_changed: list[str]
    why: str = ""


def run_case(case: Case, work: Path, inputs: Inputs, timeout: float = 300) -> Outcome:
    """Set the case up in ``work`` (empty), run it, judge it."""
    work.mkdir(parents=True, exist_ok=True)
    args = case.setup(work, inputs)
    before = {**tree_digest(work), **{f"<inputs>/{k}": v for k, v in tree_digest(inputs.project).items()}}
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONDONTWRITEBYTECODE": "1"}
    try:
        # -q: progress lines off, so stderr holds only what went wrong
        proc = subprocess.run(
            [sys.executable, "-m", "mcuq", case.command, "-q", *args],
            capture_output=True,
            text=True,
            cwd=work,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Outcome(case.name, case.command, None, "", False, False, False, True, [], "hang")
    after = {**tree_digest(work), **{f"<inputs>/{k}": v for k, v in tree_digest(inputs.project).items()}}
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    traceback = "Traceback (most recent call last)" in proc.stderr
    crash = proc.returncode < 0
    why = []
    if proc.returncode not in case.codes:
        why.append(f"exit {proc.returncode}, expected {case.codes}")
    if len(lines) != 1:
        why.append(f"{len(lines)} stderr lines")
    elif case.expect.lower() not in lines[0].lower():
        why.append(f"stderr does not name {case.expect!r}")
    if changed:
        why.append(f"changed {changed[:3]}")
    return Outcome(
        case.name,
        case.command,
        proc.returncode,
        proc.stderr[-2000:],
        not why and not traceback,
        traceback,
        crash,
        False,
        changed,
        "; ".join(why),
    )


def summarize(outcomes: list[Outcome]) -> dict[str, int]:
    return {
        "kinds": len(outcomes),
        "clean": sum(o.clean for o in outcomes),
        "poor": sum(not o.clean and not o.traceback and not o.crash and not o.hang for o in outcomes),
        "tracebacks": sum(o.traceback for o in outcomes),
        "crashes": sum(o.crash for o in outcomes),
        "hangs": sum(o.hang for o in outcomes),
        "files_changed": sum(bool(o.files_changed) for o in outcomes),
    }


def as_json(outcomes: list[Outcome]) -> str:
    return json.dumps([o.__dict__ for o in outcomes], indent=1)
