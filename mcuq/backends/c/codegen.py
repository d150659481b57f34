"""Render, build and run the plain-C runtime on the host (gcc) and report its sizes.

Rendering returns file texts; building happens in a temporary folder; running feeds the
samples through stdin of a tiny harness, so the same C files that go into the firmware
are checked bit for bit against the x86 TFLite Micro.
"""

from __future__ import annotations

import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from mcuq import __version__
from mcuq.backends.c.avr_codegen import c_string_literals
from mcuq.backends.c.ir import BufferRef, CProgram, KernelCall, PointerList, Value
from mcuq.common.errors import MCUQError
from mcuq.common.resources import templates_dir
from mcuq.project.api import model_prefix, render_api
from mcuq.project.render import BANNER, c_values, environment, tensor_context

RUNTIME_FILES = ("mcuq_kernels.h", "mcuq_kernels.c")
HOST_CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off"]


def _literal(values: np.ndarray, ctype: str) -> str:
    return c_values(values) if values.size else "0"


def _render_value(program: CProgram, value: Value) -> str:
    """A kernel argument as C: buffer places become `ARENA + offset` from the memory plan."""
    if isinstance(value, BufferRef):
        assert program.plan is not None
        offsets = program.plan.tensor_offset if value.kind == "tensor" else program.plan.scratch_offset
        expr = f"ARENA + {offsets[value.index]}"
        return f"({value.cast})({expr})" if value.cast else expr
    if isinstance(value, PointerList):
        return value.name
    return str(value)


# The constants a weighted kernel reads; an op generated as AVR assembly carries them in its
# instructions, so on AVR they are left out (and its parameter struct points at nothing).
KERNEL_CONSTANTS = ("filter", "bias", "mult", "shift")


def generic_only_constants(program: CProgram) -> set[str]:
    return {
        value
        for call in program.calls
        if call.op_index in program.avr_kernels
        for name, value in call.args
        if name in KERNEL_CONSTANTS and isinstance(value, str)
    }


def _call_context(program: CProgram, call: KernelCall) -> dict[str, Any]:
    op = program.info.ops[call.op_index]
    lists = [v for _, v in call.args if isinstance(v, PointerList)]
    generated = call.op_index in program.avr_kernels

    def rendered(name: str, value: Value) -> str:
        text = _render_value(program, value)
        return f"MCUQ_GENERIC_ONLY({text})" if generated and name in KERNEL_CONSTANTS else text

    return {
        "index": call.op_index,
        "op": op.name,
        "layer": program.info.layer_of_op(op).replace("*/", "* /"),
        "function": call.function,
        "params_type": call.params_type,
        "params_name": f"op{call.op_index}_params",
        "args": [(name, rendered(name, value)) for name, value in call.args],
        "pointer_lists": [{"name": p.name, "count": len(p.items), "items": [_render_value(program, v) for v in p.items]} for p in lists],
        "avr": program.avr_kernels.get(call.op_index),
        "buffers": {name: _render_value(program, value) for name, value in call.args if isinstance(value, BufferRef)},
    }


