"""mcuq: take a trained Keras/TensorFlow model to a microcontroller as full int8, and prove
on the host that it behaves there as it did on the PC.

Pipeline, one package per stage: ``frontend`` (load + full-int8 quantization) -> ``model``
(inspected model) -> ``backends`` (``tflm`` | ``c``) -> ``project`` (templates, writer) ->
``validate`` (with ``reference``: x86 TFLite Micro, ``toolchains``: emulators, ``checks``: metrics
and report). ``deploy`` and ``validate`` orchestrate. The names below are imported lazily so ``import mcuq`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "quantize": ("mcuq.frontend.converter", "quantize"),
    "QuantizeOptions": ("mcuq.frontend.converter", "QuantizeOptions"),
    "inspect_model": ("mcuq.inspection", "inspect_model"),
    "parse_model": ("mcuq.model.info", "parse_model"),
    "deploy": ("mcuq.deploy", "deploy"),
    "DeployRequest": ("mcuq.deploy", "DeployRequest"),
    "DeployResult": ("mcuq.deploy", "DeployResult"),
    "validate_project": ("mcuq.validate", "validate_project"),
    "list_boards": ("mcuq.boards", "list_boards"),
    "get_board": ("mcuq.boards", "get_board"),
    "MCUQError": ("mcuq.common.errors", "MCUQError"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'mcuq' has no attribute {name!r}")
