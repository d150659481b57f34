"""Golden vectors: stored once as data (``mcuq/golden.json``), proven equal to the C arrays.

``validate`` reads the golden vectors from the hashed data file, never by parsing C: the
generated-files check proves every file is what mcuq wrote, and ``prove_sources`` proved at
render time that the C arrays (both runtimes use one naming) hold exactly these values. The
JSON is written deterministically (sorted, no timestamps) so regenerating changes nothing.

The golden outputs themselves must be a function of the golden inputs: ``reproducible_golden``
computes them twice, in two fresh x86 TFLite Micro interpreters (two child processes), the
second after a warm-up invoke and in reverse order, so a model that reads arena memory nothing
wrote sees other leftovers and is caught instead of shipping whatever the arena held.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mcuq.common.errors import MCUQError, ModelLoadError, ValidationFailed
from mcuq.model.info import NUMPY_DTYPES, ModelInfo, TensorInfo, quantize_array
from mcuq.project.manifest import relative_source
from mcuq.project.records import GoldenJSON, GoldenTensorJSON, GoldenVectorJSON
from mcuq.project.render import GOLDEN_ARRAY_PREFIX
from mcuq.reference.host_tflm import run_tflm

if TYPE_CHECKING:
    from mcuq.frontend.converter import QuantizedModel
    from mcuq.frontend.samples import SampleSet

GOLDEN_DATA = "mcuq/golden.json"
# The arrays as golden_array_name (mcuq.project.render) names them in every runtime's templates
# (a whole identifier: a weight array named after a layer called 'mcuq_golden_in_0_0' is not one).
GOLDEN_RE = re.compile(
    r"\b" + GOLDEN_ARRAY_PREFIX + r"_(?P<kind>in|out)_(?P<vec>\d+)_(?P<idx>\d+)\[(?P<n>\d+)\][^=;]*=\s*\{(?P<body>[^}]*)\}"
)
Samples = list[list[np.ndarray]]


def golden_data(golden_in: Samples, golden_out: Samples, resets: list[bool] | None = None) -> bytes:
    """The golden vectors as deterministic JSON (dtype, shape, values per tensor). ``resets``:
    before which vectors the model's state is reset (mcuq.model.state); stored only for a model
    whose vectors form sequences, so stateless projects keep their bytes."""

    def tensors(values: list[np.ndarray]) -> list[GoldenTensorJSON]:
        return [
            {"dtype": str(np.asarray(v).dtype), "shape": list(np.asarray(v).shape), "values": np.asarray(v).reshape(-1).tolist()}
            for v in values
        ]

    vectors: list[GoldenVectorJSON] = [{"inputs": tensors(i), "outputs": tensors(o)} for i, o in zip(golden_in, golden_out)]
    data: GoldenJSON = {"vectors": vectors}
    if resets is not None and not all(resets):
        data["resets"] = [bool(r) for r in resets]
    return (json.dumps(data, separators=(",", ":")) + "\n").encode()


def golden_resets(project: Path, count: int) -> list[bool]:
    """Reset points of the project's golden vectors (every vector when none are stored)."""
    try:
        resets = json.loads((project / GOLDEN_DATA).read_text(encoding="utf-8")).get("resets")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        resets = None
    if not isinstance(resets, list) or len(resets) != count:
        return [True] * count
    return [bool(r) for r in resets]


def _perturbed(sample: list[np.ndarray]) -> list[np.ndarray]:
    """Other values of the same dtype and shape (bitwise complement; negated floats), for a warm-up
    invoke that leaves different activations in the arena than any golden input does."""
    out = []
    for x in sample:
        a = np.asarray(x)
        out.append(np.bitwise_not(a) if np.issubdtype(a.dtype, np.integer) else (1.0 - a).astype(a.dtype))
    return out


def reproducible_golden(info: ModelInfo, golden_in: Samples, arena: int, source: str, resets: list[bool] | None = None) -> Samples:
    """The golden outputs of x86 TFLite Micro, refused in one line unless a second fresh
    interpreter gives the same bits: independent vectors run again after a warm-up invoke and
    in reverse order; vectors that form sequences (``resets`` with a False: a model with state,
    mcuq.model.state) run again in their own order with the same resets. Costs one more child
    run over the golden inputs."""
    first = run_tflm(info.raw, golden_in, arena, len(info.outputs), resets=resets).outputs
    if resets is not None and not all(resets):
        second = run_tflm(info.raw, golden_in, arena, len(info.outputs), resets=resets).outputs
    else:
        second = run_tflm(info.raw, golden_in[::-1], arena, len(info.outputs), warmup=[_perturbed(golden_in[-1])]).outputs[::-1]
    for v, (a, b) in enumerate(zip(first, second)):
        for i, (x, y) in enumerate(zip(a, b)):
            if not np.array_equal(x, y):
                name = info.output_names[i] if i < len(info.output_names) else str(i)
                raise ModelLoadError(
                    f"{source}: golden outputs differ between two runs of x86 TFLite Micro (output {i} '{name}', "
                    f"golden vector {v}): the model reads memory nothing wrote; re-export it with the TFLite converter"
                )
    return first


