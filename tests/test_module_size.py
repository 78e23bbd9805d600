"""No module over about 500 lines without its reason at its top.

The rule that config sync's package had for itself, for the whole tree: every module under src/
and testkit/ longer than LIMIT lines says why at its top, in its docstring or in a comment before
its first statement, with the words "on purpose" (e.g. "Over 1,000 lines in one module on
purpose: ..."). A long module without one is where a split is due.
"""

from __future__ import annotations

import ast
import io
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREES = (ROOT / "src", ROOT / "testkit")
LIMIT = 500
REASON = "on purpose"


def _top(text: str) -> str:
    """The module's docstring and the comments before its first statement other than it."""
    tree = ast.parse(text)
    body = tree.body
    docstring = ast.get_docstring(tree) or ""
    first = body[1 if docstring else 0].lineno if len(body) > (1 if docstring else 0) else 10**9
    comments = [
        tok.string
        for tok in tokenize.generate_tokens(io.StringIO(text).readline)
        if tok.type == tokenize.COMMENT and tok.start[0] < first
    ]
    return " ".join([docstring, *comments])


def _modules() -> list[Path]:
    return sorted(p for tree in TREES for p in tree.rglob("*.py") if "__pycache__" not in p.parts)


def test_the_tree_is_read() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _modules()}
    assert "src/bacula_ha/ocf/runner.py" in names and "testkit/sandbox/server.py" in names


def test_long_modules_say_why_at_their_top() -> None:
    unexplained = []
    for path in _modules():
        text = path.read_text()
        lines = text.count("\n")
        if lines > LIMIT and REASON not in " ".join(_top(text).split()):
            unexplained.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not unexplained, (
        f'over {LIMIT} lines without a reason ("{REASON}") in the docstring or the comments '
        "at the top:\n" + "\n".join(unexplained)
    )


def test_the_reason_is_found_in_a_docstring_or_a_leading_comment() -> None:
    assert REASON in _top('"""Long on purpose: one concern."""\nx = 1\n')
    assert REASON in _top('"""Docstring."""\n\n# Long on purpose: one concern.\nimport os\n')
    assert REASON not in _top('"""Docstring."""\nimport os\n# on purpose, but too late\n')
