"""TFLite Micro built from the boards' own libraries: firmware size and the true arena.

    python benchmarks/tflm_library.py            # digits, sine and the four MLPerf-class models
    python benchmarks/tflm_library.py --quick    # digits and sine only

Needs ../shared/tflm-libs (the library sources), arm-none-eabi-g++ and qemu-system-arm.
For each model it deploys projects and measures, with mcuq.backends.tflm.toolchain:
- the real firmware flash/RAM on a Cortex-M4 (Chirale_TensorFLowLite 2.0.0 = TFLite Micro 2023
  + CMSIS-NN, -Os, arm-none-eabi-size) next to the plain-C runtime's firmware;
- the arena mcuq plans from x86 (today's estimate) and from the library (exact minimum + 2 %),
  each against the true minimum found by bisection on the board's CPU in qemu.
Prints the tables and replaces its own section of benchmarks/RESULTS.md. No timing is asserted.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from mcuq.backends.tflm import toolchain as tb  # noqa: E402
from mcuq.backends.tflm.arena import plan_arena_from_library  # noqa: E402
from mcuq.backends.tflm.backend import model_bytes_from_c_array  # noqa: E402
from mcuq.deploy import DeployRequest, deploy  # noqa: E402
from mcuq.model.info import parse_model  # noqa: E402
from mcuq.validate import read_manifest  # noqa: E402

SECTION_START = "<!-- tflm-library:start -->"
SECTION_END = "<!-- tflm-library:end -->"
LIBS = ROOT.parent / "shared" / "tflm-libs"
# board -> (library id, CPU the arena is measured on, label)
ARENA_BOARDS = {
    "nano33ble": ("chirale-tensorflowlite", "cortex-m4", ()),
    "teensy41": ("chirale-tensorflowlite", "cortex-m7", ()),
    "pico": ("chirale-tensorflowlite", "cortex-m0plus", ()),
    "esp32": ("esp-tflite-micro", "cortex-m4", ("-fno-short-enums",)),
}


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def models(quick: bool, work: Path) -> dict[str, Path]:
    found = {"digits": ROOT / "examples" / "digits" / "model.keras", "sine": ROOT / "examples" / "sine" / "model.keras"}
    if quick:
        return found
    import models as zoo  # benchmarks/models.py

    for name, build in (
        ("ds_cnn_kws", zoo.ds_cnn_kws),
        ("resnet8_ic", zoo.resnet8_ic),
        ("mobilenet_v1_025_vww", zoo.mobilenet_v1_025_vww),
        ("ad_autoencoder", zoo.anomaly_autoencoder),
    ):
        model = build()
        zoo.train_briefly(model)
        path = work / f"{name}.keras"
        model.save(path)
        found[name] = path
    return found


def calibration_for(name: str) -> str | None:
    path = ROOT / "examples" / name / "calibration.npy"
    return str(path) if path.exists() else "random"


def true_min(raw: bytes, library_id: str, cpu: str, flags: tuple[str, ...]) -> int:
    info = parse_model(raw, "model")
    tree = tb.find_library_tree(library_id, source=LIBS)
    ceiling = 3 * 1024 * 1024
    fw = tb.build_probe(raw, info.op_names, tree, tb.shipped_cpu(cpu), ceiling, flags)
    try:
        return tb.min_arena(fw, ceiling)[0]
    finally:
        fw.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    if not LIBS.is_dir() or tb.missing_tools(tb.shipped_cpu("cortex-m4")):
        print(f"needs {LIBS} and arm-none-eabi-g++ + qemu-system-arm")
        return 2
    size_rows, arena_rows = [], []
    with tempfile.TemporaryDirectory(prefix="mcuq-bench-lib-") as tmp:
        work = Path(tmp)
        for name, path in models(args.quick, work).items():
            calibration = calibration_for(name)
            # Firmware size: TFLite Micro (Chirale + CMSIS-NN) vs plain C, both Cortex-M4, both with their self-test.
            tflm_project = work / f"nano33ble-{name}"
            deploy(DeployRequest(model=str(path), board="nano33ble", out=str(tflm_project), calibration=calibration))
            raw = model_bytes_from_c_array(tflm_project / "src" / "model_data.cpp")
            info = parse_model(raw, name)
            tree = tb.find_library_tree("chirale-tensorflowlite", source=LIBS)
            fw = tb.build_project(tflm_project, tree, tb.shipped_cpu("cortex-m4"), info.op_names)
            selftest = tb.run_selftest(fw)
            fw.close()
            c_result = deploy(
                DeployRequest(model=str(path), board="nano33ble", runtime="c", out=str(work / f"c-{name}"), calibration=calibration)
            )
            emulation = c_result.plan.emulation or {}
            size_rows.append(
                [
                    name,
                    len(raw),
                    f"{fw.flash_bytes:,} / {fw.ram_bytes:,}",
                    "PASS" if selftest.passed else "FAIL",
                    f"{emulation.get('flash_bytes', 0):,} / {emulation.get('ram_bytes', 0):,}" if emulation else "-",
                    "PASS" if emulation.get("passed") else "-",
                ]
            )
            # Arena: x86 estimate and library plan vs the true minimum on the board's CPU.
            for board, (library_id, cpu, flags) in ARENA_BOARDS.items():
                project = tflm_project if board == "nano33ble" else work / f"{board}-{name}"
                if board != "nano33ble":
                    deploy(DeployRequest(model=str(path), board=board, out=str(project), calibration=calibration))
                manifest_arena = int(read_manifest(project).arena["target_bytes"])
                board_raw = model_bytes_from_c_array(project / "src" / "model_data.cpp")
                exact = true_min(board_raw, library_id, cpu, flags)
                lib_plan = plan_arena_from_library(parse_model(board_raw, name), exact, "", exact, "").target_bytes
                where = f"{cpu} (qemu)" + (", 4-byte enums: Xtensa stand-in" if flags else "")
                arena_rows.append(
                    [
                        name,
                        board,
                        tb.find_library_tree(library_id, source=LIBS).library.label,
                        where,
                        manifest_arena,
                        exact,
                        manifest_arena / exact,
                        lib_plan,
                        lib_plan / exact,
                    ]
                )
            print(f"{name}: done", flush=True)
    text = "\n".join(
        [
            f"Command: `python benchmarks/tflm_library.py{' --quick' if args.quick else ''}`  ",
            f"Date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC. Library sources: ../shared/tflm-libs "
            "(Chirale_TensorFLowLite 2.0.0, esp-tflite-micro 1.4.0 + esp-nn 1.2.3); arm-none-eabi-g++ -Os; qemu mps2.",
            "",
            table(
                "Firmware on a Cortex-M4: TFLite Micro (Chirale 2.0.0 + CMSIS-NN) vs plain-C runtime (bytes, arm-none-eabi-size)",
                ["model", "model bytes", "TFLM+CMSIS-NN flash / RAM", "TFLM self-test (qemu)", "plain-C flash / RAM", "C self-test (qemu)"],
                size_rows,
            ),
            "Both firmwares hold the model, the golden vectors and the self-test; RAM includes the tensor arena "
            "(TFLM) or the activation buffer (C). No Arduino core in either.",
            "",
            table(
                "Arena: planned vs true minimum on the board's CPU (bytes)",
                [
                    "model",
                    "board",
                    "library",
                    "measured on",
                    "planned from x86 (no library at hand)",
                    "true minimum",
                    "x86 plan / true",
                    "planned from the library (exact + 2 %, min 64 B)",
                    "library plan / true",
                ],
                arena_rows,
            ),
            "True minimum: smallest arena for which a fresh interpreter allocates and invokes with the outputs of a large "
            "arena, each probe a fresh qemu process (mcuq.backends.tflm.toolchain.min_arena).",
        ]
    )
    print(text)
    if not args.no_write:
        results = HERE / "RESULTS.md"
        old = results.read_text() if results.exists() else "# mcuq benchmark results\n"
        block = f"{SECTION_START}\n## TFLite Micro from the boards' own libraries\n\n{text}\n{SECTION_END}"
        if SECTION_START in old:
            new = re.sub(re.escape(SECTION_START) + ".*?" + re.escape(SECTION_END), lambda _: block, old, flags=re.S)
        else:
            new = old.rstrip() + "\n\n" + block + "\n"
        results.write_text(new)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
