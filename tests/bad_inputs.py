"""The bad-input matrix: every kind of wrong input a user can give the six commands.

Shared by tests/test_robustness.py and benchmarks/robustness.py. Each case prepares its own
folder, runs ``python -m mcuq ...`` and is judged on what a user sees: exit 1 (bad input) or 2
(usage), exactly one line on stderr that names the thing, no traceback, and not one byte
changed anywhere in the workspace (the failed command must neither write nor delete).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SINE_CAL = ROOT / "examples" / "sine" / "calibration.npy"
Setup = Callable[[Path, "Inputs"], list[str]]


@dataclass(frozen=True)
class Inputs:
    """Read-only material every case may use (copied into its folder when it changes it)."""

    digits: Path  # full-int8 .tflite
    sine: Path  # full-int8 .tflite
    float_model: Path  # a float .tflite
    project: Path  # a valid generated project (sine, esp32)
    keras: Path = ROOT / "examples" / "sine" / "model.keras"
    val: Path = ROOT / "examples" / "sine" / "val.npz"


@dataclass(frozen=True)
class Case:
    name: str
    command: str
    setup: Setup
    expect: str  # a piece of the one stderr line (names the thing)
    codes: tuple[int, ...] = (1,)


def _mutant(src: Path, dst: Path, change: Callable[..., None]) -> Path:
    from mutants import _pack, _schema

    model = _schema().ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    change(model)
    dst.write_bytes(_pack(model))
    return dst


def _op_input(m: object) -> None:
    op = m.subgraphs[0].operators[0]  # type: ignore[attr-defined]
    op.inputs = np.array([1000000, *op.inputs[1:]], dtype=np.int32)


def _big_weights(m: object) -> None:
    sg = m.subgraphs[0]  # type: ignore[attr-defined]
    t = sg.tensors[sg.operators[0].inputs[1]]
    t.shape = np.array([t.shape[0] * 1000, *t.shape[1:]], dtype=np.int32)
    t.shapeSignature = None


def _short_scales(m: object) -> None:
    sg = m.subgraphs[0]  # type: ignore[attr-defined]
    q = sg.tensors[sg.operators[0].inputs[1]].quantization
    q.scale, q.zeroPoint = q.scale[:-1], q.zeroPoint[:-1]


def _wrong_options(m: object) -> None:
    from mutants import _schema

    op = m.subgraphs[0].operators[0]  # type: ignore[attr-defined]
    op.builtinOptionsType = _schema().BuiltinOptions.Pool2DOptions
    op.builtinOptions = _schema().Pool2DOptionsT()


def _negative_dim(m: object) -> None:
    sg = m.subgraphs[0]  # type: ignore[attr-defined]
    sg.tensors[sg.outputs[0]].shape = np.array([1, -3], dtype=np.int32)


def _graph_output(m: object) -> None:
    m.subgraphs[0].outputs = np.array([999], dtype=np.int32)  # type: ignore[attr-defined]


def _graph_input(m: object) -> None:
    m.subgraphs[0].inputs = np.array([-7], dtype=np.int32)  # type: ignore[attr-defined]


def _input_int32(m: object) -> None:
    sg = m.subgraphs[0]  # type: ignore[attr-defined]
    sg.tensors[sg.inputs[0]].type = 2  # INT32


def _opcode(m: object) -> None:
    m.subgraphs[0].operators[0].opcodeIndex = 77  # type: ignore[attr-defined]


def _project(d: Path, i: Inputs) -> Path:
    target = d / "proj"
    shutil.copytree(i.project, target, symlinks=True)
    return target


def _manifest(d: Path, i: Inputs, content: str) -> Path:
    target = _project(d, i)
    (target / "mcuq.lock.json").write_text(content)
    return target


def _non_utf8_manifest(d: Path, i: Inputs) -> Path:
    target = _project(d, i)
    (target / "mcuq.lock.json").write_bytes(b"\xff\xfe{")
    return target


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def _npz(path: Path, **arrays: np.ndarray) -> Path:
    np.savez(path, **arrays)
    return path


def _board_text() -> str:
    return (ROOT / "boards" / "esp32.toml").read_text()


def _tflite(i: Inputs, d: Path, change: Callable[..., None], name: str = "bad.tflite") -> str:
    return str(_mutant(i.digits, d / name, change))


def _config(d: Path, text: str | bytes) -> list[str]:
    _write(d / "mcuq.toml", text)
    return ["--config", str(d / "mcuq.toml"), "--out", str(d / "out")]


def _fifo(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    return path


def _link(path: Path, target: str | Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)
    return path


def _board(d: Path, old: str, new: str) -> str:
    text = _board_text()
    assert old in text, old
    return str(_write(d / "b.toml", text.replace(old, new, 1)))


_SAVED_MODEL: list[Path] = []


def _saved_model(d: Path, drop_variables: bool) -> str:
    """A real SavedModel (the sine model, exported once per run), copied; optionally without variables/."""
    if not _SAVED_MODEL:
        import atexit
        import tempfile

        where = Path(tempfile.mkdtemp(prefix="mcuq-bad-inputs-")) / "saved"
        atexit.register(shutil.rmtree, where.parent, True)
        code = f"import keras; keras.saving.load_model({str(Inputs.keras)!r}).export({str(where)!r}, verbose=False)"
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, env=env, timeout=600)
        _SAVED_MODEL.append(where)
    target = d / "saved"
    shutil.copytree(_SAVED_MODEL[0], target)
    if drop_variables:
        shutil.rmtree(target / "variables")
    else:
        (target / "saved_model.pb").write_bytes(b"\x0a\xff\xff\xff garbage, not a protobuf")
    return str(target)


def _linked_model(d: Path, i: Inputs, target: str | Path) -> str:
    project = _project(d, i)
    model = project / "mcuq" / "model_int8.tflite"
    model.unlink()
    os.symlink(target, model)
    return str(project)


def _digits_labels(d: Path) -> str:
    return str(_npz(d / "v.npz", x=np.zeros((4, 8, 8, 1), np.float32), labels=np.array([1, 2, 99, 3])))


NON_UTF8 = os.fsdecode(b"m\xff.tflite")


X = np.zeros((4, 1), np.float32)

CASES: list[Case] = [
    # quantize
    Case("missing model", "quantize", lambda d, i: [str(d / "nope.keras"), "-o", str(d / "o.tflite"), "-c", "random"], "nope.keras"),
    Case(
        "model folder not SavedModel",
        "quantize",
        lambda d, i: [str(_write(d / "m" / "x.txt", "x").parent), "-o", str(d / "o.tflite"), "-c", "random"],
        "m",
    ),
    Case("empty .keras", "quantize", lambda d, i: [str(_write(d / "m.keras", b"")), "-o", str(d / "o.tflite"), "-c", "random"], "m.keras"),
    Case(
        "garbage .tflite",
        "quantize",
        lambda d, i: [str(_write(d / "g.tflite", b"hello world, not a model")), "-o", str(d / "o.tflite")],
        "g.tflite",
    ),
    Case(
        "truncated .tflite",
        "quantize",
        lambda d, i: [str(_write(d / "t.tflite", i.digits.read_bytes()[:3000])), "-o", str(d / "o.tflite")],
        "t.tflite",
    ),
    Case("float .tflite", "quantize", lambda d, i: [str(i.float_model), "-o", str(d / "o.tflite")], "float .tflite"),
    Case("-o under a file", "quantize", lambda d, i: [str(i.sine), "-o", str(_write(d / "f", "x") / "o.tflite")], "is a file"),
    Case(
        "-o onto a folder --force",
        "quantize",
        lambda d, i: [str(i.sine), "-o", str(_write(d / "o.tflite" / "x", "x").parent), "--force"],
        "not a regular file",
    ),
    Case(
        "-o dangling symlink",
        "quantize",
        lambda d, i: (os.symlink(d / "nowhere", d / "o.tflite"), [str(i.sine), "-o", str(d / "o.tflite")])[1],
        "symbolic link",
    ),
    Case("-o in /proc", "quantize", lambda d, i: [str(i.sine), "-o", "/proc/mcuq.tflite"], "/proc"),
    Case(
        "-o onto a foreign file", "quantize", lambda d, i: [str(i.sine), "-o", str(_write(d / "o.tflite", "mine"))], "not written by mcuq"
    ),
    Case(
        "foreign .mcuq.json",
        "quantize",
        lambda d, i: (_write(d / "o.tflite.mcuq.json", "mine"), [str(i.sine), "-o", str(d / "o.tflite")])[1],
        "o.tflite.mcuq.json",
    ),
    Case("keras without calibration", "quantize", lambda d, i: [str(i.keras), "-o", str(d / "o.tflite")], "calibration"),
    Case(
        "--calibration-samples 0",
        "quantize",
        lambda d, i: [str(i.sine), "-o", str(d / "o.tflite"), "--calibration-samples", "0"],
        "calibration-samples",
        (1, 2),
    ),
    Case("--io bogus", "quantize", lambda d, i: [str(i.sine), "-o", str(d / "o.tflite"), "--io", "int4"], "--io", (2,)),
    Case("unknown option", "quantize", lambda d, i: [str(i.sine), "-o", str(d / "o.tflite"), "--frobnicate"], "--frobnicate", (2,)),
    Case(
        "missing calibration file", "quantize", lambda d, i: [str(i.keras), "-o", str(d / "o.tflite"), "-c", str(d / "cal.npy")], "cal.npy"
    ),
    Case(
        "empty calibration CSV",
        "quantize",
        lambda d, i: [str(i.keras), "-o", str(d / "o.tflite"), "-c", str(_write(d / "cal.csv", ""))],
        "cal.csv",
    ),
    # inspect
    Case("inspect missing", "inspect", lambda d, i: [str(d / "nope.tflite")], "nope.tflite"),
    Case("inspect garbage", "inspect", lambda d, i: [str(_write(d / "g.tflite", os.urandom(2000)))], "g.tflite"),
    Case("inspect empty file", "inspect", lambda d, i: [str(_write(d / "e.tflite", b""))], "e.tflite"),
    Case("inspect truncated", "inspect", lambda d, i: [str(_write(d / "t.tflite", i.digits.read_bytes()[:5000]))], "t.tflite"),
    Case("inspect folder named .tflite", "inspect", lambda d, i: [str(_write(d / "x.tflite" / "y", "y").parent)], "x.tflite"),
    Case("op input index 1000000", "inspect", lambda d, i: [_tflite(i, d, _op_input)], "input tensor index is 1000000"),
    Case("weights larger than data", "inspect", lambda d, i: [_tflite(i, d, _big_weights)], "bytes of data"),
    Case("per-channel scale count", "inspect", lambda d, i: [_tflite(i, d, _short_scales)], "scales"),
    Case("wrong options type", "inspect", lambda d, i: [_tflite(i, d, _wrong_options)], "Pool2DOptions"),
    Case("negative dimension", "inspect", lambda d, i: [_tflite(i, d, _negative_dim)], "negative dimension"),
    Case("graph output index", "inspect", lambda d, i: [_tflite(i, d, _graph_output)], "output tensor index is 999"),
    Case("graph input index", "inspect", lambda d, i: [_tflite(i, d, _graph_input)], "input tensor index is -7"),
    Case("opcode index", "inspect", lambda d, i: [_tflite(i, d, _opcode)], "opcode index is 77"),
    Case("inspect keras without calibration", "inspect", lambda d, i: [str(i.keras)], "calibration"),
    # deploy
    Case("--golden -3", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--golden", "-3"], "--golden -3", (2,)),
    Case("--golden 0", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--golden", "0"], "--golden 0", (2,)),
    Case("--golden 100000", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--golden", "100000"], "--golden 100000", (2,)),
    Case("--arena-size 0", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--arena-size", "0"], "--arena-size 0", (2,)),
    Case("--arena-size -5", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--arena-size", "-5"], "--arena-size -5", (2,)),
    Case(
        "--arena-size absurd",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--arena-size", "1000000000", "-b", "nano33ble"],
        "drop --arena-size",
    ),
    Case("unknown board", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "-b", "nope"], "nope"),
    Case("missing board file", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--board-file", str(d / "b.toml")], "b.toml"),
    Case(
        "garbage board file",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--board-file", str(_write(d / "b.toml", "[[["))],
        "b.toml",
    ),
    Case("--runtime java", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--runtime", "java"], "--runtime", (2,)),
    Case("--out under a file", "deploy", lambda d, i: [str(i.sine), "--out", str(_write(d / "f", "x") / "out")], "is a file"),
    Case(
        "--out dangling symlink",
        "deploy",
        lambda d, i: (os.symlink(d / "nowhere", d / "out"), [str(i.sine), "--out", str(d / "out")])[1],
        "symbolic link",
    ),
    Case("--out in /proc", "deploy", lambda d, i: [str(i.sine), "--out", "/proc/mcuq-out"], "/proc"),
    Case(
        "--out foreign folder",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(_write(d / "out" / "mine.txt", "x").parent)],
        "not generated by mcuq",
    ),
    Case("--out project without --force", "deploy", lambda d, i: [str(i.sine), "--out", str(_project(d, i))], "--force"),
    Case("--force onto manifest {}", "deploy", lambda d, i: [str(i.sine), "--out", str(_manifest(d, i, "{}")), "--force"], "manifest"),
    Case("--force onto manifest list", "deploy", lambda d, i: [str(i.sine), "--out", str(_manifest(d, i, "[1]")), "--force"], "manifest"),
    Case(
        "--data wrong label count",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--data", str(_npz(d / "v.npz", x=X, labels=np.arange(3)))],
        "labels",
    ),
    Case("--data missing", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--data", str(d / "v.npz")], "v.npz"),
    Case(
        "--data wrong shape",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--data", str(_npz(d / "v.npz", x=np.zeros((4, 3), np.float32)))],
        "shape",
    ),
    Case(
        "--data NaN",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--data", str(_npz(d / "v.npz", x=np.full((4, 1), np.nan, np.float32)))],
        "NaN",
    ),
    Case("deploy missing model", "deploy", lambda d, i: [str(d / "m.tflite"), "--out", str(d / "out")], "m.tflite"),
    Case("deploy malformed model", "deploy", lambda d, i: [_tflite(i, d, _op_input), "--out", str(d / "out")], "input tensor index"),
    Case("deploy model input retyped int32", "deploy", lambda d, i: [_tflite(i, d, _input_int32), "--out", str(d / "out")], "int32"),
    Case("deploy float model", "deploy", lambda d, i: [str(i.float_model), "--out", str(d / "out")], "float .tflite"),
    Case("--config missing", "deploy", lambda d, i: ["--config", str(d / "mcuq.toml")], "mcuq.toml"),
    Case("config runtime java", "deploy", lambda d, i: _config(d, f'model = "{i.sine}"\nruntime = "java"\n'), "runtime"),
    Case("config unknown key", "deploy", lambda d, i: _config(d, f'model = "{i.sine}"\nboard_name = "esp32"\n'), "board_name"),
    Case("config not UTF-8", "deploy", lambda d, i: _config(d, b'model = "\xff\xfe"\n'), "UTF-8"),
    Case("config invalid TOML", "deploy", lambda d, i: _config(d, "model = \n"), "TOML"),
    Case("config golden 0", "deploy", lambda d, i: _config(d, f'model = "{i.sine}"\ngolden = 0\n'), "golden"),
    Case("config wrong type", "deploy", lambda d, i: _config(d, f'model = "{i.sine}"\narena_size = "big"\n'), "arena_size"),
    Case("config io bogus", "deploy", lambda d, i: _config(d, f'model = "{i.sine}"\nio = "int4"\n'), "io"),
    Case(
        "--calibration-samples 0 deploy",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--calibration-samples", "0"],
        "calibration-samples",
        (1, 2),
    ),
    # validate
    Case("validate missing folder", "validate", lambda d, i: [str(d / "nope")], "nope"),
    Case("validate folder without manifest", "validate", lambda d, i: [str(_write(d / "p" / "x", "x").parent)], "mcuq.lock.json"),
    Case("validate a file", "validate", lambda d, i: [str(_write(d / "p", "x"))], "p"),
    Case("validate manifest {}", "validate", lambda d, i: [str(_manifest(d, i, "{}"))], "older mcuq"),
    Case("validate manifest list", "validate", lambda d, i: [str(_manifest(d, i, "[]"))], "list"),
    Case("validate manifest broken JSON", "validate", lambda d, i: [str(_manifest(d, i, '{"schema'))], "damaged"),
    Case("validate manifest not UTF-8", "validate", lambda d, i: [str(_non_utf8_manifest(d, i))], "damaged"),
    Case("validate manifest schema 1", "validate", lambda d, i: [str(_manifest(d, i, '{"schema_version": 1}'))], "schema version 1"),
    Case("validate manifest schema 2", "validate", lambda d, i: [str(_manifest(d, i, '{"schema_version": 2}'))], "mcuq deploy --force"),
    Case("validate manifest missing keys", "validate", lambda d, i: [str(_manifest(d, i, '{"schema_version": 3}'))], "malformed"),
    Case("validate --data missing", "validate", lambda d, i: [str(_project(d, i)), "--data", str(d / "v.npz"), "--no-report"], "v.npz"),
    Case(
        "validate --labels count",
        "validate",
        lambda d, i: [
            str(_project(d, i)),
            "--data",
            str(i.val),
            "--no-report",
            "--labels",
            str((np.save(d / "l.npy", np.arange(3)), d / "l.npy")[1]),
        ],
        "labels",
    ),
    Case(
        "validate --labels garbage",
        "validate",
        lambda d, i: [str(_project(d, i)), "--data", str(i.val), "--no-report", "--labels", str(_write(d / "l.npy", "nope"))],
        "l.npy",
    ),
    # boards
    Case("boards missing file", "boards", lambda d, i: ["--board-file", str(d / "b.toml")], "b.toml"),
    Case("boards garbage file", "boards", lambda d, i: ["--board-file", str(_write(d / "b.toml", "= ="))], "b.toml"),
    Case(
        "boards missing key",
        "boards",
        lambda d, i: ["--board-file", str(_write(d / "b.toml", _board_text().replace('mcu = "ESP32"\n', "")))],
        "mcu",
    ),
    Case("boards not UTF-8", "boards", lambda d, i: ["--board-file", str(_write(d / "b.toml", b'id = "\xff"\n'))], "b.toml"),
    Case(
        "boards wrong type",
        "boards",
        lambda d, i: ["--board-file", str(_write(d / "b.toml", _board_text().replace("sram_bytes = 327680", 'sram_bytes = "x"')))],
        "sram_bytes",
    ),
    # init
    Case("init path exists", "init", lambda d, i: ["--path", str(_write(d / "mcuq.toml", "# mine\n"))], "exists"),
    Case("init missing folder", "init", lambda d, i: ["--path", str(d / "no" / "mcuq.toml")], "does not exist"),
    Case("init under a file", "init", lambda d, i: ["--path", str(_write(d / "f", "x") / "mcuq.toml")], "is a file"),
    Case("init in /proc", "init", lambda d, i: ["--path", "/proc/mcuq.toml"], "/proc"),
    Case("init path is a folder", "init", lambda d, i: ["--path", str(_write(d / "cfg" / "x", "x").parent)], "exists"),
    # issue 23: hostile input
    Case("quantize FIFO model", "quantize", lambda d, i: [str(_fifo(d / "m.tflite")), "-o", str(d / "o.tflite")], "FIFO"),
    Case("inspect model linked to /dev/zero", "inspect", lambda d, i: [str(_link(d / "z.tflite", "/dev/zero"))], "/dev/zero"),
    Case("inspect FIFO named .keras", "inspect", lambda d, i: [str(_fifo(d / "m.keras")), "-c", "random"], "m.keras"),
    Case(
        "calibration FIFO",
        "quantize",
        lambda d, i: [str(i.keras), "-o", str(d / "o.tflite"), "-c", str(_fifo(d / "cal.npy"))],
        "cal.npy",
    ),
    Case(
        "calibration linked to /dev/zero",
        "quantize",
        lambda d, i: [str(i.keras), "-o", str(d / "o.tflite"), "-c", str(_link(d / "cal.npz", "/dev/zero"))],
        "character device",
    ),
    Case("deploy --data FIFO", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--data", str(_fifo(d / "v.npz"))], "v.npz"),
    Case(
        "deploy --labels FIFO", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--labels", str(_fifo(d / "l.txt"))], "l.txt"
    ),
    Case("deploy --config FIFO", "deploy", lambda d, i: ["--config", str(_fifo(d / "mcuq.toml"))], "FIFO"),
    Case("boards --board-file /dev/zero", "boards", lambda d, i: ["--board-file", str(_link(d / "b.toml", "/dev/zero"))], "b.toml"),
    Case(
        "SavedModel without variables/",
        "quantize",
        lambda d, i: [_saved_model(d, True), "-o", str(d / "o.tflite"), "-c", str(SINE_CAL)],
        "variables/",
    ),
    Case(
        "SavedModel corrupt saved_model.pb",
        "quantize",
        lambda d, i: [_saved_model(d, False), "-o", str(d / "o.tflite"), "-c", str(SINE_CAL)],
        "saved_model.pb",
    ),
    Case("--seed -1", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--seed", "-1"], "--seed", (2,)),
    Case("quantize --seed -1", "quantize", lambda d, i: [str(i.sine), "-o", str(d / "o.tflite"), "--seed", "-1"], "--seed", (2,)),
    Case("config seed -1", "deploy", lambda d, i: _config(d, f'model = "{i.sine}"\nseed = -1\n'), "seed"),
    Case(
        "--labels JSON not a list",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--labels", str(_write(d / "l.json", '{"cat": 0}'))],
        "not a list",
    ),
    Case(
        "non-UTF-8 model file name",
        "deploy",
        lambda d, i: [str(_write(d / NON_UTF8, i.sine.read_bytes())), "--out", str(d / "out")],
        "UTF-8",
    ),
    Case(
        "non-UTF-8 name quantize",
        "quantize",
        lambda d, i: [str(_write(d / NON_UTF8, i.sine.read_bytes())), "-o", str(d / "o.tflite")],
        "UTF-8",
    ),
    Case(
        "--data one sample, wrong shape",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--data", str(_npz(d / "v.npz", x=np.zeros(5, np.float32)))],
        "shape (5,)",
    ),
    Case(
        "--tflm-source /etc", "deploy", lambda d, i: [str(i.sine), "--out", str(d / "out"), "--tflm-source", "/etc"], "not a TFLite Micro"
    ),
    Case(
        "validate --tflm-source without --build",
        "validate",
        lambda d, i: [str(_project(d, i)), "--tflm-source", "/etc", "--no-report"],
        "--build",
        (2,),
    ),
    Case(
        "--data labels out of range",
        "deploy",
        lambda d, i: [str(i.digits), "--out", str(d / "out"), "--data", _digits_labels(d)],
        "label 99",
    ),
    Case(
        "config calibration module:function",
        "deploy",
        lambda d, i: _config(d, f'model = "{i.keras}"\ncalibration = "evil:samples"\n'),
        "--allow-code",
    ),
    Case("validate model linked out", "validate", lambda d, i: [_linked_model(d, i, i.digits), "--no-report"], "outside the project"),
    Case("validate model linked to /dev/zero", "validate", lambda d, i: [_linked_model(d, i, "/dev/zero"), "--no-report"], "/dev/zero"),
    Case(
        "board name becomes code",
        "deploy",
        lambda d, i: [str(i.sine), "--out", str(d / "out"), "--board-file", _board(d, 'name = "Espressif', 'name = "x\\");evil();//')],
        "name",
    ),
    Case(
        "board platformio.board newline",
        "boards",
        lambda d, i: ["--board-file", _board(d, 'board = "esp32dev"', 'board = "esp32dev\\nextra_scripts = pre:evil.py"')],
        "platformio.board",
    ),
    Case("board id ../../x", "deploy", lambda d, i: [str(i.sine), "--board-file", _board(d, 'id = "esp32"', 'id = "../../x"')], "id"),
    Case("board negative psram", "boards", lambda d, i: ["--board-file", _board(d, "psram_bytes = 0", "psram_bytes = -1")], "psram_bytes"),
    Case(
        "board sram 10**30",
        "boards",
        lambda d, i: ["--board-file", _board(d, "sram_bytes = 327680", "sram_bytes = " + "1" + "0" * 30)],
        "sram_bytes",
    ),
    Case(
        "board monitor speed 0",
        "boards",
        lambda d, i: ["--board-file", _board(d, "monitor_speed = 115200", "monitor_speed = 0")],
        "monitor_speed",
    ),
    Case(
        "board build flag runs a command",
        "boards",
        lambda d, i: ["--board-file", _board(d, 'framework = "espidf"', 'framework = "espidf"\nbuild_flags = ["!evil"]')],
        "build_flags",
    ),
]
