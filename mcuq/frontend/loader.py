"""Model front end: recognise and load Keras 3, legacy Keras 2 .h5, SavedModel and .tflite.

It answers two questions for the converter: what the model's inputs are (names and
shapes without batch) and how to obtain a batch-1 TensorFlow graph from it. Loading
failures become one-line errors that name the file.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcuq.common.console import SILENT, Console
from mcuq.common.errors import ModelLoadError
from mcuq.common.files import MODEL_LIMIT, read_regular, regular_file
from mcuq.frontend.samples import InputSpec
from mcuq.frontend.tf import import_tensorflow

KERAS_SUFFIXES = {".keras"}
H5_SUFFIXES = {".h5", ".hdf5"}


@dataclass
class LoadedModel:
    """A model ready for conversion; ``kind`` is keras3 | tf_keras | saved_model | tflite."""

    path: Path
    kind: str
    inputs: list[InputSpec]
    model: Any = None  # keras / tf_keras model object
    tflite: bytes | None = None
    notes: list[str] = field(default_factory=list)


def detect_kind(path: Path) -> str:
    """Classify the path without importing TensorFlow (cheap checks and clear errors)."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or folder; pass a .keras, .h5, SavedModel folder or .tflite")
    if path.is_dir():
        for name in ("saved_model.pb", "saved_model.pbtxt"):
            if (path / name).exists() or (path / name).is_symlink():
                regular_file(path / name, "a SavedModel's graph", MODEL_LIMIT, ModelLoadError)
                return "saved_model"
        raise ModelLoadError(f"{path}: folder is not a SavedModel (no saved_model.pb inside); pass the SavedModel folder itself")
    regular_file(path, "a model file", MODEL_LIMIT, ModelLoadError)  # a FIFO or /dev/zero must not hang or fill memory
    suffix = path.suffix.lower()
    if suffix == ".tflite":
        return "tflite"
    if suffix in KERAS_SUFFIXES:
        if not zipfile.is_zipfile(path):
            raise ModelLoadError(f"{path}: not a valid .keras archive (truncated or not a Keras 3 file); re-save it with model.save()")
        return "keras"
    if suffix in H5_SUFFIXES:
        return "h5"
    raise ModelLoadError(f"{path}: unknown model format '{suffix}'; pass a .keras, .h5, SavedModel folder or .tflite")


def model_display_name(model: Path) -> str:
    """The model's name for folders and the C prefix: the file's stem, or its folder's name when
    the file is only called model/saved_model (a SavedModel folder names itself)."""
    stem = model.stem if model.is_file() else model.name
    return model.resolve().parent.name if stem in ("model", "saved_model") else stem


def load_model(path: str | Path, console: Console = SILENT) -> LoadedModel:
    path = Path(path)
    kind = detect_kind(path)
    if kind == "tflite":
        return LoadedModel(path, "tflite", [], tflite=read_regular(path, "a model file", MODEL_LIMIT, ModelLoadError))
    if kind == "saved_model":
        return _load_saved_model(path)
    import_tensorflow()
    return _load_keras(path, kind, console)


def _keras_inputs(model: Any, path: Path) -> list[InputSpec]:
    specs = []
    for i, tensor in enumerate(model.inputs):
        shape = tuple(tensor.shape[1:])
        if any(d is None for d in shape):
            raise ModelLoadError(
                f"{path}: input '{getattr(tensor, 'name', i)}' has an undefined dimension {tuple(tensor.shape)}; "
                "give the Keras Input a fixed shape (only the batch may be None)"
            )
        name = getattr(tensor, "name", None) or f"input_{i}"
        specs.append(InputSpec(str(name).split(":")[0], tuple(int(d) for d in shape)))
    return specs


def _load_keras(path: Path, kind: str, console: Console) -> LoadedModel:
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
        return LoadedModel(path, "keras3", _keras_inputs(model, path), model=model)
    except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad files
        first_error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        if kind != "h5":
            raise ModelLoadError(f"{path}: Keras cannot load this file ({first_error[:200]})") from None
    try:
        import tf_keras

        model = tf_keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(
            f"{path}: neither Keras 3 nor tf_keras can load this .h5 ({type(exc).__name__}: {str(exc)[:160]}); "
            "re-save it from the Keras version that trained it"
        ) from None
    note = f"{path.name} is a legacy Keras 2 file that Keras 3 rejects ({first_error[:120]}); loaded it with tf_keras"
    console.warn(note)
    return LoadedModel(path, "tf_keras", _keras_inputs(model, path), model=model, notes=[note])


def _check_saved_model_files(path: Path) -> None:
    """A SavedModel whose graph does not parse is named before TensorFlow prints 50 lines about it."""
    from tensorflow.core.protobuf import saved_model_pb2

    pb = path / "saved_model.pb"
    if pb.exists():
        try:
            saved_model_pb2.SavedModel().ParseFromString(read_regular(pb, "a SavedModel's graph", MODEL_LIMIT, ModelLoadError))
        except ModelLoadError:
            raise
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError and friends
            raise ModelLoadError(
                f"{pb}: corrupt SavedModel graph ({type(exc).__name__}: {str(exc)[:120]}); export the model again"
            ) from None


def _load_saved_model(path: Path) -> LoadedModel:
    """Read input names/shapes from the serving signature; old SavedModels may not restore."""
    tf = import_tensorflow()
    _check_saved_model_files(path)
    try:
        loaded = tf.saved_model.load(str(path))
        sig = loaded.signatures["serving_default"]
        _, kwargs = sig.structured_input_signature
        specs = [InputSpec(name, tuple(int(d) if d is not None else -1 for d in spec.shape[1:])) for name, spec in kwargs.items()]
        return LoadedModel(path, "saved_model", specs, model=loaded)
    except Exception as exc:  # noqa: BLE001 - old TF2.x SavedModels fail here but still convert
        variables = path / "variables"
        if not (variables / "variables.index").is_file():
            missing = "no variables/ folder" if not variables.is_dir() else "no variables/variables.index"
            raise ModelLoadError(
                f"{path}: {missing} (the weights) and TensorFlow cannot load it without ({type(exc).__name__}); "
                "copy the whole SavedModel folder, variables/ included"
            ) from None
        note = f"tf.saved_model.load could not restore {path.name} ({type(exc).__name__}); converting it directly"
        return LoadedModel(path, "saved_model", [], notes=[note])
