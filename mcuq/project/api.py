"""The generated application API: one header per model, the same shape for every runtime.

``firmware_templates/api/`` holds it: ``mcuq_api.h`` (types and helpers shared by every
model, byte-identical across models and runtimes) and ``<prefix>_model.h`` (this model's
sizes, tensor infos, labels and the ``<prefix>_*`` functions). Each runtime implements only
``init``/``invoke``/``input``/``output``/``selftest``; everything else is inline in the
header, so an ``app.cpp`` written against it builds with either runtime, and the prefix
(``deploy --name``) lets two models link into one firmware.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from mcuq.common.errors import MCUQError
from mcuq.model.info import ModelInfo, TensorInfo
from mcuq.project.render import environment

DTYPE_ENUMS = {"int8": "MCUQ_INT8", "uint8": "MCUQ_UINT8", "int16": "MCUQ_INT16", "float32": "MCUQ_FLOAT32"}
C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long register "
    "restrict return short signed sizeof static struct switch typedef union unsigned void volatile while bool class "
    "delete new namespace operator private protected public template this throw try using virtual main setup loop".split()
)
MAX_LABELS = 1000


def c_identifier(text: str) -> str:
    """``My Model-v2`` -> ``my_model_v2``: lower-case letters, digits and underscores."""
    ident = re.sub(r"[^0-9a-zA-Z_]+", "_", text).strip("_").lower()
    return f"m_{ident}" if not ident or ident[0].isdigit() else ident


def model_prefix(name: str, explicit: bool = False) -> str:
    """The C prefix of every generated API name. An explicit ``--name`` must already be a
    valid identifier (a silent rename would break the user's code later); a name derived
    from the model file is cleaned up."""
    prefix = c_identifier(name)
    if explicit and prefix != name:
        raise MCUQError(f"--name {name!r}: use a C identifier (letters, digits, underscores, not starting with a digit), e.g. {prefix}")
    if prefix in C_KEYWORDS or prefix.startswith("mcuq"):
        if explicit:
            raise MCUQError(f"--name {name!r}: reserved (C/C++ keyword, Arduino entry point or mcuq's own prefix); choose another")
        prefix = f"{prefix}_model" if not prefix.startswith("mcuq") else f"m_{prefix}"
    return prefix


def load_labels(spec: str | None, source_name: str = "--labels") -> list[str]:
    """Class names from a text file (one per line), a JSON list, or a .npy of strings."""
    if spec is None:
        return []
    path = Path(spec)
    if not path.is_file():
        raise MCUQError(f"{spec}: no such labels file ({source_name}); give a text file with one class name per line")
    try:
        if path.suffix.lower() == ".json":
            labels = [str(x) for x in json.loads(path.read_text())]
        elif path.suffix.lower() == ".npy":
            labels = [str(x) for x in np.load(path, allow_pickle=False).reshape(-1)]
        else:
            labels = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MCUQError(f"{spec}: cannot read the class labels ({exc}); give one class name per line") from None
    if not labels:
        raise MCUQError(f"{spec}: no class labels in this file; give one class name per line")
    if len(labels) > MAX_LABELS:
        raise MCUQError(f"{spec}: {len(labels)} labels; mcuq embeds at most {MAX_LABELS}")
    return labels


def check_labels(labels: list[str], info: ModelInfo, source: str) -> None:
    """The label count must match some output's class count (else they label nothing)."""
    if not labels:
        return
    sizes = [int(np.prod(t.shape[1:])) if len(t.shape) > 1 else int(np.prod(t.shape)) for t in info.output_tensors]
    if len(labels) not in sizes:
        raise MCUQError(
            f"{source}: {len(labels)} labels, but the model's outputs have {', '.join(map(str, sizes))} values; "
            "give one name per class of the classifier output"
        )


def _c_string(text: str) -> str:
    return json.dumps(text, ensure_ascii=True)[1:-1].replace("?", "\\?")


def _tensor(t: TensorInfo, name: str, used: set[str]) -> dict[str, Any]:
    ident = c_identifier(name).upper() or "T"
    while ident in used:
        ident += "_"
    used.add(ident)
    scale = t.quant.scale[0] if t.quant else 1.0
    size = int(np.prod(t.shape)) if t.shape else 1
    return {
        "name": _c_string(name),
        "ident": ident,
        "shape": list(t.shape),
        "dtype": t.dtype,
        "enum": DTYPE_ENUMS[t.dtype],
        "size": size,
        "scale_literal": f"{scale!r}f",
        "zero_point": t.quant.zero_point[0] if t.quant else 0,
    }


def api_context(prefix: str, info: ModelInfo, runtime: str, labels: list[str], labels_source: str | None) -> dict[str, Any]:
    """The ``api`` key of every project's template context."""
    used_in: set[str] = set()
    used_out: set[str] = set()
    return {
        "prefix": prefix,
        "PREFIX": prefix.upper(),
        "ns": f"{prefix}_mcuq",
        "runtime": runtime,
        "inputs": [_tensor(t, n, used_in) for t, n in zip(info.input_tensors, info.input_names)],
        "outputs": [_tensor(t, n, used_out) for t, n in zip(info.output_tensors, info.output_names)],
        "labels": [_c_string(label) for label in labels],
        "labels_source": _c_string(labels_source or ""),
        "header": f"{prefix}_model.h",
    }


def render_api(context: dict[str, Any]) -> dict[str, str]:
    """The API headers and the validation link's files, as project paths -> text."""
    from mcuq.device.firmware import render_link

    env = environment()
    api = context["api"]
    return {
        "src/mcuq_api.h": env.get_template("api/mcuq_api.h.j2").render(**context),
        "src/mcuq_platform.h": env.get_template("api/mcuq_platform.h.j2").render(**context),
        f"src/{api['header']}": env.get_template("api/model_api.h.j2").render(**context),
        **render_link(context),  # the validation link (mcuq validate --device)
    }
