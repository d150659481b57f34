"""The outcome of ``mcuq validate``: named checks, each passed or failed with a reason.

Backends add their checks here; the verdict is PASS only when every check that ran passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class ValidationReport:
    project: Path
    checks: list[Check] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    per_layer: list[dict[str, Any]] = field(default_factory=list)
    report_files: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def add(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append(Check(name, passed, detail))
        return passed

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def as_dict(self) -> dict[str, Any]:
        return {
            "project": str(self.project), "passed": self.passed,
            "checks": [c.__dict__ for c in self.checks], "metrics": self.metrics,
            "per_layer": self.per_layer, "report_files": self.report_files,
        }
