"""Calibration and validation data: the samples that set int8 ranges and prove accuracy.

One loader serves calibration (``quantize``/``deploy``) and validation (``validate``):
``.npy``, ``.npz`` (one array per input name), a folder of images, a CSV for 1-D inputs,
``module:function``, or the explicit ``random``. Every problem is reported with the file,
the input name and the expected versus given shape, before TensorFlow is touched.
"""

from __future__ import annotations

import importlib
import io
import itertools
import sys
from collections.abc import Iterable, Sized
from pathlib import Path

import numpy as np

from mcuq.common.errors import CalibrationError, MCUQError
from mcuq.common.files import DATA_LIMIT, IMAGE_LIMIT, read_regular, regular_file
from mcuq.common.isolation import mark_stage
from mcuq.frontend.samples import InputSpec, SampleSet
from mcuq.model.info import ModelInfo

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}
IMAGE_SCALES = {"0..1": (1 / 255.0, 0.0), "-1..1": (2 / 255.0, -1.0), "0..255": (1.0, 0.0)}
DEFAULT_SAMPLES = 300
MAX_FUNCTION_SAMPLES = 100_000  # a generator read without a sample limit (validation data) stops here


def load_samples(
    spec: str,
    inputs: list[InputSpec],
    max_samples: int | None = DEFAULT_SAMPLES,
    seed: int = 0,
    image_scale: str = "0..1",
    what: str = "calibration data",
) -> SampleSet:
    """Load, check and (deterministically) subsample data for ``inputs``."""
    if spec == "random":
        data = _random(inputs, max_samples or DEFAULT_SAMPLES, seed)
    elif is_function_spec(spec):
        data = _from_function(spec, inputs, max_samples)
    else:
        path = Path(spec)
        if not path.exists():
            raise CalibrationError(f"{spec}: no such file or folder ({what}); pass a .npy, .npz, .csv, image folder or module:function")
        if path.is_dir():
            data = _from_images(path, inputs, image_scale)
        elif path.suffix.lower() in (".npy", ".npz", ".csv"):
            regular_file(path, what, DATA_LIMIT, CalibrationError)  # a FIFO or /dev/zero: refused before reading
            data = {".npy": _from_npy, ".npz": _from_npz, ".csv": _from_csv}[path.suffix.lower()](path, inputs)
        else:
            raise CalibrationError(
                f"{spec}: unknown {what} format '{path.suffix}'; use .npy, .npz, .csv, an image folder or module:function"
            )
    _check(data, inputs, what)
    if max_samples is not None and data.count > max_samples:
        index = np.sort(np.random.default_rng(seed).choice(data.count, max_samples, replace=False))
        data = _subset(data, index)
        data.notes.append(f"{max_samples} samples chosen with seed {seed}")
    return data


def is_function_spec(spec: str) -> bool:
    """``module:function`` (Python code mcuq would import and call), not a file or folder."""
    return spec != "random" and ":" in spec and not Path(spec).exists() and not spec.lower().endswith((".npy", ".npz", ".csv"))


def _random(inputs: list[InputSpec], n: int, seed: int) -> SampleSet:
    rng = np.random.default_rng(seed)
    arrays = {i.name: rng.uniform(-1.0, 1.0, size=(n, *i.shape)).astype(np.float32) for i in inputs}
    return SampleSet(arrays, "random", random=True, notes=["RANDOM calibration: uniform [-1, 1], accuracy unverified"])


def _one_input(path: Path, inputs: list[InputSpec], fmt: str) -> InputSpec:
    if len(inputs) != 1:
        names = ", ".join(i.name for i in inputs)
        raise CalibrationError(
            f"{path}: the model has {len(inputs)} inputs ({names}); a {fmt} holds one; use a .npz with one array per input name"
        )
    return inputs[0]


def _from_npy(path: Path, inputs: list[InputSpec]) -> SampleSet:
    spec = _one_input(path, inputs, ".npy")
    try:
        array = np.load(io.BytesIO(read_regular(path, ".npy data", DATA_LIMIT, CalibrationError)), allow_pickle=False)
    except CalibrationError:
        raise
    except Exception as exc:  # noqa: BLE001 - numpy raises many types for bad files
        raise CalibrationError(f"{path}: cannot read as .npy ({exc})") from None
    return SampleSet({spec.name: array}, str(path))


