"""The project writer loses nothing: --force touches only mcuq's own unchanged files, regeneration
is all-or-nothing (also under kill -9), quantize and validate never replace a user's file."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import ROOT
from mcuq.checks.report import write_report
from mcuq.common.errors import MCUQError, OutputDirError
from mcuq.project.writer import MANIFEST, UNVALIDATED_MARK, clean_stale, mark_validated, write_project


def tree(root: Path) -> dict[str, str]:
    """Every file under root (symlinks as their target) -> sha256."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(root))] = "link:" + os.readlink(path)
        elif path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def project(version: int, n: int = 3) -> dict[str, str | bytes]:
    return {**{f"src/gen_{i}.cpp": f"// v{version} file {i}\n" for i in range(n)}, "README.md": f"v{version}\n"}


def test_force_never_deletes_outside_or_unlisted_or_edited_files(tmp_path):
    out = tmp_path / "proj"
    write_project(out, project(1), {"src/app.cpp": "// app\n"}, {}, force=False)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    absolute = tmp_path / "abs.txt"
    absolute.write_text("also precious\n")
    manifest = json.loads((out / MANIFEST).read_text())
    # A manifest edited (or crafted) to list files outside the project, and a listed file the user changed.
    manifest["files"]["../victim.txt"] = hashlib.sha256(b"precious\n").hexdigest()
    manifest["files"][str(absolute)] = hashlib.sha256(b"also precious\n").hexdigest()
    manifest["files"]["old_generated.txt"] = hashlib.sha256(b"mcuq wrote this\n").hexdigest()
    (out / "old_generated.txt").write_text("but I changed it\n")
    (out / MANIFEST).write_text(json.dumps(manifest))
    (out / "src" / "gen_0.cpp").write_text("// my tweak\n")
    (out / "notes.txt").write_text("mine\n")

    result = write_project(out, {"src/gen_0.cpp": "// v2\n"}, {"src/app.cpp": "// app\n"}, {}, force=True)

    assert victim.read_text() == "precious\n" and absolute.read_text() == "also precious\n"
    assert sorted(result.ignored_manifest_paths) == sorted(["../victim.txt", str(absolute)])
    assert (out / "old_generated.txt").read_text() == "but I changed it\n"  # edited: kept, not deleted
    assert (out / "src" / "gen_0.cpp.mcuq-edited").read_text() == "// my tweak\n"
    assert (out / "src" / "gen_0.cpp").read_text() == "// v2\n"
    assert any("gen_0.cpp.mcuq-edited" in e for e in result.edited_generated)
    assert (out / "notes.txt").read_text() == "mine\n" and (out / "src" / "app.cpp").read_text() == "// app\n"
    assert not (out / "src" / "gen_1.cpp").exists()  # mcuq's own, unchanged, no longer generated: dropped
    assert json.loads((out / MANIFEST).read_text())["files"] == {"src/gen_0.cpp": hashlib.sha256(b"// v2\n").hexdigest()}


def test_failed_regeneration_changes_nothing(tmp_path):
    out = tmp_path / "proj"
    write_project(out, project(1, 4), {}, {}, force=False)
    (out / "src" / "app.cpp").write_text("// mine\n")
    (out / "src" / "gen_3.cpp").unlink()
    (out / "src" / "gen_3.cpp").mkdir()  # a generated path that became a folder
    (out / "src" / "gen_3.cpp" / "inside.txt").write_text("x\n")
    before = tree(out)
    with pytest.raises(OutputDirError, match="gen_3.cpp is a folder"):
        write_project(out, project(2, 7), {}, {}, force=True)
    assert tree(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name != "proj"], "staging left behind"


