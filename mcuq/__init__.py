"""mcuq: take a trained Keras/TensorFlow model to a microcontroller as full int8, and prove
on the host that it behaves there as it did on the PC.

Pipeline, one module per stage: ``converter`` (full-int8 quantization) -> ``model_info``
(inspected model) -> backend (``backends.tflm``) -> ``render``/``writer`` (templates) ->
``validate``. The names below are imported lazily so ``import mcuq`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "quantize": ("mcuq.converter", "quantize"),
    "QuantizeOptions": ("mcuq.converter", "QuantizeOptions"),
    "inspect_model": ("mcuq.inspection", "inspect_model"),
    "parse_model": ("mcuq.model_info", "parse_model"),
    "deploy": ("mcuq.deploy", "deploy"),
    "DeployRequest": ("mcuq.deploy", "DeployRequest"),
    "validate_project": ("mcuq.validate", "validate_project"),
    "list_boards": ("mcuq.boards", "list_boards"),
    "get_board": ("mcuq.boards", "get_board"),
    "MCUQError": ("mcuq.errors", "MCUQError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mcuq' has no attribute {name!r}")
