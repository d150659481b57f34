"""Ruff (lint and format) and mypy keep the code style and the type hints honest."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT

PYTHON_TREES = ["mcuq", "tests", "examples", "benchmarks"]


def test_ruff_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", *PYTHON_TREES], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_ruff_format_clean():
    proc = subprocess.run([sys.executable, "-m", "ruff", "format", "--check", *PYTHON_TREES], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, f"run 'ruff format {' '.join(PYTHON_TREES)}':\n{proc.stdout}"


def test_mypy_clean():
    proc = subprocess.run([sys.executable, "-m", "mypy", "mcuq"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_public_api_documented():
    """Every name ``mcuq`` exports says what it promises (an empty or missing docstring fails)."""
    import inspect

    import mcuq

    missing = [name for name in mcuq.__all__ if name != "__version__" and not (inspect.getdoc(getattr(mcuq, name)) or "").strip()]
    assert not missing, f"public names without a docstring: {missing}"


def test_architecture_map_matches_the_tree():
    """docs/architecture.md names every package of mcuq, and every path it names exists."""
    import re

    text = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`(mcuq/[\w/]+(?:\.py)?/?|[\w]+\.py|[\w]+/)`", text))
    packages = {f"mcuq/{p.name}/" for p in (ROOT / "mcuq").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= named, f"packages missing from docs/architecture.md: {sorted(packages - named)}"
    for path in (n for n in named if n.startswith("mcuq/")):
        assert (ROOT / path).exists(), f"docs/architecture.md names {path}, which does not exist"
    modules = {p.name for p in (ROOT / "mcuq").rglob("*.py")}
    for name in (n for n in named if n.endswith(".py") and "/" not in n):
        assert name in modules, f"docs/architecture.md names {name}, which is no module of mcuq"


def test_no_module_over_600_lines():
    """A module that grows past 600 lines holds several things (issue #24): split it along its seams."""
    long = {str(p.relative_to(ROOT)): n for p in (ROOT / "mcuq").rglob("*.py") if (n := len(p.read_text().splitlines())) > 600}
    assert not long, f"modules over 600 lines: {long}"


def test_seams_are_typed():
    """Data handed between modules is typed (dataclasses, TypedDicts): ``dict[str, Any]`` stays rare (< 30)."""
    count = sum(p.read_text().count("dict[str, Any]") for p in (ROOT / "mcuq").rglob("*.py"))
    assert count < 30, f"{count} uses of dict[str, Any] in mcuq/; type the seam instead"
