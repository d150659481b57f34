"""mcuq benchmarks: memory, size, speed and fidelity on reference-class models.

    python benchmarks/run.py            # all models, emulators included (about 10-15 min here)
    python benchmarks/run.py --quick    # digits and sine only

Prints the tables and rewrites benchmarks/RESULTS.md with the command, the machine and the
numbers. Nothing here is a test: no timing is asserted. Numbers that cannot be measured on
this machine are marked as such, never invented.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
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

from mcuq.backends.base import DeployJob  # noqa: E402
from mcuq.backends.c.avr_codegen import attach_avr_kernels  # noqa: E402
from mcuq.backends.c.backend import c_template_context  # noqa: E402
from mcuq.backends.c.codegen import selftest_sources  # noqa: E402
from mcuq.backends.c.fit import estimate_c_fit  # noqa: E402
from mcuq.backends.c.program import compile_model, unsupported_ops  # noqa: E402
from mcuq.backends.tflm.arena import plan_arena  # noqa: E402
from mcuq.boards import get_board  # noqa: E402
from mcuq.common.console import Console  # noqa: E402
from mcuq.common.errors import MCUQError  # noqa: E402
from mcuq.deploy import DeployRequest, deploy  # noqa: E402
from mcuq.frontend.converter import QuantizeOptions, convert_in_this_process, quantize  # noqa: E402
from mcuq.model.info import dequantize_array, parse_model, quantize_array  # noqa: E402
from mcuq.project.api import model_prefix  # noqa: E402
from mcuq.project.context import common_context  # noqa: E402
from mcuq.reference.host_tflm import measure_min_arena, run_tflm  # noqa: E402
from mcuq.toolchains.emulate import build_and_run, build_and_run_avr, op_ticks, toolchain_for  # noqa: E402

CM4_BOARD = "nucleo_f446re"  # the Cortex-M4 column: built as deploy builds for this board


def table(title: str, headers: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:,.0f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    lines = [f"### {title}", "", "| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    return text


def build_models(quick: bool) -> dict[str, tuple[Path, Path]]:
    """name -> (.keras, calibration .npy); MLPerf-class models are cached in benchmarks/.cache."""
    models = {
        "digits": (ROOT / "examples/digits/model.keras", ROOT / "examples/digits/calibration.npy"),
        "sine": (ROOT / "examples/sine/model.keras", ROOT / "examples/sine/calibration.npy"),
    }
    if quick:
        return models
    from models import MLPERF, train_briefly

    CACHE.mkdir(exist_ok=True)
    for name, builder in MLPERF.items():
        keras_path, cal_path = CACHE / f"{name}.keras", CACHE / f"{name}_cal.npy"
        if not keras_path.exists():
            model = builder()
            np.save(cal_path, train_briefly(model)[:200])
            model.save(keras_path)
        models[name] = (keras_path, cal_path)
    return models


def golden_context(info: Any, program: Any, name: str, q: Any) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    golden_in = [[rng.integers(-128, 128, t.shape).astype(np.int8) for t in info.input_tensors]]
    tflm_min = measure_min_arena(info.raw, golden_in[0])
    golden_out = run_tflm(info.raw, golden_in, tflm_min, len(info.outputs)).outputs
    job = DeployJob(q, get_board("mega2560"), name, golden_in, "random")
    return {**common_context(job, golden_out), **c_template_context(program, tflm_min)}


def dominant_op(info: Any, ticks: dict[int, int]) -> str:
    by_type: dict[str, int] = {}
    for op in info.ops:
        by_type[op.name] = by_type.get(op.name, 0) + ticks.get(op.index, 0)
    total = sum(by_type.values()) or 1
    name, value = max(by_type.items(), key=lambda kv: kv[1])
    return f"{name} {100 * value / total:.0f}%"


def measure_model(name: str, q: Any, emulators: bool) -> dict[str, Any]:
    info = q.info
    sample = [np.zeros(t.shape, np.int8) for t in info.input_tensors]
    host_min = measure_min_arena(info.raw, sample)
    row: dict[str, Any] = {
        "name": name,
        "tensors": len(info.tensors),
        "ops": len(info.ops),
        "macs": info.total_macs,
        "model_bytes": len(info.raw),
        "host_min": host_min,
    }
    for kernels in ("reference", "cmsis-nn-dsp", "esp-nn-s3"):
        row[f"target_{kernels}"] = plan_arena(info, host_min, kernels).target_bytes
    missing = unsupported_ops(info)
    if missing:
        row["c_buffer"] = row["lower_bound"] = f"n/a (C runtime lacks {', '.join(missing)})"
        return row
    program = compile_model(info)
    assert program.plan is not None
    row["c_buffer"], row["lower_bound"] = program.plan.arena_bytes, program.plan.lower_bound
    if not emulators:
        return row
    mega = get_board("mega2560")
    golden_bytes = sum(int(np.prod(t.shape)) for t in (*info.input_tensors, *info.output_tensors))
    attach_avr_kernels(program, model_prefix(name), mega, golden_bytes)  # what deploy builds for an AVR board
    context = golden_context(info, program, name, q)
    sources = selftest_sources(program, name, context)
    if toolchain_for("avr8") is None:
        row["avr"] = "not measured: gcc-avr/simavr missing"
    elif (
        not estimate_c_fit(program, mega, golden_bytes).fits
        or max(c.values.nbytes for c in program.constants) > 32767
        or program.flash_constant_bytes > 56 * 1024
    ):
        row["avr"] = f"does not fit ATmega2560 ({program.flash_constant_bytes:,} B weights, {program.arena_bytes:,} B buffer)"
    else:
        result = build_and_run_avr(sources, "ATmega2560", profile=True)
        row["avr"] = result
        row["avr_dominant"] = dominant_op(info, op_ticks(result.log))
    if toolchain_for("armv7em") is None or shutil.which("qemu-system-arm") is None:
        row["cm4"] = "not measured: gcc-arm-none-eabi/qemu missing"
    else:
        # what deploy builds for a Cortex-M4 board: the SIMD weight layout and the board's flags
        simd = compile_model(info, simd=True)
        simd_sources = selftest_sources(simd, name, golden_context(info, simd, name, q))
        result = build_and_run(simd_sources, get_board(CM4_BOARD), profile=True)
        row["cm4"] = result
        row["cm4_dominant"] = dominant_op(info, op_ticks(result.log))
    return row


def pipeline_times(name: str, model: Path, cal: Path) -> list[Any]:
    console = Console(level=0, record=True)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        deploy(DeployRequest(model=str(model), board="esp32", out=str(Path(tmp) / "p"), calibration=str(cal)), console=console)
        total = time.perf_counter() - start
    steps = dict(console.timings)

    def pick(*keys: str) -> float:
        return sum(v for k, v in steps.items() if any(k.startswith(key) for key in keys))

    tf_import = pick("importing TensorFlow")
    conversion = pick("exporting", "calibrating")
    arena = pick("measuring the arena")
    codegen = pick("computing", "writing the project")
    validation = pick("validating", "float vs int8", "per-layer", "writing report")
    other = total - tf_import - conversion - arena - codegen - validation
    return [name, tf_import, conversion, arena, codegen, validation, other, total]


def fidelity_rows() -> list[list[Any]]:
    import keras
    from sklearn.datasets import load_breast_cancer, load_digits, load_wine
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="mcuq-bench-"))
    digits = load_digits()
    sets: dict[str, tuple[np.ndarray, np.ndarray, Path | None]] = {
        "digits (CNN)": ((digits.images / 16.0)[..., None].astype(np.float32), digits.target, ROOT / "examples/digits/model.keras")
    }
    for label, loader in (("breast_cancer (MLP)", load_breast_cancer), ("wine (MLP)", load_wine)):
        data = loader()
        sets[label] = (data.data.astype(np.float32), data.target, None)
    for label, (x, y, model_path) in sets.items():
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=7, stratify=y)
        if model_path is None:
            scaler = StandardScaler().fit(x_tr)
            x_tr, x_te = scaler.transform(x_tr).astype(np.float32), scaler.transform(x_te).astype(np.float32)
            keras.utils.set_random_seed(7)
            model = keras.Sequential(
                [
                    keras.Input(x.shape[1:]),
                    keras.layers.Dense(16, activation="relu"),
                    keras.layers.Dense(8, activation="relu"),
                    keras.layers.Dense(int(y.max()) + 1, activation="softmax"),
                ]
            )
            model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
            model.fit(x_tr, y_tr, epochs=60, batch_size=16, verbose=0)
            model_path = tmp / f"{label.split()[0]}.keras"
            model.save(model_path)
        else:
            model = keras.saving.load_model(model_path, compile=False)
        float_acc = float(np.mean(model.predict(x_te, verbose=0).argmax(1) == y_te))
        row: list[Any] = [label, f"{100 * float_acc:.1f}"]
        for per_channel, n_cal in (("all", 100), ("none", 100), ("all", 10), ("all", 1000)):
            rng = np.random.default_rng(0)
            pick = rng.choice(len(x_tr), n_cal, replace=n_cal > len(x_tr))
            np.save(tmp / "cal.npy", x_tr[pick])
            out = convert_in_this_process(
                model_path, str(tmp / "cal.npy"), QuantizeOptions(per_channel=per_channel, calibration_samples=n_cal), Console()
            )
            info = parse_model(out["tflite"])
            samples = [[quantize_array(x_te[i : i + 1], info.input_tensors[0])] for i in range(len(x_te))]
            outs = run_tflm(info.raw, samples, 1 << 20, 1).outputs
            pred = np.array([dequantize_array(o[0], info.output_tensors[0]).argmax() for o in outs])
            acc = 100 * float(np.mean(pred == y_te))
            row.append(f"{acc:.1f}" + (f" ({len(x_tr)} avail.)" if n_cal > len(x_tr) else ""))
        rows.append(row)
    return rows


def machine() -> str:
    cpu = "unknown CPU"
    try:
        cpu = next(ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass

    def version(cmd: list[str]) -> str:
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            return (proc.stdout or proc.stderr).splitlines()[0].strip()
        except (OSError, IndexError):
            return "not installed"

    def debian(package: str) -> str:
        found = version(["dpkg-query", "-W", "-f=${Version}", package])
        return f"{package} {found}" if shutil.which(package) and found != "not installed" else f"{package} not installed"

    from mcuq.frontend.tf import tensorflow_version
    from mcuq.reference.host_tflm import tflm_version

    return (
        f"{platform.platform()}, {cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"TensorFlow {tensorflow_version()}, tflite-micro {tflm_version()}; {version(['avr-gcc', '--version'])}; "
        f"{debian('simavr')}; "
        f"{version(['qemu-system-arm', '--version'])}"
    )


def emu_cells(result: Any, macs: int) -> list[Any]:
    if isinstance(result, str):
        return [result, "-", "-", "-"]
    per = f"{macs / result.ticks:.3f}" if result.ticks else "-"
    return [f"{result.flash_bytes:,} / {result.ram_bytes:,}", f"{result.ticks:,}", per, "PASS" if result.passed else "FAIL"]


def per_channel_rows(quantized: dict[str, Any]) -> list[list[Any]]:
    """Arena (esp32 target plan) and fidelity with per-channel Dense vs the --per-channel auto choice."""
    from mcuq.checks.accuracy import evaluate_outputs
    from mcuq.frontend.calibration import InputSpec, SampleSet, load_samples
    from mcuq.frontend.dense_scales import EVALUATION_ARENA, PER_CHANNEL, PER_TENSOR, choose_dense_scales
    from mcuq.model.info import parse_model

    kernels = (get_board("esp32").tflm or {})["kernels"]
    validation = {"digits": ROOT / "examples/digits/val.npz", "sine": ROOT / "examples/sine/val.npz"}
    rows = []
    for name, q in quantized.items():
        info = q.info
        specs = [InputSpec(n, t.shape[1:]) for n, t in zip(info.input_names, info.input_tensors)]
        if name in validation:
            data = load_samples(str(validation[name]), specs, max_samples=None)
        else:  # MLPerf-class models are trained on synthetic data: SNR against float on fresh samples
            rng = np.random.default_rng(1)
            data = SampleSet({s.name: rng.normal(size=(100, *s.shape)).astype(np.float32) for s in specs}, "synthetic N(0,1), seed 1")
        sample = [quantize_array(data.sample_for(0, info.input_names)[k], t) for k, t in enumerate(info.input_tensors)]
        dense = sum(1 for op in info.ops if op.name == "FULLY_CONNECTED")

        def arena(raw: bytes, sample: list[np.ndarray] = sample) -> int:
            return plan_arena(parse_model(raw), measure_min_arena(raw, sample), kernels).target_bytes

        if q.dense_per_channel_tflite is None:
            a = arena(q.tflite)
            rows.append([name, dense, a, a, 0, "-", "-", "-", "no Dense with several units: nothing to choose"])
            continue
        choice = choose_dense_scales(
            q.tflite,
            q.dense_per_channel_tflite,
            data,
            lambda model, q=q, data=data: (
                evaluate_outputs(
                    parse_model(model, "variant"), parse_model(q.float_tflite, "float") if q.float_tflite else None, data, EVALUATION_ARENA
                ).metrics
            ),
        )
        pc_arena, pt_arena = arena(q.dense_per_channel_tflite), arena(q.tflite)
        auto_arena = pc_arena if choice.per_channel else pt_arena
        m = choice.measured
        unit = "%" if m.get("metric") == "accuracy" else " dB"
        rows.append(
            [
                name,
                dense,
                pc_arena,
                auto_arena,
                pc_arena - auto_arena,
                m.get("metric", "-").replace("SNR_dB", "SNR"),
                f"{m[PER_CHANNEL]:.2f}{unit}" if m else "-",
                f"{m[PER_TENSOR]:.2f}{unit}" if m else "-",
                choice.kept,
            ]
        )
    return rows


PER_CHANNEL_TITLE = "Per-channel Dense vs `--per-channel auto` (esp32 arena plan, bytes; fidelity on validation data, x86 TFLite Micro)"
PER_CHANNEL_HEADERS = [
    "model",
    "Dense layers",
    "arena, per-channel Dense",
    "arena, auto choice",
    "saved",
    "metric",
    "per-channel Dense",
    "per-tensor Dense",
    "auto kept",
]


def update_per_channel_section(quantized: dict[str, Any], command: str, started: float) -> int:
    """Measure only the per-channel table and replace its section in RESULTS.md (the other
    tables keep the numbers, command and date of their own run)."""
    text = table(PER_CHANNEL_TITLE, PER_CHANNEL_HEADERS, per_channel_rows(quantized))
    note = (
        f"Measured separately: `{command}`, {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}, {machine()}. "
        "digits: accuracy on examples/digits/val.npz (labels); sine: SNR on examples/sine/val.npz; the MLPerf-class "
        "models are trained on synthetic data, so their figure is the output SNR against float on 100 fresh samples. "
        "The other tables come from their own runs (see their commands); "
        "a memory table from before `auto` shows per-channel Dense arenas.\n"
    )
    results = HERE / "RESULTS.md"
    body = results.read_text() if results.exists() else "# mcuq benchmark results\n"
    start = body.find(f"### {PER_CHANNEL_TITLE}")
    section = text + "\n" + note
    if start >= 0:
        end = body.find("\n### ", start + 4)
        end = body.find("\nNot measured here", start) if end < 0 else end
        body = body[:start] + section + (body[end + 1 :] if end >= 0 else "")
    else:
        anchor = body.find("### Pipeline time")
        body = body[:anchor] + section + "\n" + body[anchor:] if anchor >= 0 else body + "\n" + section
    results.write_text(body)
    print(f"updated the per-channel section of {results} in {time.perf_counter() - started:.0f} s")
    return 0


OTHER_SCRIPTS_SECTION = re.compile(r"<!-- (?P<name>[\w.-]+)(?::| )(?:start|begin) -->.*?<!-- (?P=name)(?::| )end -->", re.S)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="digits and sine only")
    parser.add_argument("--skip-emulators", action="store_true", help="no avr-gcc/simavr/qemu runs")
    parser.add_argument(
        "--per-channel-only", action="store_true", help="only the per-channel Dense vs auto table, replaced in place in RESULTS.md"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    from mcuq.frontend.tf import import_tensorflow

    import_tensorflow()  # quiet TensorFlow before the model builders import Keras
    command = (
        "python benchmarks/run.py"
        + (" --quick" if args.quick else "")
        + (" --skip-emulators" if args.skip_emulators else "")
        + (" --per-channel-only" if args.per_channel_only else "")
    )
    out = [
        f"# mcuq benchmark results\n\nCommand: `{command}`  \nDate: {datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}  \n"
        f"Machine: {machine()}\n\nEvery number below was measured in this one run; ratios compare numbers from the same run.\n"
    ]
    models = build_models(args.quick)
    quantized = {name: quantize(path, str(cal)) for name, (path, cal) in models.items()}
    if args.per_channel_only:
        return update_per_channel_section(quantized, command, started)
    rows = [measure_model(name, q, not args.skip_emulators) for name, q in quantized.items()]

    def ratio(v: Any, lb: Any) -> str:
        return f"{v / lb:.2f}" if isinstance(v, int) and isinstance(lb, int) and lb else "-"

    out.append(
        table(
            "Memory (bytes): arena and activation buffer",
            [
                "model",
                "tensors",
                "ops",
                "x86 TFLM min arena",
                "mcuq target arena (reference kernels)",
                "... (CMSIS-NN, M4)",
                "... (ESP-NN, ESP32-S3)",
                "plain-C buffer",
                "liveness lower bound",
                "TFLM x86 / LB",
                "target ref / LB",
                "C / LB",
            ],
            [
                [
                    r["name"],
                    r["tensors"],
                    r["ops"],
                    r["host_min"],
                    r["target_reference"],
                    r["target_cmsis-nn-dsp"],
                    r["target_esp-nn-s3"],
                    r["c_buffer"],
                    r["lower_bound"],
                    ratio(r["host_min"], r["lower_bound"]),
                    ratio(r["target_reference"], r["lower_bound"]),
                    ratio(r["c_buffer"], r["lower_bound"]),
                ]
                for r in rows
            ],
        )
    )
    if not args.skip_emulators:
        out.append(
            table(
                "Plain-C runtime: size and speed in emulators (self-test with one golden vector, -Os)",
                [
                    "model",
                    "MACs",
                    "model bytes",
                    "ATmega2560 flash / RAM (avr-size)",
                    "cycles per inference (simavr)",
                    "MACs per cycle",
                    "AVR self-test",
                    "dominant op (AVR)",
                    f"Cortex-M4 flash / RAM (arm-none-eabi-size; {CM4_BOARD} flags, SIMD layout)",
                    "instructions per inference (qemu -icount, +-40)",
                    "MACs per instruction",
                    "M4 self-test",
                    "dominant op (M4)",
                ],
                [
                    [
                        r["name"],
                        r["macs"],
                        r["model_bytes"],
                        *emu_cells(r.get("avr", "n/a"), r["macs"]),
                        r.get("avr_dominant", "-"),
                        *emu_cells(r.get("cm4", "n/a"), r["macs"]),
                        r.get("cm4_dominant", "-"),
                    ]
                    for r in rows
                ],
            )
        )
    out.append(table(PER_CHANNEL_TITLE, PER_CHANNEL_HEADERS, per_channel_rows(quantized)))
    out.append(
        table(
            "Pipeline time of `mcuq deploy --board esp32` (seconds, wall clock)",
            [
                "model",
                "TensorFlow import",
                "conversion",
                "arena search + fit",
                "golden vectors + code generation",
                "validation",
                "other",
                "total",
            ],
            [pipeline_times(name, path, cal) for name, (path, cal) in models.items()],
        )
    )
    out.append(
        table(
            "Fidelity: test accuracy (%) float vs int8 on x86 TFLite Micro (scikit-learn datasets, 30% test split)",
            [
                "dataset",
                "float",
                "int8 per-channel, 100 cal.",
                "int8 per-tensor, 100 cal.",
                "int8 per-channel, 10 cal.",
                "int8 per-channel, 1000 cal.",
            ],
            fidelity_rows(),
        )
    )
    out.append(
        f"Not measured here: real-device cycles and TFLite Micro firmware sizes (PlatformIO cannot download toolchains offline); "
        f"Cortex-M4 speed is instruction counts in qemu, not cycles.\n\nRun time: {time.perf_counter() - started:.0f} s\n"
    )
    results = HERE / "RESULTS.md"
    previous = results.read_text() if results.exists() else ""
    # speed.py and tflm_library.py own marked sections of RESULTS.md: keep them all.
    kept = "".join("\n" + m.group(0) + "\n" for m in OTHER_SCRIPTS_SECTION.finditer(previous))
    results.write_text("\n".join(out) + kept)
    print(f"wrote {HERE / 'RESULTS.md'} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except MCUQError as exc:
        print(f"benchmark error: {exc}", file=sys.stderr)
        sys.exit(1)
