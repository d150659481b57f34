"""The generated application API: one header per model, the same shape for every runtime.

``firmware_templates/api/`` holds it: ``mcuq_api.h`` (types and helpers shared by every
model, byte-identical across models and runtimes) and ``<prefix>_model.h`` (this model's
sizes, tensor infos, labels and the ``<prefix>_*`` functions). Each runtime implements only
``init``/``invoke``/``input``/``output``/``selftest``; everything else is inline in the
header, so an ``app.cpp`` written against it builds with either runtime, and the prefix
(``deploy --name``) lets two models link into one firmware.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from mcuq.common.errors import MCUQError
from mcuq.common.files import TEXT_LIMIT, read_regular
from mcuq.model.info import ModelInfo, TensorInfo
from mcuq.project.escape import C_KEYWORDS, Safe, c_comment, c_identifier, code, terminal
from mcuq.project.render import environment

if TYPE_CHECKING:
    from mcuq.backends.base import LinkIdentity
    from mcuq.frontend.samples import SampleSet

DTYPE_ENUMS = {"int8": "MCUQ_INT8", "uint8": "MCUQ_UINT8", "int16": "MCUQ_INT16", "int32": "MCUQ_INT32", "float32": "MCUQ_FLOAT32"}
# Typed helpers (<prefix>_input_int16(), _set_input_int16(), _output_int32(), ...) for the integer
# edge types the generic float/int8 helpers do not cover.
TYPED_HELPERS = {"int16": "int16_t", "int32": "int32_t"}
MAX_LABELS = 1000


def model_prefix(name: str, explicit: bool = False) -> Safe:
    """The C prefix of every generated API name, derived from the model's name (never the
    name itself: see mcuq.project.escape). An explicit ``--name`` must already be a valid
    identifier (a silent rename would break the user's code later); a name derived from the
    model file is cleaned up."""
    prefix = c_identifier(name, lower=True, keywords=False)
    if explicit and prefix != name:
        raise MCUQError(
            f"--name '{terminal(name)}': use a C identifier (letters, digits, single underscores, not starting with a digit), e.g. {prefix}"
        )
    if prefix in C_KEYWORDS or prefix.startswith("mcuq"):
        if explicit:
            raise MCUQError(f"--name {name!r}: reserved (C/C++ keyword, Arduino entry point or mcuq's own prefix); choose another")
        prefix = code(f"{prefix}_model" if not prefix.startswith("mcuq") else f"m_{prefix}")
    return prefix


def load_labels(spec: str | None, source_name: str = "--labels") -> list[str]:
    """Class names from a text file (one per line), a JSON list, or a .npy of strings."""
    if spec is None:
        return []
    path = Path(spec)
    if not path.exists() and not path.is_symlink():
        raise MCUQError(f"{spec}: no such labels file ({source_name}); give a text file with one class name per line")
    raw = read_regular(path, f"class labels ({source_name})", TEXT_LIMIT)
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(raw.decode("utf-8"))
            if not isinstance(data, list) or not all(isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in data):
                held = "a list with entries that are not names" if isinstance(data, list) else f"a {type(data).__name__}"
                raise MCUQError(f'{spec}: the JSON holds {held}, not a list of class names; write ["cat", "dog", ...]')
            labels = [str(x) for x in data]
        elif path.suffix.lower() == ".npy":
            labels = [str(x) for x in np.load(io.BytesIO(raw), allow_pickle=False).reshape(-1)]
        else:
            labels = [ln.strip() for ln in raw.decode("utf-8").splitlines() if ln.strip()]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise MCUQError(
            f"{spec}: cannot read the class labels ({type(exc).__name__}: {str(exc)[:120]}); give one class name per line"
        ) from None
    if not labels:
        raise MCUQError(f"{spec}: no class labels in this file; give one class name per line")
    if len(labels) > MAX_LABELS:
        raise MCUQError(f"{spec}: {len(labels)} labels; mcuq embeds at most {MAX_LABELS}")
    return labels


def project_labels(labels_file: str | None, data: SampleSet | None, info: ModelInfo) -> tuple[list[str], str | None]:
    """The class names the generated API carries, and where they came from: --labels FILE, else
    the 'label_names' array of the validation .npz. Checked against the model's outputs here, so
    a wrong file fails before the backend's minutes of work."""
    labels: list[str] = []
    source: str | None = None
    if labels_file:
        labels, source = load_labels(labels_file), Path(labels_file).name
    elif data is not None and data.label_names:
        labels, source = list(data.label_names), f"label_names in {Path(data.source).name}"
    check_labels(labels, info, source or "labels")
    return labels, source


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


class ApiTensorContext(TypedDict):
    """One I/O tensor of the generated API (``api.inputs``/``api.outputs`` of the context)."""

    name: str
    ident: Safe
    shape: list[int]
    dtype: Safe
    enum: Safe
    size: int
    scale_literal: Safe
    zero_point: int


class ApiContext(TypedDict):
    """The ``api`` key of every project's template context."""

    prefix: str
    PREFIX: Safe
    ns: Safe
    runtime: Safe
    runtime_title: str
    inputs: list[ApiTensorContext]
    outputs: list[ApiTensorContext]
    typed: list[dict[str, Safe]]
    labels: list[str]
    labels_source: str
    header: Safe


def _tensor(t: TensorInfo, name: str, used: set[str]) -> ApiTensorContext:
    """One I/O tensor of the API: ``name`` is the model's text (templates escape it where they
    print it); ``ident`` is a macro suffix derived from it, unique among the model's inputs
    (or outputs)."""
    scale = t.quant.scale[0] if t.quant else 1.0
    size = int(np.prod(t.shape)) if t.shape else 1
    return {
        "name": name,
        "ident": c_identifier(name, used, upper=True, fallback="M"),
        "shape": list(t.shape),
        "dtype": code(t.dtype),
        "enum": code(DTYPE_ENUMS[t.dtype]),
        "size": size,
        "scale_literal": code(f"{float(scale)!r}f"),
        "zero_point": t.quant.zero_point[0] if t.quant else 0,
    }


def _typed_helpers(info: ModelInfo) -> list[dict[str, Safe]]:
    """One entry per (input|output, int16|int32) the model has: the typed accessors to generate."""
    out = []
    for kind, tensors, names in (("input", info.input_tensors, info.input_names), ("output", info.output_tensors, info.output_names)):
        for dtype, ctype in TYPED_HELPERS.items():
            which = [str(i) for i, t in enumerate(tensors) if t.dtype == dtype]
            if which:
                listed = c_comment(", ".join(f"{kind} {i} '{names[int(i)]}'" for i in which))
                out.append(
                    {"kind": code(kind), "dtype": code(dtype), "ctype": code(ctype), "enum": code(DTYPE_ENUMS[dtype]), "list": listed}
                )
    return out


def api_context(
    prefix: str, info: ModelInfo, runtime: str, labels: list[str], labels_source: str | None, runtime_title: str = ""
) -> ApiContext:
    """The ``api`` key of every project's template context."""
    used_in: set[str] = set()
    used_out: set[str] = set()
    prefix = model_prefix(prefix)
    return {
        "prefix": prefix,
        "PREFIX": code(prefix.upper()),
        "ns": code(f"{prefix}_mcuq"),
        "runtime": code(runtime),
        "runtime_title": runtime_title or runtime,
        "inputs": [_tensor(t, n, used_in) for t, n in zip(info.input_tensors, info.input_names)],
        "outputs": [_tensor(t, n, used_out) for t, n in zip(info.output_tensors, info.output_names)],
        "typed": _typed_helpers(info),
        "labels": list(labels),
        "labels_source": labels_source or "",
        "header": code(f"{prefix}_model.h"),
    }


def render_api(context: dict[str, Any], link: LinkIdentity) -> dict[str, str]:
    """The API headers and the validation link's files, as project paths -> text; ``link`` is
    what the runtime declares for the link's identify answer."""
    from mcuq.device.firmware import render_link

    env = environment()
    api = context["api"]
    return {
        "src/mcuq_api.h": env.get_template("api/mcuq_api.h.j2").render(**context),
        "src/mcuq_platform.h": env.get_template("api/mcuq_platform.h.j2").render(**context),
        f"src/{api['header']}": env.get_template("api/model_api.h.j2").render(**context),
        **render_link(context, link),  # the validation link (mcuq validate --device)
    }
