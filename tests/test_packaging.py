"""The package outside the checkout: a built wheel in a fresh virtualenv; versioned agents.

The wheel is built once per session (from a copy of the work tree, so the checkout gets no build
products) with Debian's pip and setuptools, without build isolation; the fresh virtualenv gets
click and jinja2 from the configured index.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha import __version__
from bacula_ha.agents.registry import available, metadata
from bacula_ha.cli import main
from bacula_ha.data import SHIPPED, data_path
from bacula_ha.install import LIB_TOOLS

from .tiers import slow_fixture

ROOT = Path(__file__).resolve().parent.parent
SYSTEM_PYTHON = "/usr/bin/python3"
# What a source tree needs to build the wheel (what MANIFEST.in puts in an sdist).
BUILD_INPUTS = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "src", *SHIPPED)
# The test kit (testkit/ beside src/: throwaway servers, lab helpers for tests and benchmarks),
# under any of its names past and present: never in what admins install.
TEST_KIT = re.compile(r"(^|/)(testkit|sandbox)(/|$)|(^|/)lab/testing\.py$")


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tree = tmp_path_factory.mktemp("wheel-src")
    for name in BUILD_INPUTS:
        source = ROOT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
            shutil.copytree(source, tree / name, ignore=ignore)
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run(
        [
            *(SYSTEM_PYTHON, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"),
            *("--disable-pip-version-check", "-w", str(out), str(tree)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (built,) = out.glob("bacula_ha-*.whl")
    return built


@pytest.fixture(scope="session")
@slow_fixture
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the checkout holding only the wheel and its dependencies."""
    home = tmp_path_factory.mktemp("venv") / "v"
    subprocess.run([SYSTEM_PYTHON, "-m", "venv", str(home)], check=True, timeout=120)
    pip = subprocess.run(
        [str(home / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return home


def states(output: str, state: str) -> int:
    """How many lines of `bacula-ha install` output start with this action or state."""
    return sum(line.split(" ", 1)[0] == state for line in output.splitlines())


def run_in(venv: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """A command of the installed package, away from the checkout (no PYTHONPATH, other cwd)."""
    env = {"PATH": f"{venv / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_wheel_carries_templates_and_example_sites(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for directory, patterns in SHIPPED.items():
        expected = {p.name for pattern in patterns for p in (ROOT / directory).glob(pattern)}
        assert expected, directory
        for name in expected:
            assert f"bacula_ha/_data/{directory}/{name}" in names
    # setup.py copies what bacula_ha.data looks for: the two lists are one list.
    assert _setup_shipped() == {d: list(p) for d, p in SHIPPED.items()}


def test_wheel_carries_no_test_kit(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "bacula_ha/lab/cli.py" in names  # the lab itself ships: `bacula-ha lab`
    assert [n for n in names if TEST_KIT.search(n)] == []
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"bacula_ha", f"bacula_ha-{__version__}.dist-info"}


def _setup_shipped() -> object:
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "SHIPPED":
            value = ast.literal_eval(node.value)
            return {d: list(p) for d, p in value.items()}
    raise AssertionError("setup.py defines no SHIPPED")


def test_installed_wheel_generates_both_formats_like_the_checkout(
    venv: Path, tmp_path: Path
) -> None:
    site = ROOT / "examples" / "lab-site.toml"
    for fmt in ("crm", "pcs"):
        installed = run_in(venv, tmp_path, "bacula-ha", "generate", str(site), "--format", fmt)
        assert installed.returncode == 0, installed.stderr
        checkout = CliRunner().invoke(main, ["generate", str(site), "--format", fmt])
        assert checkout.exit_code == 0, checkout.output
        assert installed.stdout == checkout.stdout
        assert "ocf:bacula:bacula-dir" in installed.stdout


def test_installed_wheel_finds_the_lab_site_in_the_package(venv: Path, tmp_path: Path) -> None:
    code = "from bacula_ha.lab.stack import default_site; print(default_site())"
    out = run_in(venv, tmp_path, str(venv / "bin" / "python"), "-c", code)
    assert out.returncode == 0, out.stderr
    found = Path(out.stdout.strip())
    assert found.is_relative_to(venv) and "site-packages" in found.parts
    assert found.read_text() == (ROOT / "examples" / "lab-site.toml").read_text()


def test_installed_wheel_installs_agents_that_answer_meta_data(venv: Path, tmp_path: Path) -> None:
    root = tmp_path / "ocf"
    done = run_in(venv, tmp_path, "bacula-ha", "install", "--ocf-root", str(root))
    assert done.returncode == 0, done.stderr
    # ... and the lib tools: the alert agent, pg_ctl-wait
    assert states(done.stdout, "installed") == len(available()) + len(LIB_TOOLS)
    for name in available():
        agent = root / "resource.d" / "bacula" / name
        assert agent.read_text().splitlines()[0] == f"#!{venv / 'bin' / 'python3'} -I"
        out = subprocess.run([str(agent), "meta-data"], env={}, capture_output=True, text=True)
        assert out.returncode == 0 and out.stdout == metadata(name).render()
    check = run_in(venv, tmp_path, "bacula-ha", "install", "--ocf-root", str(root), "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert states(check.stdout, "current") == len(available()) + len(LIB_TOOLS)


def test_data_outside_the_shipped_set_is_refused() -> None:
    with pytest.raises(ValueError):
        data_path("src")
    assert data_path("crm-templates", "site.crm.j2").is_file()


# -- versions and upgrades --------------------------------------------------------------------


def _age(path: Path, version: str) -> None:
    """Make an installed agent look written by another version of bacula-ha."""
    text = path.read_text()
    assert f"VERSION = {__version__!r}" in text
    path.write_text(text.replace(f"VERSION = {__version__!r}", f"VERSION = {version!r}"))


def test_install_replaces_an_agent_left_by_another_version(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["install", "--ocf-root", str(tmp_path)]).exit_code == 0
    target = tmp_path / "resource.d" / "bacula"
    _age(target / "bacula-dir", "0.0.9")
    check = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"])
    assert check.exit_code == 1
    assert re.search(rf"stale +{target}/bacula-dir \(version 0.0.9, package ", check.output)
    # The others and the lib tools.
    assert states(check.output, "current") == len(available()) - 1 + len(LIB_TOOLS)
    upgrade = runner.invoke(main, ["install", "--ocf-root", str(tmp_path)])
    assert upgrade.exit_code == 0, upgrade.output
    assert f"updated   {target}/bacula-dir (was 0.0.9)" in upgrade.output
    assert states(upgrade.output, "unchanged") == len(available()) - 1 + len(LIB_TOOLS)
    assert runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"]).exit_code == 0
    # The replaced copy is the current one: uninstall still recognises and removes it.
    runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--uninstall"])
    assert not target.exists()


def test_check_names_missing_and_different_agents(tmp_path: Path) -> None:
    runner = CliRunner()
    empty = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"])
    missing = states(empty.output, "missing")
    assert empty.exit_code == 1 and missing == len(available()) + len(LIB_TOOLS)
    assert not (tmp_path / "resource.d").exists()  # --check writes nothing
    runner.invoke(main, ["install", "--ocf-root", str(tmp_path)])
    other = runner.invoke(
        main,
        ["install", "--ocf-root", str(tmp_path), "--check", "--interpreter", "/usr/bin/python3"],
    )
    assert other.exit_code == 1
    assert f"ran {sys.executable}, not /usr/bin/python3" in other.output
    agent = tmp_path / "resource.d" / "bacula" / "bacula-fd"
    agent.write_text(agent.read_text() + "# edited by hand\n")
    edited = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check"])
    assert (
        edited.exit_code == 1
        and "differs   " in edited.output
        and "content differed" in edited.output
    )
    both = runner.invoke(main, ["install", "--ocf-root", str(tmp_path), "--check", "--uninstall"])
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_one_version_everywhere() -> None:
    changelog = (ROOT / "debian" / "changelog").read_text().splitlines()[0]
    assert re.match(rf"bacula-ha \({re.escape(__version__)}(-\d+)?\) ", changelog), changelog
    assert all(metadata(name).version == __version__ for name in available())