def golden_from_project(project: Path, info: ModelInfo) -> tuple[Samples, Samples]:
    """(inputs, outputs) per golden vector, from the project's hashed data file."""
    path = project / GOLDEN_DATA
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        vectors = data["vectors"]
        inputs = [[_tensor(t, spec) for t, spec in zip(v["inputs"], info.input_tensors, strict=True)] for v in vectors]
        outputs = [[_tensor(t, spec) for t, spec in zip(v["outputs"], info.output_tensors, strict=True)] for v in vectors]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise ValidationFailed(
            f"{GOLDEN_DATA}: missing or malformed ({type(exc).__name__}); regenerate with 'mcuq deploy --force'"
        ) from None
    if not inputs:
        raise ValidationFailed(f"{GOLDEN_DATA}: no golden vectors; regenerate with 'mcuq deploy --force'")
    return inputs, outputs


@dataclass(frozen=True)
class ProjectGolden:
    """A project's golden vectors as recorded in its hashed data file, with their reset points."""

    inputs: Samples
    outputs: Samples
    resets: list[bool]


def read_golden(project: Path, info: ModelInfo) -> ProjectGolden:
    """The project's golden vectors with their reset points (every check that replays them needs
    both, read from one file); raises :class:`ValidationFailed` when the file is missing or malformed."""
    inputs, outputs = golden_from_project(project, info)
    return ProjectGolden(inputs, outputs, golden_resets(project, len(inputs)))


def golden_or_problem(project: Path, info: ModelInfo) -> ProjectGolden | str:
    """The project's golden vectors, or the one line that says why they cannot be read: for the
    board check, where that is a failed check, not an error that would hide the host checks."""
    try:
        return read_golden(project, info)
    except MCUQError as exc:
        return str(exc)


def _tensor(record: GoldenTensorJSON, spec: TensorInfo) -> np.ndarray:
    if record["dtype"] != spec.dtype or tuple(record["shape"]) != spec.shape:
        raise ValueError(f"tensor {spec.name}: {record['dtype']}{record['shape']} is not {spec.dtype}{list(spec.shape)}")
    return np.array(record["values"], dtype=NUMPY_DTYPES[spec.dtype]).reshape(spec.shape)


def _parse_values(body: str, dtype: str) -> np.ndarray:
    tokens = [tok.rstrip("f") for tok in re.split(r"[\s,]+", body) if tok]
    return np.array([float(t) for t in tokens] if dtype == "float32" else [int(t) for t in tokens], dtype=NUMPY_DTYPES[dtype])


def prove_sources(files: dict[str, str | bytes], info: ModelInfo, golden_in: Samples, golden_out: Samples) -> int:
    """At render time, once: every golden C array in the rendered files equals the golden data.
    Returns how many arrays were checked (a project without any is an internal error too)."""
    expected = {("in", v, i): a for v, s in enumerate(golden_in) for i, a in enumerate(s)}
    expected.update({("out", v, i): a for v, s in enumerate(golden_out) for i, a in enumerate(s)})
    checked = 0
    for path, text in files.items():
        if not isinstance(text, str):
            continue
        for m in GOLDEN_RE.finditer(text):
            key = (m.group("kind"), int(m.group("vec")), int(m.group("idx")))
            want = expected.get(key)
            got = _parse_values(m.group("body"), str(want.dtype) if want is not None else "int32")
            if want is None or not np.array_equal(got, np.asarray(want).reshape(-1)):
                raise MCUQError(f"internal error: {path} renders golden array {key} differently from the golden data; please report this")
            checked += 1
    if checked < len(expected):
        raise MCUQError(f"internal error: the rendered project holds {checked} of {len(expected)} golden arrays; please report this")
    return checked


def choose_golden_inputs(q: QuantizedModel, data: SampleSet | None, count: int, seed: int, out_dir: Path) -> tuple[Samples, str]:
    """The golden inputs and where they came from: validation samples, else calibration samples,
    else random integers (said so), chosen by seed so a rerun picks the same vectors."""
    info = q.info
    source = data if data is not None else q.calibration
    if source is not None:
        n = min(count, source.count)
        index = np.sort(np.random.default_rng(seed).choice(source.count, n, replace=False))
        samples = [[quantize_array(x, t) for x, t in zip(source.sample_for(int(i), info.input_names), info.input_tensors)] for i in index]
        return samples, f"{'validation data' if data is not None else 'calibration set'} {relative_source(source.source, out_dir)}"
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(count):
        sample = []
        for t in info.input_tensors:
            info_t = np.iinfo(np.dtype(t.dtype)) if t.dtype != "float32" else None
            if info_t is None:
                sample.append(rng.uniform(-1, 1, t.shape).astype(np.float32))
            else:
                sample.append(rng.integers(info_t.min, info_t.max + 1, t.shape).astype(t.dtype))
        samples.append(sample)
    return samples, "random integer inputs (no calibration or validation data given)"


def golden_files(
    rendered: dict[str, str | bytes], info: ModelInfo, golden_in: Samples, golden_out: Samples, resets: list[bool] | None = None
) -> dict[str, bytes]:
    """The hashed data file validate reads the golden vectors from (with their reset points), after
    proving once, here, that the rendered C arrays hold exactly the same values."""
    prove_sources(rendered, info, golden_in, golden_out)
    return {GOLDEN_DATA: golden_data(golden_in, golden_out, resets)}
