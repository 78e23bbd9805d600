"""The code stays typed (mypy --strict on src/) and lint-clean (ruff), checked by the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@pytest.mark.slow  # the whole tree, and caches written into the checkout
def test_mypy_strict_on_src() -> None:
    out = subprocess.run([str(BIN / "mypy"), "src"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.slow  # the whole tree, and caches written into the checkout
def test_ruff_check() -> None:
    out = subprocess.run(
        [str(BIN / "ruff"), "check", "src", "tests", "bench", "agents"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_agents_import_only_the_standard_library() -> None:
    """click and jinja2 (and anything else third-party) never sit on an agent's import path."""
    code = (
        "import sys\n"
        "from bacula_ha.agents.registry import AGENT_MODULES, available\n"
        "import importlib\n"
        "for name in available(): importlib.import_module(AGENT_MODULES[name])\n"
        "import bacula_ha.ocf.runner\n"
        "third = {'click', 'jinja2', 'markupsafe'}\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in third)\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_cli_imports_only_the_subcommand_it_runs() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from bacula_ha.cli import main\n"
        "r = CliRunner().invoke(main, ['generate', '--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.startswith(('bacula_ha.lab', "
        "'bacula_ha.confsync', 'bacula_ha.bacula.confsync'))))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
