"""Golden files: each example as crm, pcs and dot equals tests/golden/ (tests/golden/regenerate)."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from bacula_ha.generator.generate import generate_text
from tests.test_generator_helpers import EXAMPLES, ROOT

GOLDEN = ROOT / "tests" / "golden"
REGENERATE = os.environ.get("BACULA_HA_REGENERATE_GOLDEN") == "1"
SUFFIX = {"crm": ".crm", "pcs": ".pcs.sh", "dot": ".dot"}


@pytest.mark.parametrize("fmt", sorted(SUFFIX))
@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_output_matches_golden_file(
    example: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Relative to the repository, so the path in the header is the same on every machine.
    monkeypatch.chdir(ROOT)
    text = generate_text(example.relative_to(ROOT), fmt)
    golden = GOLDEN / f"{example.stem}{SUFFIX[fmt]}"
    if REGENERATE:
        # Nothing is compared in this mode: say so rather than pass a file against itself.
        golden.write_text(text)
        pytest.skip(f"{golden.name} regenerated: review git diff tests/golden")
    assert golden.exists(), f"{golden} missing: run tests/golden/regenerate"
    expected = golden.read_text()
    if text != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(True), text.splitlines(True), str(golden), "generated", n=2
            )
        )
        pytest.fail(f"{golden.name} differs (tests/golden/regenerate if intended):\n{diff}")


def test_every_golden_file_has_an_example() -> None:
    expected = {f"{e.stem}{s}" for e in EXAMPLES for s in SUFFIX.values()}
    present = {p.name for p in GOLDEN.iterdir() if p.suffix in (".crm", ".sh", ".dot")}
    assert present <= expected, f"stale golden files: {sorted(present - expected)}"
    assert len(EXAMPLES) >= 3
