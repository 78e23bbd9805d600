"""Man pages, rebuilt from their sources on every run: no stale page after a changed parameter.

The pages are not committed: the Debian build generates them (debian/rules), and these tests
generate them the same way and check them against the meta-data, the click commands and
docs/site-schema.md, and that man(1) renders each without a warning at 80 columns.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
from pathlib import Path

import click
import pytest

from bacula_ha import manpages
from bacula_ha.agents.registry import AGENT_MODULES, metadata
from bacula_ha.cli import main
from bacula_ha.ocf import errors
from bacula_ha.ocf.status import OCFStatus

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
SCHEMA = ROOT / "docs" / "site-schema.md"


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("man")
    written = manpages.write(out, SCHEMA)
    return {path.name: path for path in written}


def rendered(page: Path) -> str:
    """The page as man(1) shows it at 80 columns, plain text; fails on any groff warning."""
    env = {**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": "", "LANG": "C.UTF-8"}
    out = subprocess.run(
        ["man", "--warnings", "-l", str(page)], env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", f"{page.name}: {out.stderr}"
    # man -l on a pipe prints overstrikes for bold; strip them.
    return re.sub(r".\x08", "", out.stdout)


def test_every_page_is_written(pages: dict[str, Path]) -> None:
    expected = {f"ocf_bacula_{agent}.7" for agent in AGENT_MODULES}
    assert set(pages) == expected | {"bacula-ha.1", "bacula-ha-site.5"}


def test_every_page_renders_without_warnings(pages: dict[str, Path]) -> None:
    for page in pages.values():
        text = rendered(page)
        assert "NAME" in text and "SEE ALSO" in text, page.name


@pytest.mark.parametrize("agent", list(AGENT_MODULES))
def test_agent_page_is_its_meta_data(agent: str, pages: dict[str, Path]) -> None:
    meta = metadata(agent)
    page = rendered(pages[f"ocf_bacula_{agent}.7"])
    text = " ".join(page.split())
    assert f"ocf_bacula_{agent} - {meta.shortdesc}" in text
    blocks = _blocks(page, "SUPPORTED PARAMETERS", "SUPPORTED ACTIONS")
    assert list(blocks) == [p.name for p in meta.parameters]
    for param in meta.parameters:
        block = blocks[param.name]
        assert param.shortdesc in block
        facts = re.search(r"\((?:required|optional)[^)]*\)$", block)
        assert facts, block
        fact = facts.group(0)
        assert param.content_type in fact
        assert ("not reloadable" not in fact) == param.reloadable, param.name
        assert (f'default "{param.default}"' if param.default else "no default") in fact
    for action in meta.actions:
        expected = f"Suggested minimum timeout: {action.timeout}s."
        if action.interval is not None:
            expected += f" Suggested interval: {action.interval}s."
        if action.depth is not None:
            expected += f" Depth (OCF_CHECK_LEVEL): {action.depth}."
        assert f"{action.name} " in text and expected in text, action
    for heading in ("EXIT STATUS", "EXAMPLE CRM SHELL", "EXAMPLE PCS"):
        assert heading in text
    assert f"primitive p_{agent.replace('-', '_')} ocf:bacula:{agent}" in text
    assert f"pcs resource create p_{agent.replace('-', '_')} ocf:bacula:{agent}" in text


def _blocks(page: str, start: str, end: str) -> dict[str, str]:
    """The entries of a section: a name at indent 7, its text at indent 11 (joined)."""
    section = page.split(f"\n{start}\n")[1].split(f"\n{end}\n")[0]
    blocks: dict[str, list[str]] = {}
    current: list[str] = []
    for row in section.splitlines():
        heading = re.fullmatch(r" {7}(\S+)", row)
        if heading:
            current = blocks.setdefault(heading.group(1), [])
        elif row.strip():
            current.append(row.strip())
    return {name: " ".join(rows) for name, rows in blocks.items()}


def _codes_used(agent: str) -> set[int]:
    """Exit codes the agent's module and the Bacula modules it imports name (statuses, errors)."""

    def file_of(module: str) -> Path:
        path = SRC / module.replace(".", "/")
        return path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"

    main_file = file_of(AGENT_MODULES[agent])
    files = {main_file}
    for node in ast.walk(ast.parse(main_file.read_text())):
        module = node.module if isinstance(node, ast.ImportFrom) and node.level == 2 else None
        if module and module.split(".")[0] == "bacula":
            for alias in node.names:  # type: ignore[attr-defined]
                sub = file_of(f"bacula_ha.{module}.{alias.name}")
                files.add(sub if sub.exists() else file_of(f"bacula_ha.{module}"))
    # A subpackage (bacula/confsync/) counts with all its modules.
    files |= {m for f in list(files) if f.name == "__init__.py" for m in f.parent.glob("*.py")}
    codes: set[int] = set()
    for path in files:
        tree = ast.parse(path.read_text())
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        names |= {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        codes |= {OCFStatus[n].value for n in names if n in OCFStatus.__members__}
        for name in names:
            cls = getattr(errors, name, None)
            if isinstance(cls, type) and issubclass(cls, errors.OCFError) and name != "OCFError":
                codes.add(cls.status.value)
    return codes


@pytest.mark.parametrize("agent", list(AGENT_MODULES))
def test_agent_page_explains_every_exit_code_the_agent_uses(
    agent: str, pages: dict[str, Path]
) -> None:
    assert agent in manpages.EXIT_CODES  # a new agent needs its own meanings
    used = _codes_used(agent)
    assert {1, 7} <= used  # the scan finds something: every agent fails and stops
    section = rendered(pages[f"ocf_bacula_{agent}.7"]).split("EXIT STATUS")[1]
    section = section.split("EXAMPLE CRM SHELL")[0]
    listed = {int(m) for m in re.findall(r"^ {7}(\d+) ", section, re.MULTILINE)}
    assert used | {0, 2, 3, 7} <= listed, sorted(used - listed)


def test_command_page_lists_every_subcommand_and_option(pages: dict[str, Path]) -> None:
    text = " ".join(rendered(pages["bacula-ha.1"]).split())
    count = 0
    for path, command in manpages._walk(main):
        count += 1
        assert " ".join(path) in text
        ctx = click.Context(command, info_name=path[-1])
        for param in command.get_params(ctx):
            # A hidden option (status --count, a test's hook) is in no help, so in no page.
            if isinstance(param, click.Option) and param.name != "help" and not param.hidden:
                assert param.opts[0] in text, (path, param.opts)
    assert count >= 5  # install, generate, import-haresources, lab ..., confsync ...
    assert "--check" in text and "exits 0 when every installed agent matches" in text


def test_site_page_is_the_schema_document(pages: dict[str, Path]) -> None:
    text = " ".join(rendered(pages["bacula-ha-site.5"]).split())
    schema = SCHEMA.read_text()
    for heading in re.findall(r"^###+ (.+)$", schema, re.MULTILINE):
        assert heading.replace("`", "") in text, heading
    # Every key of every table of the schema.
    for key in re.findall(r"^\| `([^`]+)` \|", schema, re.MULTILINE):
        assert key in text, key
    assert "-INFINITY" in text  # a minus survives the roff escaping


def test_roff_escaping_keeps_requests_out_of_text() -> None:
    assert manpages.line(".TH not a request") == "\\&.TH not a request"
    assert manpages.line("'quoted") == "\\&'quoted"
    assert manpages.escape("a\\b-c'd") == "a\\eb\\-c\\(aqd"
    assert manpages.escape("\u00e9") == "\\[u00E9]"
