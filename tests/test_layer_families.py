"""The layer-family table (issue 20): one tiny Keras 3 model per family, deployed to esp32 and
to an Arduino-library board (nano33ble), validate PASS bit-exact on x86 TFLite Micro.

Parametrized by family and board, so the test count is the coverage count. Every model is
converted once, in one child process (tests/layer_families.py), through mcuq's own conversion
path with its rewrites; the .tflite files are deployed through the Python API in this process.
benchmarks/layer_families.py prints the same table with the plain-C column.
"""

from __future__ import annotations

import pytest
from layer_families import FAMILY_NAMES, convert_all, file_stem

BOARDS = ("esp32", "nano33ble")
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
