"""Validation metrics against plain numpy computations on known arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mcuq.checks.metrics import confusion_matrix, cosine, error_metrics, l2r, mae, rmse, snr_db


def test_metrics_match_numpy():
    rng = np.random.default_rng(3)
    ref = rng.normal(size=(40, 10))
    test = ref + rng.normal(scale=0.1, size=ref.shape)
    err = ref - test
    assert rmse(ref, test) == pytest.approx(np.sqrt((err**2).mean()))
    assert mae(ref, test) == pytest.approx(np.abs(err).mean())
    assert l2r(ref, test) == pytest.approx(np.linalg.norm(err) / np.linalg.norm(ref))
    assert cosine(ref, test) == pytest.approx((ref * test).sum() / np.linalg.norm(ref) / np.linalg.norm(test))
    assert snr_db(ref, test) == pytest.approx(10 * np.log10((ref**2).sum() / (err**2).sum()))
    assert set(error_metrics(ref, test)) == {"RMSE", "MAE", "L2R", "COS", "SNR_dB"}


def test_known_values():
    ref = np.array([3.0, 4.0])
    assert rmse(ref, np.array([3.0, 2.0])) == pytest.approx(math.sqrt(2.0))
    assert l2r(ref, np.array([3.0, 2.0])) == pytest.approx(2.0 / 5.0)
    assert snr_db(ref, np.array([3.0, 3.5])) == pytest.approx(10 * math.log10(25 / 0.25))
    assert snr_db(ref, ref) == math.inf
    assert cosine(ref, -ref) == pytest.approx(-1.0)


def test_confusion_matrix():
    m = confusion_matrix(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]
    assert m.sum() == 5
