"""`bacula-ha install`: executables with an isolated absolute interpreter, idempotent, undoable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.agents.registry import AGENT_MODULES, available
from bacula_ha.cli import main
from bacula_ha.install import LIB_TOOLS


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


# -- the interpreter is proven before anything is written ---------------------------------------

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python 3 without bacula_ha: a fresh virtualenv of the system's python3, nothing in it."""
    home = tmp_path_factory.mktemp("bare") / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(home)], check=True)
    return home / "bin" / "python3"


@pytest.fixture(scope="module")
def other_version_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python whose bacula_ha is another version (and holds no agent)."""
    home = tmp_path_factory.mktemp("other") / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(home)], check=True)
    (site,) = home.glob("lib/python3*/site-packages")
    (site / "bacula_ha").mkdir()
    (site / "bacula_ha" / "__init__.py").write_text('__version__ = "0.0.1"\n')
    return home / "bin" / "python3"


def _tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root (hidden ones too) with its content; None for a directory."""
    return {
        str(p.relative_to(root)): None if p.is_dir() else p.read_bytes()
        for p in sorted(root.rglob("*"))
    }


BAD = {
    # interpreter -> what the refusal says
    "bare": "cannot import bacula_ha: ModuleNotFoundError: No module named 'bacula_ha'",
    "other-version": "imports bacula-ha 0.0.1, not ",
    "nonexistent": "/nonexistent/python does not exist",
    "not-python": "/bin/false -I cannot run the import check",
    "relative": "is not an absolute path",
}


def _bad_interpreter(kind: str, request: pytest.FixtureRequest) -> str:
    if kind == "bare":
        return str(request.getfixturevalue("bare_python"))
    if kind == "other-version":
        return str(request.getfixturevalue("other_version_python"))
    return {"nonexistent": "/nonexistent/python", "not-python": "/bin/false"}.get(kind, "python3")


