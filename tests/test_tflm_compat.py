"""Models TFLite Micro runs that mcuq used to refuse (issue 20): each one is deployed and validated."""

from __future__ import annotations

import numpy as np
import pytest
from mutants import _pack, _schema

from mcuq.deploy import DeployRequest, deploy
from mcuq.model.info import parse_model
from mcuq.validate import validate_project


def _edit(raw: bytes, change) -> bytes:
    model = _schema().ModelT.InitFromPackedBuf(bytearray(raw), 0)
    change(model)
    return _pack(model)


def _conv_bias_axis_3(model) -> None:
    """What person_detect.tflite carries: a rank-1 per-channel bias 'quantized along axis 3'."""
    names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
    sg = model.subgraphs[0]
    conv = next(op for op in sg.operators if names[model.operatorCodes[op.opcodeIndex].builtinCode] == "CONV_2D")
    q = sg.tensors[conv.inputs[2]].quantization
    assert len(q.scale) > 1  # per-channel, like the file from the TFLite Micro repository
    q.quantizedDimension = 3


@pytest.fixture(scope="module")
def odd_bias_tflite(tmp_path_factory, digits_int8):
    path = tmp_path_factory.mktemp("bias") / "odd_bias.tflite"
    path.write_bytes(_edit(digits_int8.tflite, _conv_bias_axis_3))
    return path


def test_bias_axis_is_not_read_but_a_filter_axis_is(odd_bias_tflite, digits_int8):
    """TFLite Micro reads a filter's quantized_dimension (kernel_util.cc), never a bias's."""
    from mcuq.common.errors import ModelLoadError

    parse_model(odd_bias_tflite.read_bytes(), "odd_bias.tflite")

    def filter_axis(model) -> None:
        names = {v: k for k, v in vars(_schema().BuiltinOperator).items() if not k.startswith("_")}
        sg = model.subgraphs[0]
        conv = next(op for op in sg.operators if names[model.operatorCodes[op.opcodeIndex].builtinCode] == "CONV_2D")
        sg.tensors[conv.inputs[1]].quantization.quantizedDimension = 7

    with pytest.raises(ModelLoadError, match=r"per channel along axis 7, but has rank 4"):
        parse_model(_edit(digits_int8.tflite, filter_axis), "bad_filter.tflite")


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["tflm", "c"])
def test_odd_bias_axis_deploys_and_validates(tmp_path, odd_bias_tflite, runtime):
    out = tmp_path / runtime
    result = deploy(DeployRequest(model=str(odd_bias_tflite), board="esp32", runtime=runtime, out=str(out)))
    assert result.ok and result.runtime == runtime
    report = validate_project(out, write_report=False)
    assert report.passed, [c for c in report.checks if not c.passed]
    assert np.asarray([c.passed for c in report.checks]).all()
