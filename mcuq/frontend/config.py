"""``mcuq.toml``: the project config that lets ``mcuq deploy --board esp32`` run without a
MODEL argument. Paths in it are relative to the file; command-line options win."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcuq.common.compat import tomllib
from mcuq.common.errors import MCUQError
from mcuq.common.files import TEXT_LIMIT, read_regular_text

KEYS: dict[str, type | tuple[type, ...]] = {
    "model": str,
    "calibration": str,
    "data": str,
    "board": str,
    "board_file": str,
    "out": str,
    "runtime": str,
    "arena_size": int,
    "io": str,
    "activations": str,
    "per_channel": (str, bool),
    "calibration_samples": int,
    "seed": int,
    "image_scale": str,
    "golden": int,
    "tflm_source": str,
    "name": str,
    "labels": str,
}  # plus the deploy options the runtimes declare (config_keys)
PATH_KEYS = {"model", "calibration", "data", "board_file", "out", "labels"}
POSITIVE_KEYS = {"arena_size", "calibration_samples", "golden"}
NON_NEGATIVE_KEYS = {"seed"}
CHOICES: dict[str, tuple[Any, ...]] = {
    "io": ("int8", "uint8", "float32"),
    "activations": ("int8", "int16"),
    "per_channel": ("auto", "all", "none", True, False),
    "image_scale": ("0..1", "-1..1", "0..255"),
}


def _choices(key: str) -> tuple[Any, ...] | None:
    """Allowed values of a key (the runtime list comes from the backend registry)."""
    from mcuq.backends.registry import backend_names, declared_options

    if key == "runtime":
        return tuple(backend_names())
    declared = {option.name: option.choices for _, option in declared_options("deploy") if option.choices}
    return CHOICES.get(key) or declared.get(key)


DEFAULT_CONFIG = """\
# mcuq project config: `mcuq deploy` reads this when no MODEL is given.
# Paths are relative to this file. Command-line options override every key.

model = "{model}"                     # .keras, .h5, SavedModel folder or int8 .tflite
calibration = "calibration.npy"     # .npy/.npz/.csv/image folder/module:function/"random"
# data = "val.npz"                  # validation data: inputs (+ 'labels') for accuracy checks
board = "{board}"                       # see `mcuq boards`
# board_file = "my_board.toml"      # your own board, same schema as mcuq's boards/*.toml
# out = "build/{board}-model"          # output folder
# runtime = "tflm"                  # tflm | c
# arena_size = 0                    # bytes; overrides the planned arena
# io = "int8"                       # int8 | uint8 | float32: dtype of the model's edges
# activations = "int8"              # int8 | int16 (16x8 mode)
# per_channel = "auto"              # auto | all | none (auto: per-tensor Dense unless it costs accuracy)
# calibration_samples = 300
# seed = 0
# image_scale = "0..1"              # 0..1 | -1..1 | 0..255 for image-folder calibration
# golden = 4                        # golden vectors checked at boot
# name = "kws"                      # C prefix of the generated API: kws_init(), kws_model.h
# labels = "labels.txt"             # class names, one per line (generated label table, report)
# avr_kernels = "generated"         # generated | generic: AVR assembly written for this model's layers, or shared kernels only
"""


ConfigValues = dict[str, "str | int | bool"]  # mcuq.toml's scalar values, checked against KEYS


def config_keys() -> dict[str, type | tuple[type, ...]]:
    """Every key mcuq.toml accepts: mcuq's own, then the deploy options the runtimes declare."""
    from mcuq.backends.registry import declared_options

    return {**KEYS, **{option.name: option.kind for _, option in declared_options("deploy")}}


def _path_keys() -> set[str]:
    from mcuq.backends.registry import declared_options

    return PATH_KEYS | {option.name for _, option in declared_options("deploy") if option.path}


def load_config(path: str | Path) -> ConfigValues:
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise MCUQError(f"{path}: no such config file; give a MODEL, or run 'mcuq init' to write one")
    text = read_regular_text(path, "the project config", TEXT_LIMIT)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MCUQError(f"{path}: not valid TOML ({exc})") from None
    keys = config_keys()
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise MCUQError(f"{path}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(keys)}")
    for key, value in data.items():
        expected = keys[key]
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            names = "/".join(t.__name__ for t in expected) if isinstance(expected, tuple) else expected.__name__
            raise MCUQError(f"{path}: '{key}' must be {names}, got {value!r}")
        choices = _choices(key)
        if choices is not None and value not in choices:
            raise MCUQError(f"{path}: '{key}' = {value!r} is not one of {', '.join(map(repr, choices))}")
        if key in POSITIVE_KEYS and isinstance(value, int) and value < 1:
            raise MCUQError(f"{path}: '{key}' = {value} must be at least 1")
        if key in NON_NEGATIVE_KEYS and isinstance(value, int) and not 0 <= value < 2**32:
            raise MCUQError(f"{path}: '{key}' = {value} must be between 0 and {2**32 - 1}")
    base = path.resolve().parent
    paths = _path_keys()
    return {k: (str(base / v) if k in paths and v != "random" and ":" not in v else v) for k, v in data.items()}


def write_default_config(path: str | Path, board: str = "esp32", model: str = "model.keras") -> Path:
    path = Path(path)
    if path.exists() or path.is_symlink():
        raise MCUQError(f"{path} exists; mcuq does not overwrite it")
    parent = path.parent
    if not parent.exists():
        raise MCUQError(f"{path}: the folder {parent} does not exist; create it first or give another --path")
    if not parent.is_dir():
        raise MCUQError(f"{path}: {parent} is a file, not a folder; give another --path")
    try:
        with path.open("x", encoding="utf-8") as f:  # 'x': never replaces a file that appeared meanwhile
            f.write(DEFAULT_CONFIG.format(board=board, model=model))
    except OSError as exc:
        raise MCUQError(f"{path}: cannot write it ({exc.strerror}); give another --path") from None
    return path
