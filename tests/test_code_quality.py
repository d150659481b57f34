"""Ruff and mypy keep the code style and the type hints honest."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "mcuq", "tests", "examples"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_mypy_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy", "mcuq"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
