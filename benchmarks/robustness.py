"""Robustness benchmark: the large version of tests/test_verify.py and tests/test_robustness.py.

    PYTHONPATH=$PWD python benchmarks/robustness.py [--mutants 5000] [--deploy-mutants 200] [--kills 12]

1. ``--mutants`` seeded .tflite mutants (bit flips, overwrites, 32-bit writes, truncation, and
   index/shape/type/quantization/options/opcode/structure edits through the TFLite schema) through
   every in-process stage that reads a model (verifier, inspect, full-int8 check, plain-C
   compile), in one child process with a 20 s alarm per mutant;
2. ``--deploy-mutants`` of them, plus ``--deploy-holes`` mutants of the dataflow family only,
   through the real ``mcuq deploy`` CLI (TFLite Micro children and all), each with a 300 s limit;
3. the whole bad-input matrix of tests/bad_inputs.py;
4. ``kill -9`` of a real deploy at ``--kills`` moments: the project must be complete or absent,
   no child may survive, no staging or temp data may remain, and a rerun must work.

Prints one table (kinds tried, cases, clean, poor, tracebacks, crashes, hangs, files lost).
"clean": accepted, or refused with one line naming the part at fault; "poor": refused without
naming it (e.g. a flatbuffer the decoder cannot read: "truncated or corrupted"). A "false PASS"
is a mutant with a dataflow hole (``tests/mutants.py:has_hole``, written apart from the
verifier) that the in-process stages accept or that deploys with exit 0; any makes the exit 1.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

FUZZ_CHILD = """
import collections, json, signal, sys, time
from pathlib import Path
from mutants import has_hole, mutants, run_pipeline

class Hang(Exception):
    pass

def alarm(*_):
    raise Hang()

signal.signal(signal.SIGALRM, alarm)
seeds = [Path(p).read_bytes() for p in sys.argv[3:]]
rows = collections.defaultdict(collections.Counter)
worst = 0.0
holes = 0
for kind, raw in mutants(seeds, int(sys.argv[1]), int(sys.argv[2])):
    holes += has_hole(raw)
    start = time.monotonic()
    signal.alarm(20)
    try:
        outcome, detail = run_pipeline(raw)
    except Hang:
        outcome, detail = "hang", ""
    signal.alarm(0)
    worst = max(worst, time.monotonic() - start)
    if outcome == "rejected":
        outcome = "poor" if ("truncated or corrupted" in detail or "\\n" in detail) else "clean"
    elif outcome == "accepted":
        outcome = "false_pass" if has_hole(raw) else "clean"
    rows[kind][outcome] += 1
    if outcome == "traceback":
        print(f"fuzz traceback ({kind}): {detail}", file=sys.stderr)
    if outcome == "false_pass":
        print(f"fuzz false accept ({kind}): a dataflow hole passed every in-process stage", file=sys.stderr)
print(json.dumps({"rows": rows, "slowest_s": worst, "holes": holes}))
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]), "TF_CPP_MIN_LOG_LEVEL": "3"}


def prepare(work: Path) -> tuple[Path, Path, Path, Path]:
    """Two full-int8 seeds, the float reference and one valid project."""
    from mcuq.deploy import DeployRequest, deploy
    from mcuq.frontend.converter import quantize

    digits = quantize(ROOT / "examples" / "digits" / "model.keras", str(ROOT / "examples" / "digits" / "calibration.npy"))
    sine = quantize(ROOT / "examples" / "sine" / "model.keras", str(ROOT / "examples" / "sine" / "calibration.npy"))
    paths = work / "digits.tflite", work / "sine.tflite", work / "float.tflite"
    paths[0].write_bytes(digits.tflite)
    paths[1].write_bytes(sine.tflite)
    assert digits.float_tflite is not None
    paths[2].write_bytes(digits.float_tflite)
    project = work / "project"
    deploy(DeployRequest(model=str(paths[1]), board="esp32", out=str(project)))
    return paths[0], paths[1], paths[2], project


