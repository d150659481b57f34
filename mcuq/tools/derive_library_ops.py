"""Derive a TFLite Micro library's op data from its sources (what ``boards/libraries/*.toml`` hold).

``python -m mcuq.tools.derive_library_ops DIR [--id ID]`` prints the ``add_methods`` and
``int16x8_ops`` lines for the library unpacked in DIR (e.g. ../shared/tflm-libs/esp-tflite-micro);
tests/test_library_ops.py compares them with the checked-in TOML so the data cannot drift from
the code again (it had: esp-tflite-micro's LEAKY_RELU, SUB, TRANSPOSE_CONV and SVDF have int16
kernels the hand-written list left out).

How it reads the sources (stdlib only, no compiler):

* ``add_methods``: every ``TfLiteStatus AddXxx(...)`` of ``micro_mutable_op_resolver.h`` that
  registers a kernel (``AddBuiltin`` / ``AddCustom`` plumbing excluded), with the ``Register_*``
  function it installs and the builtin op (``BuiltinOperator_X``) or custom name it answers to.
* the kernel that runs: the file that defines that ``Register_*`` among the sources the library
  compiles: ``kernels/*.cc|cpp`` with the optimized directory's file of the same name replacing
  the reference one (TFLite Micro's ``OPTIMIZED_KERNEL_DIR`` rule, which esp-tflite-micro's
  CMakeLists.txt spells out as ``REMOVE_ITEM ... esp_nn``), and ``signal/micro/kernels``.
* ``int16x8_ops``: a builtin op whose registration reaches ``kTfLiteInt16``: the functions named
  in the ``Register_*`` body (init/prepare/eval, template arguments included) and, transitively,
  the functions they call that are defined in the same kernel file or its ``<name>_common`` file.
  Walking from the registration (not grepping the file) keeps ops apart that share one file
  (``elementwise.cc``: ABS and RSQRT take int16, SIN does not).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

OPTIMIZED_DIRS = ("esp_nn", "cmsis_nn")
# The library folder under ../shared/tflm-libs for each boards/libraries/<id>.toml.
LIBRARY_DIRS = {"esp-tflite-micro": "esp-tflite-micro", "chirale-tensorflowlite": "Chirale_TensorFLowLite"}
_ADD = re.compile(r"TfLiteStatus (Add\w+)\(([^{;]*)\)\s*\{(.*?)\n  \}", re.S)
_KEYWORDS = {"if", "for", "while", "switch", "return", "sizeof", "static_cast", "reinterpret_cast", "case"}


@dataclass(frozen=True)
class LibraryOps:
    """What one library's sources say: resolver methods, the op each serves, int16 support."""

    add_methods: tuple[str, ...]
    builtin_ops: dict[str, str]  # AddConv2D -> CONV_2D
    custom_ops: dict[str, str]  # AddWindow -> SignalWindow
    registrations: dict[str, str]  # AddWindow -> Register_WINDOW
    int16x8_ops: tuple[str, ...]


def _kernel_sources(root: Path, kernels: Path) -> list[Path]:
    """The kernel files the library compiles (optimized files replace reference ones by name)."""
    chosen = {f.name: f for f in sorted(kernels.glob("*.c*")) if f.suffix in (".cc", ".cpp", ".c")}
    for name in OPTIMIZED_DIRS:
        for f in sorted((kernels / name).glob("*.c*")):
            chosen[f.name] = f
    signal = root / "signal" / "micro" / "kernels"
    return (
        [*chosen.values(), *sorted(p for p in signal.glob("*.c*") if "_test" not in p.name)] if signal.is_dir() else list(chosen.values())
    )


