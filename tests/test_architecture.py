"""The architecture's import rules, read from the source with `ast` and checked on running agents.

- `bacula_ha.ocf` (the OCF library) imports nothing of the rest of bacula_ha;
- the agents (`bacula_ha.agents.*`, the executables in agents/, and everything they import,
  however deep, including imports inside functions) import no click, no jinja2, nothing of the
  generator, the lab or a CLI, and only the standard library outside bacula_ha;
- no import cycles between bacula_ha's modules, nor between its subpackages;
- the layers (LAYERS): each part of bacula_ha imports only from itself or from a lower layer,
  never upward nor sideways into a peer of its own layer;
- shipped code (src/) never imports the test kit (testkit/) nor the tests.

Each failure names the import chain and the file and line of the offending import.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
PACKAGE = "bacula_ha"
AGENT_EXECUTABLES = tuple(sorted((ROOT / "agents").iterdir()))
# What an agent must never load: the CLI's dependencies and the code only the CLI runs.
FORBIDDEN_FOR_AGENTS = ("click", "jinja2", "markupsafe", f"{PACKAGE}.generator", f"{PACKAGE}.lab")


@dataclass(frozen=True)
class Import:
    """One import statement's target, where it is written, and whether it runs at import time."""

    source: str  # the importing module
    target: str  # a bacula_ha module, or the top-level name of anything else
    file: Path
    line: int
    in_function: bool

    def where(self) -> str:
        inside = ", inside a function" if self.in_function else ""
        return f"{self.file.relative_to(ROOT)}:{self.line}{inside}"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {
    _module_name(p): p
    for p in sorted((SRC / PACKAGE).rglob("*.py"))
    if "__pycache__" not in p.parts
}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(name: str) -> str:
    """A bacula_ha name as the module that defines it; anything else as its top-level package."""
    if not name.startswith(PACKAGE):
        return name.split(".")[0]
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def _imports_of(source: str, path: Path, tree: ast.AST) -> Iterator[Import]:
    """Every import that can run: inside functions too, but not under `if TYPE_CHECKING:`."""
    package = source if path.name == "__init__.py" else source.rpartition(".")[0]

    def visit(node: ast.AST, in_function: bool) -> Iterator[Import]:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:  # the `else:` branch is what runs
                yield from visit(child, in_function)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(source, _resolve(alias.name), path, node.lineno, in_function)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            yield Import(source, _resolve(stem), path, node.lineno, in_function)
            if stem.startswith(PACKAGE):
                for alias in node.names:
                    # `from . import x` imports the module x when there is one.
                    if f"{stem}.{alias.name}" in MODULES:
                        yield Import(source, f"{stem}.{alias.name}", path, node.lineno, in_function)
        function = in_function or isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda
        )
        for child in ast.iter_child_nodes(node):
            yield from visit(child, function)

    yield from visit(tree, False)


def _parents(module: str) -> list[str]:
    """Importing a.b.c runs a/__init__ and a/b/__init__ first."""
    parts = module.split(".")
    return [".".join(parts[:n]) for n in range(1, len(parts))]


def _graph() -> dict[str, list[Import]]:
    graph: dict[str, list[Import]] = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        found = list(_imports_of(name, path, tree))
        for imp in list(found):
            if imp.target.startswith(PACKAGE):
                found += [
                    Import(name, p, imp.file, imp.line, imp.in_function)
                    for p in _parents(imp.target)
                    if p in MODULES and p != name
                ]
        graph[name] = [i for i in found if i.target != name]
    return graph


GRAPH = _graph()


def _executable_imports() -> list[Import]:
    found = []
    for exe in AGENT_EXECUTABLES:
        tree = ast.parse(exe.read_text(), str(exe))
        found += [i for i in _imports_of(f"agents/{exe.name}", exe, tree)]
    return found


def _closure(roots: list[Import]) -> dict[str, list[Import]]:
    """Every module reachable from the roots, with the chain of imports that reaches it."""
    chains: dict[str, list[Import]] = {}
    pending = [[r] for r in roots]
    while pending:
        chain = pending.pop(0)
        target = chain[-1].target
        if target in chains:
            continue
        chains[target] = chain
        pending += [[*chain, imp] for imp in GRAPH.get(target, [])]
    return chains


def _show(chain: list[Import]) -> str:
    return " -> ".join(f"{i.target} ({i.where()})" for i in chain)