@pytest.mark.parametrize("kind", sorted(BAD))
def test_install_refuses_an_interpreter_that_cannot_run_the_agents(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    interpreter = _bad_interpreter(kind, request)
    root = tmp_path / "ocf"
    runner = CliRunner()
    # Into a fresh OCF root: nothing at all is left behind, not even a directory.
    fresh = runner.invoke(main, ["install", "--ocf-root", str(root), "--interpreter", interpreter])
    assert fresh.exit_code == 1, fresh.output
    assert BAD[kind] in fresh.output and "Traceback" not in fresh.output
    assert not root.exists(), _tree(root)
    # Over a working installation: not one byte changes, no scratch file stays.
    assert runner.invoke(main, ["install", "--ocf-root", str(root)]).exit_code == 0
    (root / "resource.d" / "heartbeat").mkdir()  # someone else's provider, beside ours
    before = _tree(root)
    again = runner.invoke(main, ["install", "--ocf-root", str(root), "--interpreter", interpreter])
    assert again.exit_code == 1 and BAD[kind] in again.output, again.output
    assert _tree(root) == before


def test_refusal_says_what_to_do(bare_python: Path, tmp_path: Path) -> None:
    out = CliRunner().invoke(
        main, ["install", "--ocf-root", str(tmp_path / "ocf"), "--interpreter", str(bare_python)]
    )
    assert out.exit_code == 1
    lines = out.output.splitlines()
    assert lines[0] == f"refused: the agents cannot run with {bare_python}; nothing was installed"
    assert lines[1].startswith(f"  every agent: {bare_python} -I cannot import bacula_ha: ")
    assert f"bin/python3: {sys.executable} runs this command" in lines[2]


def test_interpreter_that_cannot_exec_the_agent_is_refused(tmp_path: Path) -> None:
    """The meta-data runs through the agent's own #! line: a path the kernel splits is refused."""
    # This very virtualenv, under a name with a space: it imports bacula_ha, the #! line cannot.
    spaced = tmp_path / "with space"
    spaced.symlink_to(Path(sys.executable).parent.parent)
    python = spaced / "bin" / Path(sys.executable).name
    imports = [str(python), "-I", "-c", "import bacula_ha.agents.director"]
    assert subprocess.run(imports, env={}).returncode == 0
    out = CliRunner().invoke(
        main,
        ["install", "--ocf-root", str(tmp_path / "ocf"), "--interpreter", str(python)],
    )
    assert out.exit_code == 1 and "meta-data" in out.output, out.output
    assert not (tmp_path / "ocf").exists()


def test_no_verify_installs_for_a_package_build_and_check_finds_it_broken(
    bare_python: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    argv = ["install", "--ocf-root", str(tmp_path), "--interpreter", str(bare_python)]
    done = runner.invoke(main, [*argv, "--no-verify"])
    assert done.exit_code == 0, done.output
    check = runner.invoke(main, [*argv, "--check"])
    assert check.exit_code == 1
    lines = check.output.splitlines()
    assert len(lines) == len(available()) + len(LIB_TOOLS)  # and the alert agent, pg_ctl-wait
    for line in lines:
        assert line.startswith("broken    "), line
        assert f"({bare_python} -I cannot import bacula_ha: ModuleNotFoundError" in line
    usage = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check", "--no-verify"])
    assert usage.exit_code == 2
    # Such an agent (or one whose virtualenv went away) says so to Pacemaker: 5, no traceback.
    agent = tmp_path / "resource.d" / "bacula" / "bacula-dir"
    env = {"OCF_ROOT": str(tmp_path), "OCF_RESOURCE_INSTANCE": "d"}
    out = subprocess.run([str(agent), "monitor"], env=env, capture_output=True, text=True)
    assert out.returncode == 5 and "Traceback" not in out.stderr, out.stderr
    assert out.stderr.splitlines() == [
        f"{bare_python} cannot import bacula_ha",
        "ocf-exit-reason:bacula_ha is not importable: see bacula-ha install --check",
    ]


def test_check_reports_each_agent_whose_interpreter_cannot_import(
    bare_python: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["install", "--ocf-root", str(tmp_path)]).exit_code == 0
    good = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"])
    assert good.exit_code == 0 and good.output.count("current") == len(available()) + len(LIB_TOOLS)
    target = tmp_path / "resource.d" / "bacula"
    # One agent moved to a Python without the package, one to a Python that is gone.
    for name, python in (("bacula-sd", str(bare_python)), ("bacula-fd", "/nonexistent/python")):
        text = (target / name).read_text().split("\n", 1)[1]
        (target / name).write_text(f"#!{python} -I\n{text}")
    alert = tmp_path / "lib" / "bacula" / "bacula-ha-alert"
    alert.write_text(f"#!{bare_python} -I\n" + alert.read_text().split("\n", 1)[1])
    bad = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"])
    assert bad.exit_code == 1
    assert f"broken    {target}/bacula-sd ({bare_python} -I cannot import bacula_ha" in bad.output
    assert f"broken    {target}/bacula-fd (/nonexistent/python does not exist)" in bad.output
    assert f"broken    {alert} ({bare_python} -I cannot import bacula_ha" in bad.output
    assert f"current   {target}/bacula-dir " in bad.output
    assert "Traceback" not in bad.output
    # install mends them.
    assert runner.invoke(main, ["install", "--ocf-root", str(tmp_path)]).exit_code == 0
    assert runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"]).exit_code == 0


# -- the checkout's agents ----------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(AGENT_MODULES))
def test_checkout_agent_runs_on_the_system_python(name: str, tmp_path: Path) -> None:
    """agents/NAME runs the checkout's src/ with its #! python3, from anywhere, through a link."""
    from bacula_ha.agents.registry import metadata

    link = tmp_path / name
    link.symlink_to(ROOT / "agents" / name)
    for path in (ROOT / "agents" / name, link):
        out = subprocess.run(
            [str(path), "meta-data"], env={}, cwd=tmp_path, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == metadata(name).render()


def test_checkout_agent_copied_alone_says_how_to_run_it(tmp_path: Path) -> None:
    alone = tmp_path / "bacula-dir"
    alone.write_bytes((ROOT / "agents" / "bacula-dir").read_bytes())
    alone.chmod(0o755)
    out = subprocess.run([str(alone), "meta-data"], env={}, capture_output=True, text=True)
    assert out.returncode == 5  # OCF_ERR_INSTALLED
    assert "Traceback" not in out.stderr
    assert "cannot import bacula_ha" in out.stderr and "bacula-ha install" in out.stderr
    reason = out.stderr.splitlines()[-1]
    assert reason.startswith("ocf-exit-reason:") and len(reason) <= 128 + len("ocf-exit-reason:")