def _body(text: str, start: int) -> str:
    """The brace-balanced block that opens at or after ``start``."""
    open_at = text.find("{", start)
    depth = 0
    for i in range(open_at, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[open_at : i + 1]
    return text[open_at:]


def _functions(text: str) -> dict[str, str]:
    """Function name -> body(ies) of every function defined in ``text`` (overloads joined)."""
    found: dict[str, str] = {}
    for m in re.finditer(r"\b([A-Za-z_]\w*)\s*\(([^;{}()]|\([^;{}()]*\))*\)\s*(const\s*)?\{", text):
        name = m.group(1)
        if name in _KEYWORDS:
            continue
        found[name] = found.get(name, "") + _body(text, m.end() - 1)
    return found


def _invoke_function(register: str, functions: dict[str, str]) -> str:
    """The eval function a ``Register_*`` installs: the third argument of ``RegisterOp(init,
    prepare, invoke, ...)`` or the ``/*invoke=*/`` field; the registration itself otherwise."""
    body = functions.get(register, "")
    call = re.search(r"RegisterOp\(", body)
    if call is not None:
        args, depth, current = [], 0, ""
        for ch in body[call.end() :]:
            if ch in "(<":
                depth += 1
            elif ch in ")>":
                if depth == 0:
                    break
                depth -= 1
            elif ch == "," and depth == 0:
                args.append(current)
                current = ""
                continue
            current += ch
        args.append(current)
        if len(args) >= 3:
            name = re.search(r"([A-Za-z_]\w*)\s*(<.*>)?\s*$", args[2].strip())
            if name is not None:
                return name.group(1)
    field = re.search(r"invoke=\*/\s*([A-Za-z_]\w*)", body)
    return field.group(1) if field is not None else register


def _reaches_int16(register: str, files: list[Path]) -> bool:
    """Whether the op's eval function (or a function it calls, defined in ``files``) names
    kTfLiteInt16. Prepare is left out: it often accepts int16 that Eval then rejects (Chirale's
    PRELU: prelu_common.cpp:31 vs prelu.cpp:45-66, float and int8 only)."""
    text = "\n".join(f.read_text(errors="replace") for f in files)
    functions = _functions(text)
    todo, seen = [_invoke_function(register, functions)], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in functions:
            continue
        seen.add(name)
        body = functions[name]
        if "kTfLiteInt16" in body:
            return True
        todo.extend(re.findall(r"\b([A-Za-z_]\w*)\b", body))
    return False


def resolver_registrations(header: Path) -> dict[str, str]:
    """``AddWindow`` -> ``Register_WINDOW``: the kernel each resolver method installs."""
    found = {}
    for method, args, body in _ADD.findall(header.read_text()):
        register = re.search(r"\b(Register_\w+)\(\)", args + body)
        if register is not None:
            found[method] = register.group(1)
    return found


def derive(root: Path) -> LibraryOps:
    """Read the library unpacked at ``root``."""
    header = next(root.rglob("micro_mutable_op_resolver.h"), None)
    if header is None:
        raise FileNotFoundError(f"{root}: no micro_mutable_op_resolver.h")
    sources = _kernel_sources(root, header.parent / "kernels")
    texts = {f: f.read_text(errors="replace") for f in sources}
    methods: list[str] = []
    builtin: dict[str, str] = {}
    custom: dict[str, str] = {}
    registrations: dict[str, str] = {}
    int16: set[str] = set()
    for method, args, body in _ADD.findall(header.read_text()):
        register = re.search(r"\b(Register_\w+)\(\)", args + body)
        if register is None:
            continue  # AddCustom / AddBuiltin themselves
        methods.append(method)
        registrations[method] = register.group(1)
        op = re.search(r"BuiltinOperator_(\w+)", body)
        name = re.search(r'AddCustom\(\s*"(\w+)"', body)
        if op is not None and op.group(1) != "CUSTOM":
            builtin[method] = op.group(1)
        elif name is not None:
            custom[method] = name.group(1)
        defining = [f for f, t in texts.items() if re.search(rf"\b{register.group(1)}\(\)\s*\{{", t)]
        files = [*defining, *(f.with_name(f"{f.stem}_common{f.suffix}") for f in defining)]
        files += [header.parent / "kernels" / f"{f.stem}_common{f.suffix}" for f in defining]
        files = sorted({f for f in files if f.exists()})
        if method in builtin and files and _reaches_int16(register.group(1), files):
            int16.add(builtin[method])
    return LibraryOps(tuple(sorted(methods)), builtin, custom, registrations, tuple(sorted(int16)))


def toml_lines(ops: LibraryOps) -> str:
    """The two TOML keys, formatted as in boards/libraries/*.toml."""

    def array(values: tuple[str, ...]) -> str:
        rows, row = [], ""
        for v in values:
            item = f'"{v}", '
            if len(row) + len(item) > 100:
                rows.append(row.rstrip())
                row = ""
            row += item
        rows.append(row.rstrip().rstrip(","))
        return "[\n  " + "\n  ".join(rows) + ",\n]"

    return f"add_methods = {array(ops.add_methods)}\nint16x8_ops = {array(ops.int16x8_ops)}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="the library's unpacked sources, e.g. ../shared/tflm-libs/esp-tflite-micro")
    args = parser.parse_args(argv)
    try:
        ops = derive(Path(args.folder))
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(toml_lines(ops))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
