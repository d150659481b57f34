"""`pip install .` (not only editable) must ship boards/ and firmware_templates/."""

from __future__ import annotations

import subprocess
import sys
import zipfile

from conftest import ROOT


def test_wheel_contains_boards_and_templates(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    wheel = next(tmp_path.glob("mcuq-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mcuq/_data/boards/esp32.toml" in names
    assert "mcuq/_data/boards/libraries/esp-tflite-micro.toml" in names
    assert "mcuq/_data/firmware_templates/tflm/src/mcuq_model.cpp.j2" in names
    assert "mcuq/_data/firmware_templates/c/runtime/mcuq_kernels.c" in names
    assert any(n.endswith("entry_points.txt") for n in names)
