"""Quiet, lazy TensorFlow import.

TensorFlow takes seconds to import and prints C++ log noise; only the stages that need
it import it, and its logging is muted unless the user asked for ``--verbose``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

_VERBOSE = False


def set_verbose(verbose: bool) -> None:
    global _VERBOSE
    _VERBOSE = verbose


def import_tensorflow() -> ModuleType:
    if not _VERBOSE:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
        os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
        os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
    with native_output_captured(not _VERBOSE):
        import tensorflow as tf

    if not _VERBOSE:
        tf.get_logger().setLevel("ERROR")
        try:
            import absl.logging

            absl.logging.set_verbosity(absl.logging.ERROR)
        except ImportError:  # pragma: no cover - absl ships with TensorFlow
            pass
    return tf


def tensorflow_version() -> str:
    try:
        from importlib.metadata import version

        return version("tensorflow")
    except Exception:  # noqa: BLE001 - metadata may be missing in odd installs
        return "unknown"


@contextmanager
def native_output_captured(enabled: bool) -> Iterator[None]:
    """Keep C++ prints (TensorFlow, the converter) off the user's terminal: fd-level redirect."""
    if not enabled:
        yield
        return
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])
