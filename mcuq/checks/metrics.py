"""Error metrics between a float reference and the dequantized int8 result.

Names follow what STM32Cube.AI users know from its validate report: ACC, RMSE, MAE,
L2R (relative L2 error), COS (cosine similarity), plus SNR in dB.
"""

from __future__ import annotations

import numpy as np

from mcuq.project.records import ErrorMetricsJSON


def _flat(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float64).reshape(-1)


def rmse(ref: np.ndarray, test: np.ndarray) -> float:
    return float(np.sqrt(np.mean((_flat(ref) - _flat(test)) ** 2)))


def mae(ref: np.ndarray, test: np.ndarray) -> float:
    return float(np.mean(np.abs(_flat(ref) - _flat(test))))


def l2r(ref: np.ndarray, test: np.ndarray) -> float:
    """||ref - test|| / ||ref||; 0 when both are zero."""
    denom = np.linalg.norm(_flat(ref))
    diff = np.linalg.norm(_flat(ref) - _flat(test))
    return float(diff / denom) if denom > 0 else (0.0 if diff == 0 else float("inf"))


def cosine(ref: np.ndarray, test: np.ndarray) -> float:
    a, b = _flat(ref), _flat(test)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    if na == 0 or nb == 0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))


def snr_db(ref: np.ndarray, test: np.ndarray) -> float:
    """Signal (reference energy) to noise (error energy) in dB; inf when identical."""
    signal = float(np.sum(_flat(ref) ** 2))
    noise = float(np.sum((_flat(ref) - _flat(test)) ** 2))
    if noise == 0:
        return float("inf")
    if signal == 0:
        return float("-inf")
    return float(10.0 * np.log10(signal / noise))


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    matrix = np.zeros((classes, classes), dtype=np.int64)
    for truth, guess in zip(np.asarray(labels).reshape(-1), np.asarray(predicted).reshape(-1)):
        if 0 <= truth < classes and 0 <= guess < classes:
            matrix[int(truth), int(guess)] += 1
    return matrix


def error_metrics(ref: np.ndarray, test: np.ndarray) -> ErrorMetricsJSON:
    return {"RMSE": rmse(ref, test), "MAE": mae(ref, test), "L2R": l2r(ref, test), "COS": cosine(ref, test), "SNR_dB": snr_db(ref, test)}
