"""A third runtime is one package: this test installs a "null" runtime as a plugin (an entry point
in the group ``mcuq.backends``, the way a separate package would) and deploys and validates with
it. Nothing of mcuq is edited or patched: if deploy, validate, inspect or the manifest tested a
runtime's name, or needed a runtime's templates under firmware_templates/, this would fail."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import pytest

PLUGIN_SECTION = """
from dataclasses import dataclass
from typing import ClassVar

from mcuq.backends.registry import BackendOption

# A deploy option only this runtime has: the CLI flag and the mcuq.toml key come from here.
STYLE = BackendOption("null_style", str, "how the null runtime spells its arrays", choices=("plain", "fancy"))
OPTIONS = (STYLE,)


@dataclass(frozen=True)
class NullSection:
    KEY: ClassVar[str] = "null_runtime"

    ops: list[str]


SECTION = NullSection
"""

PLUGIN_BACKEND = '''
"""A runtime that renders its golden vectors as C and checks them on x86 TFLite Micro: no kernels."""

import numpy as np

from mcuq.backends.base import ArenaSummary, BackendPlan, FitReport, RenderedProject, ReportSection, golden_array_name
from mcuq.checks.golden import golden_from_project
from mcuq.libraries import installed_tflm_ops
from mcuq.model.info import parse_model
from mcuq.reference.host_tflm import run_tflm

from mcuq_null_runtime.section import STYLE, NullSection

ARENA = 64 * 1024


class NullBackend:
    name = "null"
    title = "null runtime (a test plugin)"
    column = "NULL"

    def supported_ops(self):
        return installed_tflm_ops()

    def describe(self, board):
        return self.title

    def board_note(self, board):
        return None

    def unsupported_reason(self, board):
        return None

    def per_channel_dense_rule(self, board):
        return None

    def arena_bytes(self, info, board, sample):
        return ARENA

    def plan(self, job, console):
        run = run_tflm(job.info.raw, job.golden_in, ARENA, len(job.info.output_tensors))
        fit = FitReport(ARENA, job.board.sram_bytes, len(job.info.raw), job.board.flash_bytes, False, 0, "null runtime")
        arena = ArenaSummary(ARENA, ARENA, ARENA, "fixed by the null runtime")
        return BackendPlan(run.outputs, arena, fit, NullSection(list(job.info.op_names)))

    def render(self, job, plan):
        lines = []
        for v, (ins, outs) in enumerate(zip(job.golden_in, plan.golden_out)):
            for kind, arrays in (("in", ins), ("out", outs)):
                for t, a in enumerate(arrays):
                    values = ", ".join(str(int(x)) for x in np.asarray(a).reshape(-1))
                    lines.append(f"const signed char {golden_array_name(kind, v, t)}[{np.asarray(a).size}] = {{ {values} }};")
        style = STYLE.read(job.options) or "plain"
        return RenderedProject({"src/null_golden.c": f"/* style {style} */\\n" + "\\n".join(lines) + "\\n"}, {})

    def validate(self, project, manifest, report, options, console):
        raw = (project / "mcuq" / "model_int8.tflite").read_bytes()
        info = parse_model(raw, "the project's model")
        inputs, outputs = golden_from_project(project, info)
        got = run_tflm(raw, inputs, ARENA, len(info.output_tensors)).outputs
        same = all(np.array_equal(a, b) for g, w in zip(got, outputs) for a, b in zip(g, w))
        report.add("golden vectors", same, f"{len(inputs)} vectors on x86 TFLite Micro")
        return raw if same else None

    def check_samples(self, project, info, inputs, tflm_outputs, report):
        return None

    def report_section(self, manifest):
        return ReportSection(library=self.title)

    def check_options(self, board, options):
        pass  # its one option needs nothing beyond its declared choices

    def summary_lines(self, manifest):
        return [f"null runtime: {len(manifest.section(NullSection).ops)} ops"]


BACKEND = NullBackend()
'''


@pytest.fixture
def null_plugin(tmp_path, monkeypatch):
    """The plugin as pip would install it: a package and a dist-info with its entry point."""
    site = tmp_path / "site"
    package = site / "mcuq_null_runtime"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "section.py").write_text(textwrap.dedent(PLUGIN_SECTION))
    (package / "backend.py").write_text(textwrap.dedent(PLUGIN_BACKEND))
    dist = site / "mcuq_null_runtime-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: mcuq-null-runtime\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[mcuq.backends]\nnull = mcuq_null_runtime\n")
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


def test_plugin_runtime_is_listed_only_while_installed(null_plugin):
    from mcuq.backends.registry import backend_names

    assert backend_names() == ["tflm", "c", "null"]
    sys.path.remove(str(null_plugin))  # "uninstalled" (monkeypatch restores sys.path afterwards)
    importlib.invalidate_caches()
    assert backend_names() == ["tflm", "c"]


@pytest.mark.slow
def test_third_runtime_deploys_validates_and_inspects_as_a_plugin(null_plugin, tmp_path, sine_tflite):
    from mcuq.deploy import DeployRequest, deploy
    from mcuq.inspection import inspect_info
    from mcuq.model.info import parse_model
    from mcuq.validate import validate_project

    out = tmp_path / "project"
    request = DeployRequest(model=str(sine_tflite), board="esp32", runtime="null", out=str(out), backend_options={"null_style": "fancy"})
    result = deploy(request)
    assert result.ok and result.validation.passed, result.result_line
    lock = json.loads((out / "mcuq.lock.json").read_text())
    assert lock["runtime"] == "null" and lock["null_runtime"]["ops"] == ["FULLY_CONNECTED"]
    generated = (out / "src" / "null_golden.c").read_text()
    assert "mcuq_golden_out_0_0[1]" in generated and "/* style fancy */" in generated
    assert validate_project(out, write_report=False).passed

    golden = json.loads((out / "mcuq" / "golden.json").read_text())
    golden["vectors"][0]["outputs"][0]["values"][0] += 1  # the hashes must catch an edited vector
    (out / "mcuq" / "golden.json").write_text(json.dumps(golden))
    assert not validate_project(out, write_report=False).passed

    report = inspect_info(parse_model(sine_tflite.read_bytes(), str(sine_tflite)), str(sine_tflite))
    assert report["supported_by"]["null"] is True and {r["column"] for r in report["runtimes"]} == {"TFLM", "C", "NULL"}


def test_plugin_options_reach_the_cli_and_mcuq_toml_from_their_declaration(null_plugin, tmp_path, sine_tflite):
    """An option a runtime declares is a flag of `mcuq deploy` and a key of mcuq.toml, checked
    against its choices, and refused for a runtime that does not declare it; nothing in mcuq names it."""
    from mcuq.cli import build_parser
    from mcuq.common.errors import MCUQError
    from mcuq.deploy import DeployRequest, check_request
    from mcuq.frontend.config import load_config

    args = build_parser().parse_args(["deploy", str(sine_tflite), "--runtime", "null", "--null-style", "fancy"])
    assert DeployRequest.from_cli(args).backend_options == {"null_style": "fancy"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["deploy", str(sine_tflite), "--null-style", "gaudy"])
    config = tmp_path / "mcuq.toml"
    config.write_text(f'model = "{sine_tflite}"\nnull_style = "plain"\n')
    assert load_config(config)["null_style"] == "plain"
    config.write_text(f'model = "{sine_tflite}"\nnull_style = "gaudy"\n')
    with pytest.raises(MCUQError, match="null_style"):
        load_config(config)
    with pytest.raises(MCUQError, match="--null-style: 'gaudy' is not one of plain, fancy"):
        check_request(DeployRequest(model=str(sine_tflite), backend_options={"null_style": "gaudy"}))
    with pytest.raises(MCUQError, match="--null-style: not an option of runtime tflm"):
        from mcuq.deploy import deploy

        deploy(DeployRequest(model=str(sine_tflite), board="esp32", out=str(tmp_path / "p"), backend_options={"null_style": "fancy"}))
    assert not (tmp_path / "p").exists()
