"""Every agent's meta-data: valid for Pacemaker and pcs (OCF 1.1) and ocf-tester (ra-api-1 DTD)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bacula_ha.agents.registry import AGENT_MODULES, available, metadata
from bacula_ha.install import provider_dir

from .fixtures_agents import SYSTEM_OCF_ROOT

RNG = "/usr/share/pcs/data/ocf-1.1.rng"
DTD_DIR = "/usr/share/resource-agents"
# Named here, not taken from available(): an agent whose module went missing must fail the
# tests below, not drop out of them.
AGENTS = ("bacula-dir", "bacula-sd", "bacula-fd", "bacula-catalog", "bacula-confsync")


def test_all_five_agents_exist() -> None:
    assert sorted(AGENT_MODULES) == sorted(AGENTS)
    assert sorted(available()) == sorted(AGENTS)
    for name in AGENTS:
        assert metadata(name).name == name


@pytest.mark.parametrize("name", AGENTS)
def test_rendered_metadata_passes_both_schemas(name: str, tmp_path: Path) -> None:
    xml = metadata(name).render()
    doc = tmp_path / "md.xml"
    doc.write_text(xml)
    dtd = subprocess.run(
        ["xmllint", "--noout", "--valid", "-"],
        input=xml,
        text=True,
        cwd=DTD_DIR,
        capture_output=True,
    )
    assert dtd.returncode == 0, dtd.stderr
    rng = subprocess.run(
        ["xmllint", "--noout", "--relaxng", RNG, str(doc)], capture_output=True, text=True
    )
    assert rng.returncode == 0, rng.stderr


@pytest.mark.parametrize("name", AGENTS)
def test_every_action_has_a_timeout_and_monitors_distinct_intervals(name: str) -> None:
    md = metadata(name)
    assert all(a.timeout > 0 for a in md.actions)
    intervals = [a.interval for a in md.actions if a.name == "monitor"]
    assert len(intervals) == len(set(intervals))
    assert md.action("meta-data") and md.action("validate-all")


@pytest.mark.parametrize("name", AGENTS)
def test_pacemaker_reads_installed_metadata(name: str, ocf_root: Path, tmp_path: Path) -> None:
    shown = subprocess.run(
        ["crm_resource", "--show-metadata", f"ocf:bacula:{name}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    doc = tmp_path / "md.xml"
    doc.write_text(shown.stdout)
    rng = subprocess.run(
        ["xmllint", "--noout", "--relaxng", RNG, str(doc)], capture_output=True, text=True
    )
    assert rng.returncode == 0, rng.stderr


@pytest.mark.parametrize("name", AGENTS)
def test_pcs_describe_lists_every_parameter(name: str, ocf_root: Path) -> None:
    out = subprocess.run(
        ["pcs", "resource", "describe", f"ocf:bacula:{name}", "--full"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    for param in metadata(name).parameters:
        assert param.name in out.stdout


@pytest.mark.parametrize("name", AGENTS)
def test_meta_data_as_nobody_with_empty_environment(name: str, ocf_root: Path) -> None:
    agent = provider_dir(SYSTEM_OCF_ROOT) / name
    out = subprocess.run(
        ["su", "nobody", "-s", "/bin/sh", "-c", f"env -i {agent} meta-data"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("<?xml") and f'name="{name}"' in out.stdout


def test_xml_special_characters_are_escaped() -> None:
    from bacula_ha.ocf.metadata import Action, MetaData, Parameter

    md = MetaData(
        "x",
        "1",
        's <b> & "q"',
        "l ]]> <!-- -->",
        (Parameter("p", "a&b", "<c>", default='"d" & <e>'),),
        (Action("start", 5),),
    )
    xml = md.render()
    import xml.etree.ElementTree as ET

    root = ET.fromstring(xml.split("]>", 1)[1])
    assert root.findtext("shortdesc") == 's <b> & "q"'
    assert root.find("parameters/parameter/content").get("default") == '"d" & <e>'  # type: ignore[union-attr]