def _agent_roots() -> list[Import]:
    roots = _executable_imports()
    for name, path in MODULES.items():
        if name.startswith(f"{PACKAGE}.agents."):
            roots.append(Import("agents", name, path, 1, False))
    return roots


def test_the_source_tree_is_read() -> None:
    """The rules below would pass on an empty graph: make sure it is not."""
    assert len(AGENT_EXECUTABLES) == 5
    assert f"{PACKAGE}.ocf.runner" in MODULES
    assert f"{PACKAGE}.agents.director" in _closure(_agent_roots())
    runner = {i.target for i in GRAPH[f"{PACKAGE}.ocf.runner"]}
    assert f"{PACKAGE}.ocf.errors" in runner  # a relative import, resolved


def test_ocf_imports_nothing_of_the_rest_of_bacula_ha() -> None:
    bad = {
        f"{imp.source} imports {imp.target} ({imp.where()})"
        for name, imports in GRAPH.items()
        if name.startswith(f"{PACKAGE}.ocf")
        for imp in imports
        if imp.target.startswith(PACKAGE)
        and not imp.target.startswith(f"{PACKAGE}.ocf")
        and imp.target != PACKAGE
    }
    assert not bad, "\n".join(sorted(bad))


def test_agents_import_no_cli_generator_or_lab_code() -> None:
    bad = []
    for module, chain in _closure(_agent_roots()).items():
        last = module.rsplit(".", 1)[-1]
        if module.startswith(FORBIDDEN_FOR_AGENTS) or last == "cli" or last.endswith("_cli"):
            bad.append(f"{module}: {_show(chain)}")
    assert not bad, "an agent imports:\n" + "\n".join(sorted(bad))


def test_agents_import_only_the_standard_library() -> None:
    bad = [
        f"{module}: {_show(chain)}"
        for module, chain in _closure(_agent_roots()).items()
        if not module.startswith(PACKAGE) and module not in sys.stdlib_module_names
    ]
    assert not bad, "outside the standard library:\n" + "\n".join(sorted(bad))


# The layers, lowest first, by the name under bacula_ha ("" is bacula_ha itself: the version).
# A part imports only from itself or from a lower layer: the OCF library knows nothing of Bacula,
# Bacula's services nothing of the agents, the agents (and the alert agent) nothing of the
# commands' helpers, the site model nothing of the commands that read it, the commands nothing of
# the lab; the click group sees everything, and the man pages read the click group.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("",),
    ("ocf",),
    ("bacula",),
    ("agents", "alert", "pgwait"),  # what Pacemaker runs: the agents, alert, pg_ctl-wait
    ("cliout", "data", "progress"),
    ("site",),
    ("generator", "check", "status", "install", "confsync_cli"),
    ("lab",),
    ("cli",),
    ("manpages",),
)
# Modules that belong to a part named otherwise: install's command line is install.
PART_OF = {"install_cli": "install"}
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}
TEST_SUPPORT = ("testkit", "tests")


def _part(module: str) -> str:
    """The part of bacula_ha a module belongs to: its name under bacula_ha, as LAYERS says it."""
    name = module.split(".")[1] if "." in module else ""
    return PART_OF.get(name, name)


def test_every_part_has_a_layer() -> None:
    parts = {_part(m) for m in MODULES}
    assert parts - set(LEVEL) == set(), "place these in LAYERS: " + ", ".join(
        sorted(parts - set(LEVEL))
    )
    assert {"ocf", "bacula", "agents", "site", "generator", "lab"} <= parts


def _layer_breaches(graph: dict[str, list[Import]]) -> list[str]:
    """Each import of bacula_ha that goes up or sideways, with where it is written."""
    bad = []
    for name, imports in graph.items():
        here = _part(name)
        for imp in imports:
            if not imp.target.startswith(PACKAGE):
                continue
            there = _part(imp.target)
            if there != here and LEVEL[there] >= LEVEL[here]:
                way = "sideways" if LEVEL[there] == LEVEL[here] else "upward"
                bad.append(f"{here} -> {there} ({way}): {name} -> {_show([imp])}")
    return sorted(bad)


def test_each_layer_imports_only_downward() -> None:
    bad = _layer_breaches(GRAPH)
    assert not bad, "imports against the layers:\n" + "\n".join(bad)


def test_shipped_code_never_imports_the_test_kit() -> None:
    bad = [
        f"{name} -> {_show([imp])}"
        for name, imports in GRAPH.items()
        for imp in imports
        if imp.target in TEST_SUPPORT
    ]
    assert not bad, "shipped code imports test support:\n" + "\n".join(sorted(bad))