def _from_npz(path: Path, inputs: list[InputSpec]) -> SampleSet:
    try:
        with np.load(io.BytesIO(read_regular(path, ".npz data", DATA_LIMIT, CalibrationError)), allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except CalibrationError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise CalibrationError(f"{path}: cannot read as .npz ({exc})") from None
    labels = arrays.pop("labels", arrays.pop("y_true", None))
    names = arrays.pop("label_names", arrays.pop("class_names", None))
    label_names = [str(n) for n in names.reshape(-1)] if names is not None else []
    chosen: dict[str, np.ndarray] = {}
    for spec in inputs:
        if spec.name in arrays:
            chosen[spec.name] = arrays.pop(spec.name)
        elif len(inputs) == 1 and "x" in arrays:
            chosen[spec.name] = arrays.pop("x")
        elif len(inputs) == 1 and len(arrays) == 1:
            chosen[spec.name] = arrays.pop(next(iter(arrays)))
        else:
            raise CalibrationError(
                f"{path}: no array named '{spec.name}' (has: {', '.join(sorted(arrays)) or 'nothing'}); "
                f"name one array per model input: {', '.join(i.name for i in inputs)}"
            )
    targets = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray)}
    return SampleSet(chosen, str(path), labels=labels, targets=targets, label_names=label_names)


def _from_csv(path: Path, inputs: list[InputSpec]) -> SampleSet:
    spec = _one_input(path, inputs, "CSV")
    if len(spec.shape) != 1:
        raise CalibrationError(f"{path}: CSV works for 1-D inputs; input '{spec.name}' has shape {spec.shape}; use .npy or .npz")
    try:
        text = read_regular(path, "CSV data", DATA_LIMIT, CalibrationError).decode("utf-8", errors="replace")
        lines = [ln for ln in text.splitlines() if ln.strip()]
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot read it ({exc.strerror})") from None
    rows = []
    for n, line in enumerate(lines, 1):
        cells = [c.strip() for c in line.split(",")]
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            if n == 1:
                continue  # a header row
            raise CalibrationError(f"{path}:{n}: not a number in '{line[:60]}'") from None
    if not rows:
        raise CalibrationError(f"{path}: no data rows; write one sample of {spec.shape[0]} comma-separated numbers per line")
    widths = {len(r) for r in rows}
    if len(widths) > 1:
        raise CalibrationError(f"{path}: rows have different lengths {sorted(widths)}; every row is one sample of {spec.shape[0]} values")
    return SampleSet({spec.name: np.array(rows, dtype=np.float32).reshape(len(rows), -1)}, str(path))