def render_c_model(program: CProgram, model_name: str, api: dict[str, Any] | None = None) -> dict[str, str]:
    """mcuq_model.h/.c for one model plus the fixed kernel files. ``api``: the generated API's
    context (mcuq.project.api); its prefix renames the model's external symbols."""
    assert program.plan is not None
    info = program.info
    plan = program.plan

    generic_only = generic_only_constants(program)

    def io(t_index: int) -> dict[str, Any]:
        return {**tensor_context(info.tensors[t_index]), "offset": plan.tensor_offset[t_index]}

    context = {
        "banner": BANNER,
        "mcuq_version": __version__,
        "model_name": model_name,
        "ops": info.ops,
        "api": api or {"prefix": model_prefix(model_name)},
        "arena_bytes": plan.arena_bytes,
        "arena_words": max(1, (plan.arena_bytes + 3) // 4),
        "lower_bound": plan.lower_bound,
        "inputs": [io(i) for i in info.inputs],
        "outputs": [io(i) for i in info.outputs],
        "calls": [_call_context(program, call) for call in program.calls],
        "simd": program.simd,
        "avr_kernels": [
            {
                "op": k.op_index,
                "declarations": k.declarations,
                "bytes": k.code_bytes,
                "lines": c_string_literals(k.asm),
            }
            for k in program.avr_kernels.values()
        ],
        "constants": [
            {
                "name": c.name,
                "ctype": c.ctype,
                "count": max(1, c.values.size),
                "data": _literal(c.values, c.ctype),
                "flash": c.flash,
                "aligned": c.aligned,
                "generic_only": c.name in generic_only,
            }
            for c in program.constants
        ],
    }
    env = environment()
    files = {
        "mcuq_model.h": env.get_template("c/mcuq_model.h.j2").render(**context),
        "mcuq_model.c": env.get_template("c/mcuq_model.c.j2").render(**context),
    }
    for name in RUNTIME_FILES:
        files[name] = (templates_dir() / "c" / "runtime" / name).read_text()
    return files


def write_sources(files: dict[str, str], folder: Path) -> list[Path]:
    paths = []
    for name, text in files.items():
        (folder / name).write_text(text)
        paths.append(folder / name)
    return paths


def build_host(files: dict[str, str], folder: Path, simd: bool = False) -> Path:
    """gcc build of the host harness; `simd` compiles the SIMD path with its intrinsics
    emulated in portable C (-DMCUQ_EMULATE_SIMD), the code the DSP Cortex-M runs."""
    if shutil.which("gcc") is None:
        raise MCUQError("gcc is not installed: the plain-C runtime is checked on the host with gcc (apt-get install gcc)")
    write_sources(files, folder)
    harness = templates_dir() / "c" / "host" / "mcuq_host_main.c"
    sources = [str(folder / n) for n in ("mcuq_model.c", "mcuq_kernels.c")] + [str(harness)]
    exe = folder / "mcuq_host"
    flags = [*HOST_CFLAGS, *(["-DMCUQ_EMULATE_SIMD"] if simd else [])]
    proc = subprocess.run(["gcc", *flags, "-I", str(folder), *sources, "-o", str(exe), "-lm"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise MCUQError(
            f"the generated C does not compile with gcc -Wall -Wextra -Werror: {proc.stderr.strip().splitlines()[0] if proc.stderr else ''}"
        )
    return exe


def run_host(program: CProgram, files: dict[str, str], samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    """Outputs of the generated C for each sample (int8 tensors in model order)."""
    info = program.info
    with tempfile.TemporaryDirectory(prefix="mcuq-c-") as tmp:
        exe = build_host(files, Path(tmp), program.simd)
        payload = struct.pack("<I", len(samples)) + b"".join(x.astype(np.int8).tobytes() for s in samples for x in s)
        proc = subprocess.run([str(exe)], input=payload, capture_output=True, timeout=600, check=False)
        if proc.returncode != 0:
            raise MCUQError(f"the generated C crashed on the host (exit code {proc.returncode})")
    out_shapes = [info.tensors[i].shape for i in info.outputs]
    per_sample = sum(int(np.prod(s)) for s in out_shapes)
    data = np.frombuffer(proc.stdout, dtype=np.int8)
    if data.size != per_sample * len(samples):
        raise MCUQError(f"the generated C wrote {data.size} output bytes, expected {per_sample * len(samples)}")
    results = []
    for k in range(len(samples)):
        chunk, pos, outs = data[k * per_sample : (k + 1) * per_sample], 0, []
        for shape in out_shapes:
            n = int(np.prod(shape))
            outs.append(chunk[pos : pos + n].reshape(shape).copy())
            pos += n
        results.append(outs)
    return results


# (template under firmware_templates/c/, output path) of a plain-C PlatformIO project.
C_PROJECT_FILES: list[tuple[str, str]] = [
    ("c/platformio.ini.j2", "platformio.ini"),
    ("c/README.md.j2", "README.md"),
    ("c/src/mcuq_golden.h.j2", "src/mcuq_golden.h"),
    ("c/src/mcuq_golden.c.j2", "src/mcuq_golden.c"),
    ("c/src/mcuq_selftest.h.j2", "src/mcuq_selftest.h"),
    ("c/src/mcuq_selftest.c.j2", "src/mcuq_selftest.c"),
    ("c/src/main.cpp.j2", "src/main.cpp"),
    ("c/src/mcuq_api.c.j2", "src/mcuq_api.c"),
    ("c/test/test_native/test_main.c.j2", "test/test_native/test_main.c"),
    ("c/tests/test_host.py.j2", "tests/test_host.py"),
]
C_USER_FILES: list[tuple[str, str]] = [("api/app.cpp.j2", "src/app.cpp")]
# ESP-IDF boards (framework espidf): the CMake project PlatformIO and idf.py both build.
C_ESP_IDF_FILES: list[tuple[str, str]] = [
    ("c/espidf/CMakeLists.txt.j2", "CMakeLists.txt"),
    ("c/espidf/src_CMakeLists.txt.j2", "src/CMakeLists.txt"),
    ("c/espidf/sdkconfig.defaults.j2", "sdkconfig.defaults"),
]


def selftest_sources(program: CProgram, model_name: str, context: dict[str, Any]) -> dict[str, str]:
    """The C files of the self-test firmware (model, kernels, golden vectors, self-test)."""
    files = render_c_model(program, model_name, context.get("api"))
    env = environment()
    for name in ("mcuq_golden.h", "mcuq_golden.c", "mcuq_selftest.h", "mcuq_selftest.c"):
        files[name] = env.get_template(f"c/src/{name}.j2").render(**context)
    return files


def render_c_project(program: CProgram, model_name: str, context: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(generated files, user-owned files) of a plain-C PlatformIO project (plus the ESP-IDF
    CMake files on boards whose framework is espidf)."""
    env = environment()
    context = {"project_name": f"mcuq_{model_name}".replace("-", "_"), **context}
    files = {f"src/{name}": text for name, text in selftest_sources(program, model_name, context).items()}
    board = context.get("board")
    esp_idf = bool(getattr(board, "is_esp_idf", False) or (isinstance(board, dict) and board.get("is_esp_idf")))
    for template, path in C_PROJECT_FILES + (C_ESP_IDF_FILES if esp_idf else []):
        files[path] = env.get_template(template).render(**context)
    files.update(render_api(context))
    users = {path: env.get_template(template).render(**context) for template, path in C_USER_FILES}
    return files, users
