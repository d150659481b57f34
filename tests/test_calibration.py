"""Calibration data loaders: each format, and each bad input with a one-line error."""

from __future__ import annotations

import numpy as np
import pytest

from mcuq.common.errors import CalibrationError
from mcuq.frontend.calibration import InputSpec, load_samples

IMG = [InputSpec("image", (8, 8, 1))]
VEC = [InputSpec("x", (3,))]


def test_npy_and_seeded_subsample(tmp_path):
    data = np.random.default_rng(0).random((50, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "c.npy", data)
    a = load_samples(str(tmp_path / "c.npy"), IMG, max_samples=10, seed=3)
    b = load_samples(str(tmp_path / "c.npy"), IMG, max_samples=10, seed=3)
    c = load_samples(str(tmp_path / "c.npy"), IMG, max_samples=10, seed=4)
    assert a.count == 10
    assert np.array_equal(a.arrays["image"], b.arrays["image"])
    assert not np.array_equal(a.arrays["image"], c.arrays["image"])


def test_npz_multi_input_by_name(tmp_path):
    np.savez(tmp_path / "c.npz", audio=np.zeros((5, 4)), meta=np.ones((5, 2)), labels=np.arange(5))
    data = load_samples(str(tmp_path / "c.npz"), [InputSpec("audio", (4,)), InputSpec("meta", (2,))])
    assert set(data.arrays) == {"audio", "meta"}
    assert data.labels is not None and list(data.labels) == [0, 1, 2, 3, 4]


def test_npz_missing_input_name(tmp_path):
    np.savez(tmp_path / "c.npz", audio=np.zeros((5, 4)))
    with pytest.raises(CalibrationError, match="no array named 'meta'"):
        load_samples(str(tmp_path / "c.npz"), [InputSpec("audio", (4,)), InputSpec("meta", (2,))])


@pytest.mark.parametrize("fmt", ["png", "jpeg", "bmp"])
def test_image_folder(tmp_path, fmt):
    from PIL import Image

    for i in range(3):
        Image.fromarray(np.full((16, 16), 255 * (i % 2), np.uint8)).save(tmp_path / f"img{i}.{fmt}")
    data = load_samples(str(tmp_path), IMG, image_scale="0..1")
    assert data.arrays["image"].shape == (3, 8, 8, 1)
    assert data.arrays["image"].max() == pytest.approx(1.0) and data.arrays["image"].min() == pytest.approx(0.0)
    assert "scaled to 0..1" in data.notes[0]
    signed = load_samples(str(tmp_path), IMG, image_scale="-1..1")
    assert signed.arrays["image"].min() == pytest.approx(-1.0)


def test_csv_with_header(tmp_path):
    (tmp_path / "c.csv").write_text("a,b,c\n1,2,3\n4,5,6\n")
    data = load_samples(str(tmp_path / "c.csv"), VEC)
    assert data.arrays["x"].tolist() == [[1, 2, 3], [4, 5, 6]]


def test_module_function(tmp_path, monkeypatch):
    (tmp_path / "mydata.py").write_text("import numpy as np\ndef samples():\n    return [np.full((3,), i, np.float32) for i in range(4)]\n")
    monkeypatch.chdir(tmp_path)
    data = load_samples("mydata:samples", VEC)
    assert data.count == 4


def test_random_is_flagged():
    data = load_samples("random", VEC, max_samples=7)
    assert data.random and data.count == 7


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((5, 64), np.float32), r"shape \(5, 64\), expected \(N, 8, 8, 1\)"),
        (np.array([["a"] * 64] * 2).reshape(2, 8, 8, 1), "dtype"),
        (np.full((3, 8, 8, 1), np.nan, np.float32), "NaN/Inf"),
        (np.full((3, 8, 8, 1), np.inf, np.float32), "NaN/Inf"),
        (np.zeros((0, 8, 8, 1), np.float32), "zero samples"),
    ],
)
def test_bad_npy(tmp_path, array, message):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(CalibrationError, match=message) as info:
        load_samples(str(tmp_path / "bad.npy"), IMG)
    assert "bad.npy" in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_image_folder(tmp_path):
    with pytest.raises(CalibrationError, match="no PNG/JPEG/BMP"):
        load_samples(str(tmp_path), IMG)


def test_unreadable_image_is_named(tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(CalibrationError, match="broken.png: unreadable image"):
        load_samples(str(tmp_path), IMG)


def test_missing_file():
    with pytest.raises(CalibrationError, match="no such file"):
        load_samples("nope.npy", IMG)


def test_npy_for_multi_input_model_points_to_npz(tmp_path):
    np.save(tmp_path / "c.npy", np.zeros((2, 4)))
    with pytest.raises(CalibrationError, match="use a .npz"):
        load_samples(str(tmp_path / "c.npy"), [InputSpec("a", (4,)), InputSpec("b", (2,))])
