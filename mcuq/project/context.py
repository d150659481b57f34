"""The runtime-independent part of every project's template context.

Each backend's ``plan`` builds it once (it holds the golden outputs, which only the plan
computes) and adds its own keys to make ``BackendPlan.context``; ``render`` uses that as is.
The templates of both runtimes can rely on everything here.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

from mcuq import __version__
from mcuq.project.api import api_context, model_prefix
from mcuq.project.escape import Safe, code, file_name
from mcuq.project.render import BANNER, c_initializer, tensor_context
from mcuq.reference.host_tflm import tflm_version

if TYPE_CHECKING:
    from mcuq.backends.base import DeployJob, Samples


class GoldenArrayContext(TypedDict):
    size: int
    init: Safe  # the values as a wrapped C initialiser, braces included


class GoldenVectorContext(TypedDict):
    inputs: list[GoldenArrayContext]
    outputs: list[GoldenArrayContext]


class GoldenContext(TypedDict):
    """The ``golden`` key of the template context: the vectors as C arrays, and reset points."""

    count: int
    source: str
    vectors: list[GoldenVectorContext]
    resets: list[bool]


def golden_context(golden_in: Samples, golden_out: Samples, source: str, resets: list[bool] | None = None) -> GoldenContext:
    def arrays(values: list[np.ndarray]) -> list[GoldenArrayContext]:
        return [{"size": int(np.asarray(v).size), "init": c_initializer(v)} for v in values]

    return {
        "count": len(golden_in),
        "source": source,
        "vectors": [{"inputs": arrays(i), "outputs": arrays(o)} for i, o in zip(golden_in, golden_out)],
        "resets": resets if resets is not None else [True] * len(golden_in),
    }


def common_context(job: DeployJob, golden_out: Samples) -> dict[str, Any]:
    """What every project template (TFLite Micro or plain C) gets."""
    info, board = job.info, job.board
    return {
        "banner": BANNER,
        "mcuq_version": code(__version__),
        "board": board,
        "env_name": file_name(board.id, fallback="board"),
        "board_file": str(board.path.name or board.id),  # names the file in a refusal; never printed
        "model_name": job.name,
        "model_size": len(info.raw),
        "model_crc32": zlib.crc32(info.raw) & 0xFFFFFFFF,
        "pio": board.platformio,
        "inputs": [tensor_context(t) for t in info.input_tensors],
        "outputs": [tensor_context(t) for t in info.output_tensors],
        "golden": golden_context(job.golden_in, golden_out, job.golden_source, job.golden_resets),
        "state": code(job.quantized.state),
        "tflm_version": code(f"tflite-micro {tflm_version()}"),
        "quant": job.quantized.manifest_entry(),
        "api": api_context(job.prefix or model_prefix(job.name), info, job.runtime, list(job.labels), job.labels_source, job.runtime_title),
    }
