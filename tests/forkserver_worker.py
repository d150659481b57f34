"""A test-only worker for tests/test_forkserver.py, run like ``mcuq.reference.tflm_worker``:
``python -m forkserver_worker REQUEST RESPONSE`` or a fork of the fork server.

It crashes, exits, hangs or leaks state on request, and otherwise answers who ran it (its pid, its
parent's pid), so a test can tell a fork of the server from a one-shot child.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from pathlib import Path

from mcuq.common.isolation import mark_stage


def main() -> int:
    with open(sys.argv[1], "rb") as f:
        req = pickle.load(f)
    action = req["action"]
    mark_stage(action)
    if action == "segv":
        print("about to crash", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGSEGV)
    if action == "noisy":  # 200 KB: more than a pipe holds, so the server must read while it waits
        sys.stderr.write(("x" * 99 + "\n") * 2000)
    if action in ("exit", "noisy"):
        print("the request was bad", file=sys.stderr)
        return 3
    if action == "leak":
        sys.mcuq_test_leak = True  # type: ignore[attr-defined]
    if action == "hang" or (action == "hang_once" and not Path(req["pid_file"]).exists()):
        Path(req["pid_file"]).write_text(f"{os.getpid()} {os.getppid()}")
        time.sleep(req.get("seconds", 120))
    answer = {
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "env": os.environ.get("MCUQ_TEST_VALUE"),
        "cwd": os.getcwd(),
        "leaked": hasattr(sys, "mcuq_test_leak"),
    }
    with open(sys.argv[2], "wb") as f:
        pickle.dump(answer, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
