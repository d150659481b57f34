"""Run a risky native step (TFLite converter, TFLite Micro, LiteRT) in a child process.

A segfault there must become an error message, not a dead mcuq. The child is
``python -m MODULE REQUEST RESPONSE``: it reads a pickled request and writes a pickled answer;
a missing answer or a non-zero exit means it crashed.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any


def crash_detail(returncode: int, stderr: str | None) -> str:
    """`signal 11` / `exit code 3`, plus the child's last stderr line when it was captured."""
    detail = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
    tail = ((stderr or "").strip().splitlines() or [""])[-1][:200]
    return f"{detail}: {tail}" if tail else detail


def run_isolated(module: str, request: dict[str, Any], capture_stderr: bool, timeout: float | None = None) -> tuple[Any, str]:
    """(answer or None if the child crashed, crash detail)."""
    with tempfile.TemporaryDirectory(prefix="mcuq-child-") as tmp:
        req_path, resp_path = Path(tmp) / "request.pkl", Path(tmp) / "response.pkl"
        req_path.write_bytes(pickle.dumps(request))
        proc = subprocess.run([sys.executable, "-m", module, str(req_path), str(resp_path)],
                              stderr=subprocess.PIPE if capture_stderr else None, stdout=subprocess.DEVNULL if capture_stderr else None,
                              text=True, timeout=timeout, check=False)
        if proc.returncode != 0 or not resp_path.exists():
            return None, crash_detail(proc.returncode, proc.stderr)
        return pickle.loads(resp_path.read_bytes()), ""
