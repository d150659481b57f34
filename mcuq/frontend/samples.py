"""The samples a model is calibrated and validated on, as arrays per input name.

Why a module of its own: the samples travel through every stage (the converter's child process
hands them back pickled, the Dense-scale choice, the golden vectors and the accuracy checks read
them), while only ``calibration.py`` knows how to load them from a user's files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class InputSpec:
    """A model input as calibration sees it: name and shape without the batch dimension."""

    name: str
    shape: tuple[int, ...]


@dataclass
class SampleSet:
    """Float samples per input (each ``N x shape``), where they came from, and extras."""

    arrays: dict[str, np.ndarray]
    source: str
    random: bool = False
    labels: np.ndarray | None = None
    targets: dict[str, np.ndarray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    label_names: list[str] = field(default_factory=list)  # class names ('label_names' in a .npz)

    @property
    def count(self) -> int:
        return len(next(iter(self.arrays.values())))

    def sample(self, i: int) -> list[np.ndarray]:
        """Sample ``i`` as a list of batch-1 float32 arrays in model input order."""
        return [a[i : i + 1].astype(np.float32) for a in self.arrays.values()]

    def sample_dict(self, i: int) -> dict[str, np.ndarray]:
        """Sample ``i`` keyed by input name (what a multi-input signature needs)."""
        return {k: a[i : i + 1].astype(np.float32) for k, a in self.arrays.items()}

    def sample_for(self, i: int, names: list[str] | tuple[str, ...]) -> list[np.ndarray]:
        """Sample ``i`` in the order of ``names`` (a .tflite orders its inputs its own way)."""
        if len(names) == len(self.arrays) and set(names) == set(self.arrays):
            return [self.arrays[n][i : i + 1].astype(np.float32) for n in names]
        return self.sample(i)
