"""Speed of the plain-C runtime: AVR cycles (simavr) and Cortex-M4 instructions (qemu -icount).

    python benchmarks/speed.py                      # measure, print, update benchmarks/RESULTS.md
    python benchmarks/speed.py --record before      # store this run as the "before" column
    python benchmarks/speed.py --models digits,sine # a subset (prints only)

Per model: MACs; ATmega2560 cycles per inference and cycles per MAC of CONV_2D,
DEPTHWISE_CONV_2D and FULLY_CONNECTED (per-op SysTick/Timer1 marks of a -DMCUQ_PROFILE
build); Cortex-M4 instructions per inference and MACs per instruction, next to TFLite Micro
(reference kernels and CMSIS-NN) where those were measured. "Before" numbers come from
benchmarks/speed_before.json, written by this script at the commit it names. Nothing here is
a test; no timing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))
CACHE = HERE / ".cache"
BEFORE = HERE / "speed_before.json"
MARK_BEGIN, MARK_END = "<!-- speed.py begin -->", "<!-- speed.py end -->"
WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
ORDER = ["digits", "sine", "tiny_ds_cnn", "ds_cnn_kws", "resnet8_ic", "mobilenet_v1_025_vww", "ad_autoencoder", "conv1d_audio", "dense_mlp"]

from mcuq.backends.c.avr_codegen import attach_avr_kernels  # noqa: E402
from mcuq.backends.c.codegen import selftest_sources  # noqa: E402
from mcuq.backends.c.fit import estimate_c_fit  # noqa: E402
from mcuq.backends.c.program import compile_model  # noqa: E402
from mcuq.boards import get_board  # noqa: E402
from mcuq.common.errors import MCUQError  # noqa: E402
from mcuq.frontend.converter import quantize  # noqa: E402
from mcuq.project.api import model_prefix  # noqa: E402
from mcuq.toolchains import emulate  # noqa: E402

# TFLite Micro instruction counts quoted in issue #12 (qemu -icount, Cortex-M4), used only
# when the TFLite Micro harness is not available in this tree; always labelled as quoted.
ISSUE_TFLM = {
    "digits": (829_680, 119_880),
    "ds_cnn_kws": (198_500_000, 7_580_000),
    "resnet8_ic": (824_000_000, 29_770_000),
    "mobilenet_v1_025_vww": (419_900_000, 20_050_000),
    "ad_autoencoder": (1_690_000, 600_000),
    "conv1d_audio": (2_970_000, 690_000),
    "dense_mlp": (6_420_000, 2_050_000),
}


def build_models(names: list[str]) -> dict[str, tuple[Path, Path]]:
    from models import MLPERF, SPEED_EXTRA, train_briefly

    out = {}
    for name in names:
        if name in ("digits", "sine"):
            out[name] = (ROOT / f"examples/{name}/model.keras", ROOT / f"examples/{name}/calibration.npy")
            continue
        builder = {**MLPERF, **SPEED_EXTRA}[name]
        CACHE.mkdir(exist_ok=True)
        keras_path, cal_path = CACHE / f"{name}.keras", CACHE / f"{name}_cal.npy"
        if not keras_path.exists():
            model = builder()
            np.save(cal_path, train_briefly(model)[:200])
            model.save(keras_path)
        out[name] = (keras_path, cal_path)
    return out


def by_type(info: Any, ticks: dict[int, int]) -> dict[str, dict[str, int]]:
    """Per op type: summed MACs and ticks of the profiled run."""
    out: dict[str, dict[str, int]] = {}
    for op in info.ops:
        slot = out.setdefault(op.name, {"macs": 0, "ticks": 0})
        slot["macs"] += op.macs
        slot["ticks"] += ticks.get(op.index, 0)
    return out


def by_layer(info: Any, ticks: dict[int, int]) -> list[dict[str, Any]]:
    """Per weighted layer: MACs, output values and ticks (MACs per output bound the cost of
    the per-output requantization per MAC)."""
    return [
        {
            "index": op.index,
            "op": op.name,
            "macs": op.macs,
            "outputs": int(np.prod(info.tensors[op.outputs[0]].shape)),
            "ticks": ticks.get(op.index, 0),
        }
        for op in info.ops
        if op.name in WEIGHTED and op.macs
    ]


def _emulated(r: Any, info: Any) -> dict[str, Any]:
    """One emulator run as a table row: ticks, verdict, sizes and ticks per op type and layer."""
    ticks = emulate.op_ticks(r.log)
    idle = [ticks[op.index] for op in info.ops if op.name in ("RESHAPE", "SQUEEZE", "EXPAND_DIMS") and op.index in ticks]
    return {
        "ticks": r.ticks,
        "passed": r.passed,
        "flash": r.flash_bytes,
        "ram": r.ram_bytes,
        "ops": by_type(info, ticks),
        "layers": by_layer(info, ticks),
        "mark": min(idle) if idle else None,  # an aliased reshape does nothing: its ticks are the profiling mark's
    }


def _run_target(sources: dict[str, str], board_id: str) -> Any:
    """One profiled self-test on the board's emulator (the API of emulate.py at this commit)."""
    if hasattr(emulate, "build_and_run"):
        return emulate.build_and_run(sources, get_board(board_id), profile=True)
    if board_id == "mega2560":
        return emulate.build_and_run_avr(sources, "ATmega2560", profile=True)
    return emulate.build_and_run_cortex_m4(sources, profile=True)