def fuzz_in_process(seeds: list[Path], count: int, seed: int) -> dict[str, object]:
    try:
        proc = subprocess.run(
            [sys.executable, "-c", FUZZ_CHILD, str(count), str(seed), *map(str, seeds)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=20 * 60,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"rows": {}, "crash": False, "hang": True}
    if proc.returncode != 0:
        return {"rows": {}, "crash": True, "hang": False, "stderr": proc.stderr[-2000:]}
    if proc.stderr.strip():
        print(proc.stderr[-6000:], file=sys.stderr)
    data: dict[str, object] = json.loads(proc.stdout.strip().splitlines()[-1])
    return {**data, "crash": False, "hang": False}


def deploy_cases(seeds: list[Path], count: int, holes: int, seed: int) -> list[tuple[str, bytes]]:
    """``count`` mutants of every kind, plus ``holes`` more of the dataflow family only (the kind
    that used to deploy with PASS, issue 23)."""
    import random

    from mutants import mutants, mutate

    raw = [s.read_bytes() for s in seeds]
    rng = random.Random(seed + 7)
    return mutants(raw, count, seed) + [("dataflow", mutate(raw[n % len(raw)], "dataflow", rng)) for n in range(holes)]


def fuzz_deploy(cases: list[tuple[str, bytes]], work: Path) -> collections.Counter[str]:
    """Each case through ``mcuq deploy``; a case with a dataflow hole (``has_hole``) that exits 0
    with PASS is a false PASS."""
    from mutants import has_hole

    counts: collections.Counter[str] = collections.Counter()
    for n, (_kind, raw) in enumerate(cases):
        counts["holes"] += has_hole(raw)
        case = work / f"m{n}"
        case.mkdir()
        (case / "m.tflite").write_bytes(raw)
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "mcuq", "deploy", "-q", str(case / "m.tflite"), "--out", str(case / "out")],
                capture_output=True,
                text=True,
                env=_env(),
                timeout=300,
                check=False,
                cwd=case,
            )
        except subprocess.TimeoutExpired:
            counts["hangs"] += 1
            continue
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        if "Traceback (most recent call last)" in proc.stderr:
            counts["tracebacks"] += 1
            keep = work / f"traceback-{n}.tflite"
            keep.write_bytes(raw)
            print(f"deploy fuzz traceback (mutant {n}, kept as {keep.name}):\n{proc.stderr[-3000:]}", file=sys.stderr)
        elif proc.returncode < 0:
            counts["crashes"] += 1
        elif proc.returncode == 0 and has_hole(raw):
            counts["false_pass"] += 1
            keep = work / f"false-pass-{n}.tflite"
            keep.write_bytes(raw)
            print(f"deploy fuzz false PASS (mutant {n}, kept as {keep.name}): {proc.stdout.strip()[-200:]}", file=sys.stderr)
        elif proc.returncode == 0 or (proc.returncode == 1 and len(lines) == 1 and "truncated or corrupted" not in lines[0]):
            counts["clean"] += 1
        else:
            counts["poor"] += 1
            print(f"deploy fuzz poor (mutant {n}, exit {proc.returncode}): {proc.stderr.strip()[-300:]}", file=sys.stderr)
        shutil.rmtree(case, ignore_errors=True)
    return counts


def matrix(inputs: object, work: Path) -> list[object]:
    from bad_input_runner import run_case
    from bad_inputs import CASES

    return [run_case(case, work / f"case{n}", inputs) for n, case in enumerate(CASES)]  # type: ignore[arg-type]


KILL_DEPLOY = """
import sys
from mcuq.deploy import DeployRequest, deploy
print("go", flush=True)
deploy(DeployRequest(model=sys.argv[1], board="esp32", out=sys.argv[2], data=sys.argv[3], force=True))
"""


def _complete(project: Path) -> bool:
    manifest = json.loads((project / "mcuq.lock.json").read_text())
    return all(hashlib.sha256((project / rel).read_bytes()).hexdigest() == d for rel, d in manifest["files"].items())