def test_the_layer_rule_names_the_offending_import() -> None:
    """The rule on made-up imports: upward and sideways are found, downward is not."""
    where = SRC / PACKAGE / "ocf" / "fake.py"
    up = Import(f"{PACKAGE}.ocf.fake", f"{PACKAGE}.lab.lifecycle", where, 3, True)
    sideways = Import(f"{PACKAGE}.check.x", f"{PACKAGE}.status.collect", where, 4, False)
    down = Import(f"{PACKAGE}.lab.x", f"{PACKAGE}.ocf.runner", where, 5, False)
    graph = {i.source: [i] for i in (up, sideways, down)}
    assert _layer_breaches(graph) == [
        "check -> status (sideways): bacula_ha.check.x -> bacula_ha.status.collect"
        " (src/bacula_ha/ocf/fake.py:4)",
        "ocf -> lab (upward): bacula_ha.ocf.fake -> bacula_ha.lab.lifecycle"
        " (src/bacula_ha/ocf/fake.py:3, inside a function)",
    ]


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            connect(node)
    return found


def _edges(group: bool) -> tuple[dict[str, set[str]], dict[tuple[str, str], Import]]:
    """Module (or subpackage) dependencies, without a package's imports of its own modules."""
    edges: dict[str, set[str]] = {}
    why: dict[tuple[str, str], Import] = {}

    def key(module: str) -> str:
        return ".".join(module.split(".")[:2]) if group else module

    for name, imports in GRAPH.items():
        for imp in imports:
            if not imp.target.startswith(PACKAGE) or imp.target in _parents(name):
                continue
            a, b = key(name), key(imp.target)
            if a == b or imp.target == PACKAGE or (name == PACKAGE):
                continue
            edges.setdefault(a, set()).add(b)
            why.setdefault((a, b), imp)
    return edges, why


@pytest.mark.parametrize("group", [False, True], ids=["modules", "subpackages"])
def test_no_import_cycles(group: bool) -> None:
    edges, why = _edges(group)
    report = []
    for component in _cycles(edges):
        members = set(component)
        report.append("cycle: " + ", ".join(component))
        for (a, b), imp in sorted(why.items()):
            if a in members and b in members:
                report.append(f"  {a} imports {b} ({imp.where()})")
    assert not report, "\n".join(report)


# Runs an agent executable as its own __main__ and writes, when it exits, what it imported.
_WRAPPER = """
import atexit, runpy, sys
before, path = set(sys.modules), sys.argv[1]
def report():
    with open(path, "w") as out:
        out.write("\\n".join(sorted(set(sys.modules) - before)))
atexit.register(report)
sys.argv = sys.argv[2:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _loaded_modules(agent: str, action: str, tmp_path: Path) -> set[str]:
    """The modules an agent's run imports (beyond what the interpreter and runpy loaded)."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HA_RSCTMP": str(tmp_path),
        "OCF_RESOURCE_INSTANCE": "architecture",
        "OCF_RESKEY_CRM_meta_timeout": "5000",
        # Paths that exist nowhere: the agent answers (7 or an error), nothing runs.
        "OCF_RESKEY_binary": str(tmp_path / "none" / "bacula-dir"),
        "OCF_RESKEY_config": str(tmp_path / "none.conf"),
        "OCF_RESKEY_client": str(tmp_path / "none" / "psql"),
        "OCF_RESKEY_paths": str(tmp_path),
        "OCF_RESKEY_targets": "peer.invalid",
    }
    report = tmp_path / "modules"
    out = subprocess.run(
        [sys.executable, "-I", "-c", _WRAPPER, str(report), str(ROOT / "agents" / agent), action],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in out.stderr, out.stderr
    return set(report.read_text().split())


@pytest.mark.parametrize("action", ["meta-data", "monitor"])
@pytest.mark.parametrize("agent", [p.name for p in AGENT_EXECUTABLES])
def test_running_agent_loads_only_the_standard_library(
    agent: str, action: str, tmp_path: Path
) -> None:
    loaded = _loaded_modules(agent, action, tmp_path)
    assert f"{PACKAGE}.ocf.runner" in loaded
    bad = sorted(
        m
        for m in loaded
        if (m.split(".")[0] != PACKAGE and m.split(".")[0] not in sys.stdlib_module_names)
        or m.startswith(FORBIDDEN_FOR_AGENTS)
    )
    assert not bad, f"{agent} {action} loaded {bad}"