def measure(name: str, q: Any) -> dict[str, Any]:
    """AVR with the portable layout (block 1), Cortex-M4 with the SIMD layout its DSP runs."""
    from run import golden_context

    info = q.info
    program = compile_model(info)
    simd_program = compile_model(info, simd=True)
    context = golden_context(info, program, name, q)
    row: dict[str, Any] = {
        "macs": info.total_macs,
        "flash_constants": program.flash_constant_bytes,
        "flash_constants_simd": simd_program.flash_constant_bytes,
        "ram_constants": program.ram_constant_bytes,
        "buffer": program.arena_bytes,
    }
    mega = get_board("mega2560")
    golden = sum(int(np.prod(t.shape)) for t in (*info.input_tensors, *info.output_tensors))
    if not estimate_c_fit(program, mega, golden).fits or program.flash_constant_bytes > 56 * 1024:
        row["avr"] = None
    else:
        attach_avr_kernels(program, model_prefix(name), mega, golden)  # as deploy does for AVR boards
        row["avr"] = _emulated(_run_target(selftest_sources(program, name, context), "mega2560"), info)
        row["avr"]["generated"] = {str(i): k.code_bytes for i, k in program.avr_kernels.items()}
    row["cm4"] = _emulated(_run_target(selftest_sources(simd_program, name, context), "nucleo_f446re"), info)
    row["tflm"] = measure_tflm(name, info)
    return row


def measure_tflm(name: str, info: Any) -> dict[str, Any] | None:
    """TFLite Micro on the Cortex-M4 in qemu, same method (-icount shift=0, one Invoke()):
    Chirale_TensorFLowLite 2.0.0 with CMSIS-NN, and esp-tflite-micro 1.4.0 built without
    ESP-NN for the reference kernels (mcuq.backends.tflm.toolchain). Without the library
    sources (../shared/tflm-libs) or when a build fails, the counts quoted in issue #12,
    labelled as such."""
    from mcuq.backends.tflm import toolchain as tflm_build

    try:
        counts = {
            kernels: tflm_build.instructions_per_inference(info.raw, info.op_names, kernels, "cortex-m4")
            for kernels in ("cmsis-nn", "reference")
        }
        return {"reference": counts["reference"], "cmsis_nn": counts["cmsis-nn"], "source": "measured"}
    except MCUQError as exc:
        print(f"  TFLite Micro not measured for {name}: {exc}", flush=True)
    quoted = ISSUE_TFLM.get(name)
    return {"reference": quoted[0], "cmsis_nn": quoted[1], "source": "quoted"} if quoted else None


def git_commit() -> str:
    return subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()