def _from_images(folder: Path, inputs: list[InputSpec], image_scale: str) -> SampleSet:
    spec = _one_input(folder, inputs, "image folder")
    if len(spec.shape) != 3 or spec.shape[2] not in (1, 3):
        raise CalibrationError(f"{folder}: an image folder needs an image input (H, W, 1|3); input '{spec.name}' has shape {spec.shape}")
    if image_scale not in IMAGE_SCALES:
        raise CalibrationError(f"unknown image scaling '{image_scale}'; use one of {', '.join(IMAGE_SCALES)}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise CalibrationError(f"{folder}: no PNG/JPEG/BMP images in this folder")
    from PIL import Image

    h, w, c = spec.shape
    mul, add = IMAGE_SCALES[image_scale]
    images = []
    for f in files:
        raw = read_regular(f, "a calibration image", IMAGE_LIMIT, CalibrationError)
        try:
            with Image.open(io.BytesIO(raw)) as img:
                pixels = img.convert("L" if c == 1 else "RGB").resize((w, h), Image.Resampling.BILINEAR)
                images.append(np.asarray(pixels, dtype=np.float32).reshape(h, w, c) * mul + add)
        except Exception:  # noqa: BLE001 - PIL raises several types
            raise CalibrationError(f"{f}: unreadable image; remove it or replace it with a valid PNG/JPEG/BMP") from None
    note = f"{len(files)} images resized to {w}x{h} ({'gray' if c == 1 else 'RGB'}), pixels scaled to {image_scale}"
    return SampleSet({spec.name: np.stack(images)}, str(folder), notes=[note])


def _from_function(spec: str, inputs: list[InputSpec], max_samples: int | None) -> SampleSet:
    """Samples from ``module:function``. A list is subsampled like any data; a generator is read
    for at most ``max_samples`` items (an endless generator must not eat the machine's memory)."""
    module_name, _, func_name = spec.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    mark_stage(f"calibration function {spec}")  # a segfault or exit in user code is named as such
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        samples: Iterable[object] = func()
        if not isinstance(samples, Sized):
            samples = itertools.islice(samples, max_samples or MAX_FUNCTION_SAMPLES)
        collected = [_sample_as_list(s, inputs, spec) for s in samples]
        mark_stage(f"checking the samples of {spec}")
    except Exception as exc:
        if isinstance(exc, CalibrationError):
            raise
        raise CalibrationError(f"{spec}: calling the calibration function failed ({type(exc).__name__}: {exc})") from None
    if not collected:
        raise CalibrationError(f"{spec}: the function returned zero samples")
    arrays = {spec_i.name: np.stack([s[k] for s in collected]) for k, spec_i in enumerate(inputs)}
    return SampleSet(arrays, spec)


def _sample_as_list(sample: object, inputs: list[InputSpec], spec: str) -> list[np.ndarray]:
    if isinstance(sample, dict):
        return [np.asarray(sample[i.name]) for i in inputs]
    if isinstance(sample, (list, tuple)) and len(inputs) > 1:
        return [np.asarray(s) for s in sample]
    arr = np.asarray(sample)
    if arr.shape == (1, *inputs[0].shape):
        arr = arr[0]
    return [arr]


def classifier_classes(info: ModelInfo) -> list[int]:
    """Class counts of the outputs labels can apply to (batch x classes, more than one class)."""
    return [int(t.shape[1]) for t in info.output_tensors if len(t.shape) == 2 and t.shape[1] > 1]


def _subset(data: SampleSet, index: np.ndarray) -> SampleSet:
    """The samples at ``index`` (a calibration subsample), with their labels and targets."""
    labels = data.labels[index] if data.labels is not None else None
    targets = {k: v[index] for k, v in data.targets.items()}
    return SampleSet({k: v[index] for k, v in data.arrays.items()}, data.source, data.random, labels, targets, data.notes, data.label_names)


def load_validation_data(path: str, info: ModelInfo, seed: int, image_scale: str, labels: str | None = None) -> SampleSet:
    """The validation data for ``info``'s inputs, every sample (deploy and validate read it alike).

    ``labels``: a .npy of one integer label per sample (validate's ``--labels``), replacing the
    file's own; labels out of the classifier's range are refused, as they would make every
    accuracy meaningless."""
    specs = [InputSpec(n, t.shape[1:]) for n, t in zip(info.input_names, info.input_tensors)]
    samples = load_samples(path, specs, max_samples=None, seed=seed, image_scale=image_scale, what="validation data")
    if labels is not None:
        try:
            values = np.load(io.BytesIO(read_regular(labels, "validation labels (--labels)", DATA_LIMIT)), allow_pickle=False).reshape(-1)
        except (OSError, ValueError) as exc:
            raise MCUQError(f"{labels}: cannot read the labels as .npy ({exc})") from None
        if len(values) != samples.count:
            raise MCUQError(f"{labels}: {len(values)} labels for {samples.count} validation samples; give one integer label per sample")
        samples.labels = values
    check_label_range(samples, classifier_classes(info), labels)
    return samples


def check_label_range(data: SampleSet, classes: list[int], labels_source: str | None = None) -> None:
    """Labels must name a class of the classifier output (0..C-1): a label of 99 for 10 classes
    would count as wrong for every model and report a meaningless accuracy, so it is refused.
    ``classes``: the class counts of the model's classifier outputs (none: labels are unused)."""
    if data.labels is None or not classes:
        return
    labels = np.asarray(data.labels).reshape(-1)
    top = max(classes)
    bad = np.flatnonzero((labels < 0) | (labels >= top))
    if len(bad):
        i = int(bad[0])
        raise CalibrationError(
            f"{labels_source or data.source}: label {labels[i]} of sample {i} is out of range for the model's {top} classes "
            f"(0..{top - 1}){f', and {len(bad) - 1} more' if len(bad) > 1 else ''}; fix the labels or use the matching model"
        )


def _check(data: SampleSet, inputs: list[InputSpec], what: str) -> None:
    for spec in inputs:
        array = data.arrays[spec.name]
        if array.dtype.kind not in "fiu":
            raise CalibrationError(f"{data.source}: {what} for input '{spec.name}' has dtype {array.dtype}; expected numbers (float32)")
        given = tuple(array.shape)  # as the user gave it: the error names this, not the batch axis mcuq adds
        if array.ndim == len(spec.shape):
            array = array[None]
        if tuple(array.shape[1:]) != spec.shape:
            raise CalibrationError(
                f"{data.source}: {what} for input '{spec.name}' has shape {given}, "
                f"expected (N, {', '.join(map(str, spec.shape))}{',' if len(spec.shape) == 1 else ''})"
            )
        if len(array) == 0:
            raise CalibrationError(f"{data.source}: {what} for input '{spec.name}' has zero samples")
        bad = int(np.count_nonzero(~np.isfinite(array.astype(np.float64))))
        if bad:
            raise CalibrationError(f"{data.source}: {what} for input '{spec.name}' has {bad} NaN/Inf values; clean the data first")
        data.arrays[spec.name] = array.astype(np.float32)
    counts = {len(a) for a in data.arrays.values()}
    if len(counts) > 1:
        raise CalibrationError(f"{data.source}: inputs have different sample counts {sorted(counts)}")
    if data.labels is not None:
        labels = np.asarray(data.labels)
        if labels.ndim == 0 or len(labels) != data.count or labels.dtype.kind not in "iub":
            size = "a scalar" if labels.ndim == 0 else f"{len(labels)} {labels.dtype} values"
            raise CalibrationError(
                f"{data.source}: 'labels' holds {size} for {data.count} samples; give one integer class label per sample"
            )
