"""deploy is right about its own result: a failed emulator self-test is exit 1, said in the summary."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conftest import need
from mcuq.deploy import DeployRequest, deploy, format_summary


def test_failed_emulator_selftest_makes_deploy_fail(sine_tflite, tmp_path: Path) -> None:
    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    result = deploy(DeployRequest(model=str(sine_tflite), board="nano33ble", runtime="c", out=str(tmp_path / "p")))
    assert result.plan.emulation is not None and result.plan.emulation.passed is True
    assert result.emulator_passed is True and result.ok
    assert result.result_line == f"deploy {result.out_dir}: PASS"  # what --quiet prints
    # The same result, had the firmware failed its boot check in the emulator:
    result.plan.emulation = replace(result.plan.emulation, passed=False)
    assert result.emulator_passed is False and not result.ok
    assert "deploy: FAIL: the firmware's self-test failed" in format_summary(result)
    assert result.result_line.startswith(f"deploy {result.out_dir}: FAIL: the firmware's self-test failed on ")
