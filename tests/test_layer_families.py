"""The layer-family table (issue 20): one tiny Keras 3 model per family, deployed to esp32 and
to an Arduino-library board (nano33ble), validate PASS bit-exact on x86 TFLite Micro; the
families that need RSQRT also with the plain-C runtime to the Nucleo-F446RE (qemu self-test).

Parametrized by family and board, so the test count is the coverage count. Every model is
converted once, in one child process (tests/layer_families.py), through mcuq's own conversion
path with its rewrites; the .tflite files are deployed through the Python API in this process.
benchmarks/layer_families.py prints the same table with the plain-C column.
"""

from __future__ import annotations

import pytest
from layer_families import FAMILY_NAMES, convert_all, file_stem

BOARDS = ("esp32", "nano33ble")
# The families whose mcuq rewrite uses RSQRT (ELU, LayerNormalization): the last ones the plain-C
# runtime took (issue 21); the others are covered by tests/test_c_ops_extra_deploy.py's models.
C_RUNTIME_FAMILIES = ("elu", "ELU_layer", "LayerNormalization", "transformer_block")
# Families mcuq refuses on purpose, with the words the one-line refusal must contain (none today).
EXPECTED_REFUSALS: dict[str, tuple[str, ...]] = {}

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def converted_families(request, tmp_path_factory):
    """Only the families of the selected tests (``-k gelu`` converts one model, not 46)."""
    selected: set[str] = set()
    for item in request.session.items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "family" in callspec.params:
            selected.add(callspec.params["family"])
    return convert_all(tmp_path_factory.mktemp("families"), [f for f in FAMILY_NAMES if f in selected])


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("family", FAMILY_NAMES)
def test_family_deploys_bit_exact(family, board, converted_families, tmp_path):
    from mcuq.deploy import DeployRequest, deploy

    converted = converted_families[family]
    if family in EXPECTED_REFUSALS:
        assert converted.refusal is not None and all(w in converted.refusal for w in EXPECTED_REFUSALS[family]), converted.refusal
        return
    assert converted.refusal is None, f"{family}: {converted.refusal}"
    assert converted.tflite is not None
    result = deploy(DeployRequest(model=str(converted.tflite), board=board, out=str(tmp_path / file_stem(family))))
    assert result.ok, result.result_line
    goldens = [c for c in result.validation.checks if c.name.startswith("golden vector")]
    assert goldens and all(c.passed and "bit-exact" in c.detail for c in goldens), [c.detail for c in goldens]


@pytest.mark.parametrize("family", C_RUNTIME_FAMILIES)
def test_rsqrt_family_passes_the_plain_c_self_test(family, converted_families, tmp_path):
    from conftest import need
    from mcuq.deploy import DeployRequest, deploy

    need("arm-none-eabi-gcc")
    need("qemu-system-arm")
    converted = converted_families[family]
    assert converted.tflite is not None, f"{family}: {converted.refusal}"
    out = tmp_path / file_stem(family)
    result = deploy(DeployRequest(model=str(converted.tflite), board="nucleo_f446re", runtime="c", out=str(out)))
    assert result.ok, result.result_line
    emulation = result.manifest["c_runtime"]["emulation"]
    assert emulation["passed"], emulation
    assert "mcuq_lut(" in (out / "src" / "mcuq_model.c").read_text()  # RSQRT ran as its table