def fmt(v: Any, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def per_mac(entry: dict[str, Any] | None, op: str) -> float | None:
    if not entry:
        return None
    slot = entry["ops"].get(op)
    return slot["ticks"] / slot["macs"] if slot and slot["macs"] else None


def tables(rows: dict[str, dict[str, Any]], before: dict[str, Any]) -> str:
    old = before.get("models", {})
    lines = [
        f"Command: `python benchmarks/speed.py`; before = commit {before.get('commit', '?')} "
        f"(`python benchmarks/speed.py --record before`, {before.get('date', '?')}). All counts from the emulators: "
        "simavr cycles are exact; qemu `-icount shift=0` counts instructions (+-40), not cycles. Between the two commits the "
        "converter's default for Dense changed to per-tensor (`--per-channel auto`), so FULLY_CONNECTED layers were "
        "per-channel before and per-tensor after; the MAC counts are the same.",
        "",
    ]
    lines += [
        "### AVR (ATmega2560, avr-gcc -Os, simavr): cycles per inference and cycles per MAC, before -> after",
        "",
        "| model | MACs | cycles before | cycles after | speed-up | ms at 16 MHz after (emulator estimate) | CONV_2D cyc/MAC | DEPTHWISE_CONV_2D cyc/MAC | FULLY_CONNECTED cyc/MAC | self-test |",
        "|---|---:|---:|---:|---:|---:|---|---|---|---|",
    ]
    for name, r in rows.items():
        a, b = r.get("avr"), (old.get(name) or {}).get("avr")
        if not a:
            continue
        cells = []
        for op in WEIGHTED:
            x, y = per_mac(b, op), per_mac(a, op)
            cells.append("-" if y is None else f"{fmt(x)} -> {fmt(y)}")
        speed = f"{b['ticks'] / a['ticks']:.1f}x" if b and a["ticks"] else "-"
        lines.append(
            f"| {name} | {fmt(r['macs'])} | {fmt(b['ticks'] if b else None)} | {fmt(a['ticks'])} | {speed} | "
            f"{a['ticks'] / 16_000:.1f} | " + " | ".join(cells) + f" | {'PASS' if a['passed'] else 'FAIL'} |"
        )
    worst = {op: max((per_mac(r.get("avr"), op) or 0.0) for r in rows.values()) for op in WEIGHTED}
    layers = [(name, layer) for name, r in rows.items() for layer in (r.get("avr") or {}).get("layers", []) if layer["macs"]]
    over = [(name, layer) for name, layer in layers if layer["ticks"] / layer["macs"] > 20]
    marks = [r["avr"]["mark"] for r in rows.values() if r.get("avr") and r["avr"].get("mark")]
    mark = min(marks) if marks else None
    lines += [
        "",
        "Issue #12 target, at most 20 AVR cycles per MAC (stretch 12), per op type of each model: "
        + "; ".join(f"{op} worst {v:.1f} ({'met' if v <= 20 else 'not met'})" for op, v in worst.items() if v)
        + f". Per layer: {len(layers) - len(over)} of {len(layers)} layers at or below 20"
        + (
            " (above: "
            + ", ".join(
                f"{name} layer {layer['index']} {layer['ticks'] / layer['macs']:.1f}, {layer['outputs']} output(s)"
                + (f", {(layer['ticks'] - mark) / layer['macs']:.1f} without the profiling mark" if mark else "")
                for name, layer in over
            )
            + ")"
            if over
            else ""
        )
        + ".",
    ]
    if mark:
        lines += [
            "",
            f"Per-op cycles come from marks between the ops (-DMCUQ_PROFILE); each op's count includes one mark, {mark} "
            "cycles (what an aliased RESHAPE, which does nothing, measures). It matters only for layers of a few hundred cycles.",
        ]
    lines += [
        "",
        "#### AVR per layer (after): generated assembly or generic kernel, MACs per output",
        "",
        "Every layer here runs assembly generated for the model (`mcuq/backends/c/avr_codegen.py`; the code column gives "
        "its bytes, code and tables, of which the layer's weights, whose C arrays are left out). Each channel's TFLite "
        "requantization is two compares and a few `mul`s with constants found at generation time (`avr_requant.py`, "
        "exact at every step of the output): 30-60 cycles instead of about 150-230 for the generic 24 x 31-bit product "
        "with a variable shift. Up to 64 MACs per output the weights are immediates (`ldi`, `muls`, a 24-bit add: 7 "
        "cycles a MAC, zero weights left out); beyond, a loop reads four channels' weights interleaved from flash "
        "(10.5 cycles a MAC). Depthwise layers get one function per border column, Dense layers of depth 1 a 256-entry "
        "table per channel. `--avr-kernels generic` keeps the shared kernels (11.75 cycles a MAC plus the generic "
        "requantization): the before column's successor at a fraction of the flash.",
        "",
        "| model | layer | op | code | MACs | outputs | MACs per output | cycles | cycles per output | cycles per MAC |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        generated = (r.get("avr") or {}).get("generated", {})
        for layer in (r.get("avr") or {}).get("layers", []):
            outs, macs, ticks = layer["outputs"], layer["macs"], layer["ticks"]
            code = f"generated ({fmt(generated[str(layer['index'])])} B)" if str(layer["index"]) in generated else "generic"
            lines.append(
                f"| {name} | {layer['index']} | {layer['op']} | {code} | {fmt(macs)} | {fmt(outs)} | {fmt(macs / outs if outs else None)} | "
                f"{fmt(ticks)} | {fmt(ticks / outs if outs else None)} | {fmt(ticks / macs if macs else None)} |"
            )
    lines += [
        "",
        "### Cortex-M4 (arm-none-eabi-gcc -Os, qemu mps2-an386): instructions per inference",
        "",
        "Before: -mcpu=cortex-m4 soft-float, scalar kernels. After: the nucleo_f446re board's flags "
        "(-mcpu=cortex-m4 -mfpu=fpv4-sp-d16 -mfloat-abi=hard), SIMD weight layout, ACLE SXTB16/SMLAD path.",
        "",
        "| model | MACs | mcuq C before | mcuq C after | MACs/instr after | ms at 180 MHz after (emulator estimate) | TFLM reference | TFLM + CMSIS-NN | CMSIS-NN MACs/instr | mcuq / CMSIS-NN | self-test |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    quoted = False
    for name, r in rows.items():
        a, b, t = r["cm4"], (old.get(name) or {}).get("cm4"), r.get("tflm")
        ref = cm = None
        if t:
            ref, cm = t["reference"], t["cmsis_nn"]
            quoted |= t["source"] == "quoted"
        mark = "*" if t and t["source"] == "quoted" else ""
        lines.append(
            f"| {name} | {fmt(r['macs'])} | {fmt(b['ticks'] if b else None)} | {fmt(a['ticks'])} | {a['ticks'] and r['macs'] / a['ticks']:.3f} | {a['ticks'] / 180_000:.2f} | "
            f"{fmt(ref)}{mark} | {fmt(cm)}{mark} | {fmt(r['macs'] / cm if cm else None)} | "
            f"{fmt(a['ticks'] / cm if cm else None, 3)} | {'PASS' if a['passed'] else 'FAIL'} |"
        )
    beaten = [name for name, r in rows.items() if r.get("tflm") and r["cm4"]["ticks"] < r["tflm"]["cmsis_nn"]]
    compared = [name for name, r in rows.items() if r.get("tflm")]
    lines += [
        "",
        f"Fewer instructions than TFLite Micro + CMSIS-NN on {len(beaten)} of {len(compared)} models"
        + (f" ({', '.join(beaten)})" if beaten else "")
        + ".",
    ]
    lines += [
        "",
        "TFLite Micro columns: measured in the same run and the same way (qemu mps2-an386, -icount shift=0, "
        "instructions of one Invoke()) with mcuq.backends.tflm.toolchain: CMSIS-NN = Chirale_TensorFLowLite 2.0.0 "
        "(the Arduino Cortex-M boards' library), reference = esp-tflite-micro 1.4.0 without ESP-NN (upstream "
        "reference kernels); same .tflite as the mcuq column. Both are built -Os as Arduino/PlatformIO builds them; mcuq_kernels.c raises itself to -O2 with a GCC pragma on 32-bit targets (part of the generated code, so the board build gets it too).",
    ]
    if quoted:
        lines += [
            "",
            "\\* from issue #12, not re-measured in this run (the TFLite Micro build failed or its sources are "
            "absent); the mcuq models here are rebuilt from benchmarks/models.py, so these ratios compare different "
            "weights of the same architecture.",
        ]
    lines += [
        "",
        "### Memory of the plain-C runtime (bytes)",
        "",
        "| model | buffer (= liveness plan, unchanged) | flash constants before | after (AVR layout) | after (SIMD layout) | RAM constants before | after | M4 firmware flash before | after | AVR firmware flash before | after | of which generated AVR code |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in rows.items():
        b = old.get(name) or {}
        lines.append(
            f"| {name} | {fmt(r['buffer'])} | {fmt(b.get('flash_constants'))} | {fmt(r['flash_constants'])} | "
            f"{fmt(r.get('flash_constants_simd'))} | "
            f"{fmt(b.get('ram_constants'))} | {fmt(r['ram_constants'])} | {fmt((b.get('cm4') or {}).get('flash'))} | "
            f"{fmt(r['cm4']['flash'])} | {fmt((b.get('avr') or {}).get('flash'))} | {fmt((r.get('avr') or {}).get('flash'))} | "
            f"{fmt(sum((r.get('avr') or {}).get('generated', {}).values()))} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(ORDER), help="comma-separated subset")
    parser.add_argument("--record", choices=["before"], help="store this run as the before column")
    args = parser.parse_args()
    started = time.perf_counter()
    from mcuq.frontend.tf import import_tensorflow

    import_tensorflow()
    names = [n for n in args.models.split(",") if n]
    rows = {}
    for name, (path, cal) in build_models(names).items():
        print(f"measuring {name} ...", flush=True)
        rows[name] = measure(name, quantize(path, str(cal)))
    if args.record:
        BEFORE.write_text(
            json.dumps({"commit": git_commit(), "date": f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}", "models": rows}, indent=1)
            + "\n"
        )
        print(f"wrote {BEFORE}")
    before = json.loads(BEFORE.read_text()) if BEFORE.exists() else {}
    text = tables(rows, before)
    print(text)
    results = HERE / "RESULTS.md"
    if names == ORDER and not args.record and results.exists():
        old = results.read_text()
        section = (
            f"{MARK_BEGIN}\n## Plain-C runtime speed (issue #12)\n\n{text}\nRun time: {time.perf_counter() - started:.0f} s\n{MARK_END}\n"
        )
        if MARK_BEGIN in old:
            old = old[: old.index(MARK_BEGIN)] + old[old.index(MARK_END) + len(MARK_END) + 1 :]
        results.write_text(old.rstrip("\n") + "\n\n" + section)
        print(f"updated {results}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MCUQError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        sys.exit(1)
