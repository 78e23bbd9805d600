"""The picture formats (dot, svg) and the CIB format: content, Graphviz, and the command line."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from bacula_ha.generator import dot
from bacula_ha.generator.cli import generate
from bacula_ha.generator.generate import generate_text
from bacula_ha.generator.plan import build
from bacula_ha.site.parse import load_site
from tests.test_generator_helpers import ROOT

TWO_DC = ROOT / "examples" / "two-dc.toml"


def test_dot_shows_data_centres_groups_placement_order_and_fencing() -> None:
    text = generate_text(TWO_DC, "dot")
    plan = build(load_site(TWO_DC))
    assert 'subgraph cluster_dc0 {\n        label="data centre dc1"' in text
    assert 'subgraph cluster_dc1 {\n        label="data centre dc2"' in text
    for block in plan.blocks:
        for group in block.groups:
            # Every member appears in order inside its group's box.
            positions = [text.index(f"{m.id} <I>") for m in group.members]
            assert positions == sorted(positions), group.id
    assert '"dir1-group" -> "node:dc1-n1" [color=darkgreen' in text
    assert '"dir1-group" -> "node:dc2-n1" [color=grey35, style=dashed]' in text
    assert '"cat1-ip" -> "dir1-dir" [color=blue3' in text  # starts before
    assert '"dir1-group" -> "cat1-group" [color=purple' in text  # runs with
    assert '"cat2-ip" -> "dir2-dir" [color=blue3' in text
    assert '"dir2-group" -> "cat2-group"' not in text  # with_catalog = false
    assert '"fence-dc1-n1" -> "node:dc1-n1" [color=red3]' in text
    assert "migration-threshold=3, failure-timeout=600s" in text


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_svg_is_drawn_by_graphviz(tmp_path: Path) -> None:
    out = tmp_path / "site.svg"
    result = CliRunner().invoke(generate, [str(TWO_DC), "--format", "svg", "-o", str(out)])
    assert result.exit_code == 0, result.output
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert {"dc1-n1", "Director dir1", "fence-dc2-n2"} <= texts


def test_svg_without_graphviz_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dot.shutil, "which", lambda name: None)
    out = tmp_path / "site.svg"
    result = CliRunner().invoke(generate, [str(TWO_DC), "--format", "svg", "-o", str(out)])
    assert result.exit_code == 1
    assert "needs Graphviz's `dot` (Debian: apt install graphviz)" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_cib_format_is_a_configuration_element() -> None:
    root = ET.fromstring(generate_text(TWO_DC, "cib"))
    assert root.tag == "configuration"
    assert [c.tag for c in root] == [
        "crm_config",
        "rsc_defaults",
        "resources",
        "constraints",
        "fencing-topology",  # its [connectivity] has fence heuristics
        "alerts",  # two-dc.toml has an [alerts] section
    ]
    group = root.find("resources/group[@id='dir1-group']")
    assert group is not None
    assert [p.get("id") for p in group.iterfind("primitive")] == [
        "dir1-ip",
        "dir1-dir",
        "dir1-confsync",
    ]


def test_unknown_format_is_refused_by_the_command_line() -> None:
    result = CliRunner().invoke(generate, [str(TWO_DC), "--format", "png"])
    assert result.exit_code == 2
    assert "'crm', 'pcs', 'cib', 'dot', 'svg', 'corosync-quorum'" in result.output