def kill_sweep(model: Path, kills: int, work: Path) -> collections.Counter[str]:
    from mcuq.deploy import DeployRequest, deploy

    counts: collections.Counter[str] = collections.Counter()
    val = ROOT / "examples" / "sine" / "val.npz"
    for n in range(kills):
        delay = 0.1 + 4.0 * n / max(1, kills - 1)
        base = work / f"k{n}"
        base.mkdir()
        out = base / "proj"
        if n % 2:  # half the kills hit a regeneration of an existing project, with a file of the user's
            deploy(DeployRequest(model=str(model), board="esp32", out=str(out)))
            (out / "src" / "app.cpp").write_text("// mine\n")
        proc = subprocess.Popen(
            [sys.executable, "-c", KILL_DEPLOY, str(model), str(out), str(val)], env=_env(), stdout=subprocess.PIPE, start_new_session=True
        )
        assert proc.stdout is not None
        proc.stdout.readline()
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)
        survivors = subprocess.run(
            ["pgrep", "-f", f"mcuq.common.isolation {proc.pid} "], capture_output=True, text=True, check=False
        ).stdout.split()
        lost = bool(n % 2) and (not (out / "src" / "app.cpp").is_file() or (out / "src" / "app.cpp").read_text() != "// mine\n")
        broken = out.exists() and not _complete(out)
        finished = out.exists() and not (out / ".mcuq-unvalidated").exists()
        try:
            rerun_ok = deploy(DeployRequest(model=str(model), board="esp32", out=str(out), data=str(val), force=finished)).ok
        except Exception as exc:  # noqa: BLE001 - counted, not raised
            print(f"kill {n}: rerun failed: {exc}", file=sys.stderr)
            rerun_ok = False
        stale = [p.name for p in base.iterdir() if p.name.startswith(".")]
        temp = list(Path(tempfile.gettempdir()).glob(f"mcuq-child-{proc.pid}-*"))
        counts["crashes"] += bool(survivors)  # a child outliving mcuq
        counts["files_lost"] += lost or broken
        counts["poor"] += bool(stale or temp) or not rerun_ok
        counts["clean"] += not (survivors or lost or broken or stale or temp) and rerun_ok
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mutants", type=int, default=5000)
    parser.add_argument("--deploy-mutants", type=int, default=200)
    parser.add_argument("--deploy-holes", type=int, default=60, help="extra dataflow-hole mutants through deploy")
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--skip-matrix", action="store_true")
    args = parser.parse_args()
    from bad_input_runner import summarize
    from bad_inputs import Inputs
    from mutants import KINDS

    with tempfile.TemporaryDirectory(prefix="mcuq-robustness-") as tmp:
        work = Path(tmp)
        digits, sine, float_model, project = prepare(work)
        rows: list[tuple[str, int, int, dict[str, int]]] = []
        start = time.monotonic()
        fz = fuzz_in_process([digits, sine], args.mutants, args.seed)
        per_kind: dict[str, dict[str, int]] = fz.get("rows", {})  # type: ignore[assignment]
        total: collections.Counter[str] = collections.Counter()
        for counts in per_kind.values():
            total.update(counts)
        rows.append(
            (
                "fuzz: verifier + inspect + int8 check + C compile",
                len(KINDS),
                args.mutants,
                {
                    "clean": total["clean"],
                    "poor": total["poor"],
                    "tracebacks": total["traceback"],
                    "crashes": int(bool(fz["crash"])),
                    "hangs": total["hang"] + int(bool(fz["hang"])),
                    "files_lost": 0,
                },
            )
        )
        t_fuzz = time.monotonic() - start
        dwork = work / "deploy-fuzz"
        dwork.mkdir()
        d = fuzz_deploy(deploy_cases([digits, sine], args.deploy_mutants, args.deploy_holes, args.seed + 1), dwork)
        rows.append(
            (
                "fuzz: mcuq deploy (TFLite Micro children)",
                len(KINDS),
                args.deploy_mutants + args.deploy_holes,
                {
                    "clean": d["clean"],
                    "poor": d["poor"],
                    "tracebacks": d["tracebacks"],
                    "crashes": d["crashes"],
                    "hangs": d["hangs"],
                    "files_lost": 0,
                },
            )
        )
        if not args.skip_matrix:
            mwork = work / "matrix"
            outcomes = matrix(Inputs(digits, sine, float_model, project), mwork)
            s = summarize(outcomes)  # type: ignore[arg-type]
            rows.append(
                (
                    "bad-input matrix (6 commands)",
                    s["kinds"],
                    s["kinds"],
                    {
                        "clean": s["clean"],
                        "poor": s["poor"],
                        "tracebacks": s["tracebacks"],
                        "crashes": s["crashes"],
                        "hangs": s["hangs"],
                        "files_lost": s["files_changed"],
                    },
                )
            )
            for o in outcomes:
                if not o.clean:  # type: ignore[attr-defined]
                    print(f"matrix: {o.case}: {o.why}", file=sys.stderr)  # type: ignore[attr-defined]
        kwork = work / "kills"
        kwork.mkdir()
        k = kill_sweep(sine, args.kills, kwork)
        rows.append(
            (
                "kill -9 during deploy",
                args.kills,
                args.kills,
                {
                    "clean": k["clean"],
                    "poor": k["poor"],
                    "tracebacks": 0,
                    "crashes": k["crashes"],
                    "hangs": 0,
                    "files_lost": k["files_lost"],
                },
            )
        )
    print(
        f"{'suite':<52} {'kinds':>5} {'cases':>6} {'clean':>6} {'poor':>5} {'tracebacks':>10} {'crashes':>7} {'hangs':>5} {'files lost':>10}"
    )
    for name, kinds, cases, c in rows:
        print(
            f"{name:<52} {kinds:>5} {cases:>6} {c['clean']:>6} {c['poor']:>5} {c['tracebacks']:>10} {c['crashes']:>7} "
            f"{c['hangs']:>5} {c['files_lost']:>10}"
        )
    print(f"\nin-process fuzz: {args.mutants} mutants in {t_fuzz:.0f} s, slowest {fz.get('slowest_s', 0):.2f} s; per kind:")
    for kind in KINDS:
        c = per_kind.get(kind, {})
        print(
            f"  {kind:<14} clean {c.get('clean', 0):>5}  poor {c.get('poor', 0):>5}  tracebacks {c.get('traceback', 0):>3}  hangs {c.get('hang', 0):>3}"
            f"  false accept {c.get('false_pass', 0):>3}"
        )
    false_pass = total["false_pass"] + d["false_pass"]
    print(
        f"\nfalse PASS (a dataflow hole by tests/mutants.py:has_hole, accepted): in-process {total['false_pass']} "
        f"({fz.get('holes', 0)} of {args.mutants} mutants have a hole), deploy exit 0 {d['false_pass']} "
        f"({d['holes']} of {args.deploy_mutants + args.deploy_holes} have a hole)"
    )
    bad = sum(c["tracebacks"] + c["crashes"] + c["hangs"] + c["files_lost"] for _, _, _, c in rows) + false_pass
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
