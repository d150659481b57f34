"""The outcome of ``mcuq validate``: named checks, each passed or failed with a reason.

Backends add their checks here; the verdict is PASS only when every check that ran passed.
A check that could not run (its input is missing, its tool is not installed) is recorded under
``not_checked`` with what to do about it, never as a passed check: what the output claims is what
was checked. It does not fail the verdict; the caller adds a failed check instead when the user
asked for it (``--max-drop`` without validation data). ``notes`` are one-line remarks about a check
that did run (validation data that differs from the file deploy recorded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mcuq.project.records import CheckJSON, LayerErrorJSON, MetricsJSON, ReportJSON


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def as_json(self) -> CheckJSON:
        return {"name": self.name, "passed": self.passed, "detail": self.detail}


@dataclass
class ValidationReport:
    project: Path
    checks: list[Check] = field(default_factory=list)
    metrics: MetricsJSON = field(default_factory=lambda: MetricsJSON())
    per_layer: list[LayerErrorJSON] = field(default_factory=list)
    report_files: list[str] = field(default_factory=list)
    kept_reports: list[str] = field(default_factory=list)  # the user's own report.html/json, left alone
    # Checks that could not run (``passed`` False: nothing was proven); kept out of ``checks`` so that
    # "every check passed" never counts them, and printed as "not checked" with what to do.
    not_checked: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def verdict(self) -> str:
        """PASS/FAIL as printed: a PASS says how many checks did not run, so it never claims them."""
        if not self.passed:
            return "FAIL"
        skipped = len(self.not_checked)
        return f"PASS ({skipped} check{'s' if skipped > 1 else ''} not run)" if skipped else "PASS"

    @property
    def result_line(self) -> str:
        """The verdict in one line (what ``--quiet`` prints): on FAIL, the first failed check."""
        failed = [c for c in self.checks if not c.passed]
        more = f" (and {len(failed) - 1} more failed checks)" if len(failed) > 1 else ""
        return f"validate {self.project}: {self.verdict}" + (f": {failed[0].name}: {failed[0].detail}{more}" if failed else "")

    def add(self, name: str, passed: bool, detail: str) -> bool:
        self.checks.append(Check(name, passed, detail))
        return passed

    def skip(self, name: str, detail: str) -> None:
        """Record a check that could not run; ``detail`` says why and what to do to run it."""
        self.not_checked.append(Check(name, False, detail))

    def note(self, text: str) -> None:
        self.notes.append(text)

    def mismatch_cause(self) -> str:
        """Why a golden vector differs, as far as the file hashes tell: an edit, or not an edit."""
        files = self.check("generated files")
        if files is not None and files.passed:
            return (
                "no generated file was edited (all match their hashes), so x86 TFLite Micro does not reproduce "
                "its own deploy-time result: the model is malformed or its output is not deterministic; "
                "do not upload it, check the model"
            )
        return "generated files were edited (see 'generated files') or the model changed; regenerate with 'mcuq deploy --force'"

    def check(self, name: str) -> Check | None:
        return next((c for c in self.checks if c.name == name), None)

    def as_dict(self) -> ReportJSON:
        return {
            "project": str(self.project),
            "passed": self.passed,
            "checks": [c.as_json() for c in self.checks],
            "not_checked": [c.as_json() for c in self.not_checked],
            "notes": self.notes,
            "metrics": self.metrics,
            "per_layer": self.per_layer,
            "report_files": self.report_files,
        }