def test_symlinked_generated_folder_is_not_written_through(tmp_path):
    out = tmp_path / "proj"
    write_project(out, project(1), {}, {}, force=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for p in (out / "src").iterdir():
        p.rename(elsewhere / p.name)
    (out / "src").rmdir()
    (out / "src").symlink_to(elsewhere)
    before = tree(elsewhere)
    with pytest.raises(OutputDirError, match="in the way"):
        write_project(out, project(2), {}, {}, force=True)
    assert tree(elsewhere) == before


@pytest.mark.parametrize("content", ["{}", "[]", "not json", '{"files": []}'])
def test_malformed_manifest_is_refused_untouched(tmp_path, content):
    out = tmp_path / "proj"
    out.mkdir()
    (out / MANIFEST).write_text(content)
    (out / "mine.txt").write_text("x")
    before = tree(out)
    with pytest.raises(OutputDirError, match="manifest"):
        write_project(out, project(1), {}, {}, force=True)
    assert tree(out) == before


def test_bad_output_locations_are_one_line_errors(tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(OutputDirError, match="is a file"):
        write_project(afile / "sub" / "proj", project(1), {}, {}, force=False)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(OutputDirError, match="symbolic link to nothing"):
        write_project(dangling, project(1), {}, {}, force=False)
    assert not (tmp_path / "nowhere").exists()
    if os.geteuid() != 0:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(OutputDirError, match="cannot create"):
            write_project(locked / "proj", project(1), {}, {}, force=False)


def test_project_gets_normal_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_project(tmp_path / "proj", project(1), {}, {}, force=False)
    finally:
        os.umask(old)
    assert (tmp_path / "proj").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "proj" / "src").stat().st_mode & 0o777 == 0o755


def test_unvalidated_project_is_recognised_without_force(tmp_path):
    out = tmp_path / "proj"
    write_project(out, project(1), {}, {}, force=False, mark_unvalidated=True)
    write_project(out, project(2), {}, {}, force=False, mark_unvalidated=True)  # rerun after a kill: allowed
    assert (out / "README.md").read_text() == "v2\n"
    mark_validated(out)
    assert not (out / UNVALIDATED_MARK).exists()
    with pytest.raises(OutputDirError, match="--force"):
        write_project(out, project(3), {}, {}, force=False)


def test_stale_staging_of_dead_runs_is_removed_live_ones_kept(tmp_path):
    out = tmp_path / "proj"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".proj.mcuq-{dead.pid}-stage-abc"
    stale.mkdir()
    (stale / "model.pkl").write_text("secret")
    probe = tmp_path / f".proj.mcuq-{dead.pid}-probe-abc"  # a run killed while it proved the folder writable
    probe.mkdir()
    live = tmp_path / f".proj.mcuq-{os.getpid()}-stage-xyz"
    live.mkdir()
    write_project(out, project(1), {}, {}, force=False)
    assert not stale.exists() and not probe.exists() and live.exists()
    assert [p.name for p in tmp_path.iterdir() if "probe" in p.name] == []  # its own probe is gone too
    # Killed between the two fallback renames: the old project is brought back.
    out.rename(tmp_path / f".proj.mcuq-{dead.pid}-old-q")
    assert clean_stale(out) == [f"restored {out}"]
    assert (out / MANIFEST).is_file()


KILL_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from mcuq.project.writer import write_project
    out, version = Path(sys.argv[1]), int(sys.argv[2])
    files = {f"src/gen_{i}.cpp": (f"// v{version} {i}\\n" * 2000) for i in range(400)}
    user = {f"mine/{i}.txt": "x" for i in range(1)}
    print("go", flush=True)
    write_project(out, files, {}, {"version": version}, force=True)
""")


def _consistent(out: Path) -> int:
    """The single version every generated file of the project belongs to (asserts no mix)."""
    manifest = json.loads((out / MANIFEST).read_text())
    for rel, digest in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == digest, f"{rel} does not match the manifest"
    versions = {(out / rel).read_text().split()[1] for rel in manifest["files"]}
    assert versions == {f"v{manifest['version']}"}
    return int(manifest["version"])


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.6])
def test_kill_9_during_regeneration_leaves_old_or_new(tmp_path, delay):
    out = tmp_path / "proj"
    script = tmp_path / "child.py"
    script.write_text(KILL_CHILD)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(script), str(out), "1"], check=True, env=env, capture_output=True)
    (out / "src" / "app.cpp").write_text("// mine\n")
    proc = subprocess.Popen([sys.executable, str(script), str(out), "2"], env=env, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"go\n"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _consistent(out) in (1, 2)
    assert (out / "src" / "app.cpp").read_text() == "// mine\n"
    subprocess.run([sys.executable, str(script), str(out), "3"], check=True, env=env, capture_output=True)
    assert _consistent(out) == 3
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_quantize_never_overwrites_a_foreign_record(tmp_path, sine_tflite):
    from mcuq.frontend.converter import quantize

    out = tmp_path / "out.tflite"
    record = tmp_path / "out.tflite.mcuq.json"
    record.write_text("my own notes\n")
    with pytest.raises(MCUQError, match="out.tflite.mcuq.json exists and was not written by mcuq"):
        quantize(sine_tflite, None, out)
    assert record.read_text() == "my own notes\n" and not out.exists()
    record.unlink()
    quantize(sine_tflite, None, out)
    quantize(sine_tflite, None, out)  # mcuq's own pair: replaced without --force
    (tmp_path / "dir.tflite").mkdir()
    with pytest.raises(MCUQError, match="not a regular file"):
        quantize(sine_tflite, None, tmp_path / "dir.tflite", force=True)


def test_report_never_replaces_a_users_report(tmp_path):
    (tmp_path / "report.html").write_text("<p>my own report</p>")
    (tmp_path / "report.json").mkdir()
    assert write_report(tmp_path, "<p>mcuq</p>", "{}") == []
    assert (tmp_path / "report.html").read_text() == "<p>my own report</p>"
    (tmp_path / "report.html").unlink()
    (tmp_path / "report.json").rmdir()
    assert write_report(tmp_path, "<p>mcuq 1</p>", "{}") == ["report.html", "report.json"]
    assert write_report(tmp_path, "<p>mcuq 2</p>", "{}") == ["report.html", "report.json"]  # its own: replaced
    (tmp_path / "report.html").write_text("<p>I edited it</p>")
    assert write_report(tmp_path, "<p>mcuq 3</p>", "{}") == ["report.json"]
    assert (tmp_path / "report.html").read_text() == "<p>I edited it</p>"
