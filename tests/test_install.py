"""`bacula-ha install`: executables with an isolated absolute interpreter, idempotent, undoable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from bacula_ha.agents.registry import available
from bacula_ha.cli import main


def test_install_twice_then_uninstall(tmp_path: Path) -> None:
    runner = CliRunner()
    first = runner.invoke(main, ["install", "--ocf-root", str(tmp_path)])
    assert first.exit_code == 0, first.output
    target = tmp_path / "resource.d" / "bacula"
    for name in available():
        path = target / name
        assert path.stat().st_mode & 0o777 == 0o755
        assert path.read_text().splitlines()[0] == f"#!{sys.executable} -I"
    assert "installed" in first.output
    second = runner.invoke(main, ["install", "--ocf-root", str(tmp_path)])
    assert second.exit_code == 0 and "installed" not in second.output
    # Something of the admin's own beside ours survives the uninstall.
    (target / "custom-agent").write_text("#!/bin/sh\n")
    gone = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--uninstall"])
    assert gone.exit_code == 0, gone.output
    assert sorted(p.name for p in target.iterdir()) == ["custom-agent"]


def test_installed_agent_ignores_pythonpath(tmp_path: Path) -> None:
    CliRunner().invoke(main, ["install", "--ocf-root", str(tmp_path)])
    # A hostile bacula_ha on PYTHONPATH must not be what the agent imports.
    evil = tmp_path / "evil" / "bacula_ha"
    evil.mkdir(parents=True)
    (evil / "__init__.py").write_text("raise SystemExit(99)\n")
    agent = tmp_path / "resource.d" / "bacula" / "bacula-dir"
    env = {"PYTHONPATH": str(evil.parent), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([str(agent), "meta-data"], env=env, capture_output=True, text=True)
    assert out.returncode == 0 and "<resource-agent" in out.stdout


def test_install_into_unwritable_root_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(main, ["install", "--ocf-root", str(blocker / "ocf")])
    assert result.exit_code == 1
    assert "cannot create" in result.output and "Traceback" not in result.output
    assert not os.path.exists(blocker / "resource.d")


def test_installed_meta_data_is_the_rendered_declaration(tmp_path: Path) -> None:
    from bacula_ha.agents.registry import metadata

    CliRunner().invoke(main, ["install", "--ocf-root", str(tmp_path)])
    for name in available():
        agent = tmp_path / "resource.d" / "bacula" / name
        out = subprocess.run([str(agent), "meta-data"], env={}, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout == metadata(name).render()
