"""boards/libraries/*.toml agree with the libraries' sources (mcuq/tools/derive_library_ops.py).

The op data was hand-written once and drifted (esp-tflite-micro's int16 LEAKY_RELU, SUB,
TRANSPOSE_CONV and SVDF were missing, Chirale's DIV/SUM/LOG_SOFTMAX too); the script reads the
sources the boards build, and this test fails the day the TOML and the sources disagree.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from conftest import ROOT
from mcuq.libraries import load_library
from mcuq.tools.derive_library_ops import LIBRARY_DIRS, derive, main

SHARED = ROOT.parent / "shared" / "tflm-libs"


def _sources(folder: str) -> Path:
    path = SHARED / folder
    if not path.is_dir():
        pytest.skip(f"library sources not at hand ({path} absent): the TOML cannot be re-derived here")
    return path


@functools.cache
def _derived(folder: str):
    """One derivation per library for the whole module (reading a library's sources takes seconds)."""
    return derive(_sources(folder))


@pytest.mark.parametrize("library_id", sorted(LIBRARY_DIRS))
def test_toml_matches_the_library_sources(library_id):
    derived = _derived(LIBRARY_DIRS[library_id])
    library = load_library(library_id)
    assert sorted(library.add_methods) == list(derived.add_methods)
    assert sorted(library.features.int16x8_ops) == list(derived.int16x8_ops)


def test_derivation_sees_what_the_issue_found():
    """Spot checks against hand-read sources, so a broken parser cannot agree with broken data."""
    esp = _derived("esp-tflite-micro")
    chirale = _derived("Chirale_TensorFLowLite")
    # esp-tflite-micro: leaky_relu.cc / sub.cc / transpose_conv.cc / svdf.cc have `case kTfLiteInt16`.
    assert {"LEAKY_RELU", "SUB", "TRANSPOSE_CONV", "SVDF", "AVERAGE_POOL_2D"} <= set(esp.int16x8_ops)
    # elementwise.cc: ABS and RSQRT take int16, SIN and SQRT are float-only (one file, four ops).
    assert {"ABS", "RSQRT"} <= set(esp.int16x8_ops) and not {"SIN", "SQRT"} & set(esp.int16x8_ops)
    # Chirale: cmsis_nn/pooling.cpp is int8-only; prelu_common.cpp's Prepare names int16 but Eval does not.
    assert not {"AVERAGE_POOL_2D", "MAX_POOL_2D", "PRELU"} & set(chirale.int16x8_ops)
    assert esp.custom_ops["AddRfft"] == "SignalRfft" and esp.registrations["AddWindow"] == "Register_WINDOW"
    assert not any(name.startswith("Signal") for name in chirale.custom_ops.values())
    assert esp.builtin_ops["AddConv2D"] == "CONV_2D" and "AddBatchMatMul" not in chirale.add_methods


def test_cli_prints_toml(capsys):
    assert main([str(_sources("esp-tflite-micro"))]) == 0
    out = capsys.readouterr().out
    assert out.startswith("add_methods = [") and '"AddWindow"' in out and "int16x8_ops = [" in out
    assert main([str(ROOT / "mcuq")]) == 1


def test_signal_add_methods_match_the_resolver_header():
    from mcuq.libraries import SIGNAL_ADD_METHODS

    esp = _derived("esp-tflite-micro")
    from_header = {name: method for method, name in esp.custom_ops.items() if name.startswith("Signal")}
    assert SIGNAL_ADD_METHODS == from_header
