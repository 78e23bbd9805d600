"""Hostile values: refused with a message, or quoted so that the CIB holds the literal value."""
# ruff: noqa: E501  (TOML site text and long parametrised cases read better unwrapped)

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bacula_ha.generator.errors import SiteError
from bacula_ha.generator.plan import build
from bacula_ha.generator.render import render
from bacula_ha.generator.schema import parse_site
from tests.test_generator_helpers import (
    apply_crm,
    apply_pcs,
    empty_cib,
    normalised,
    ocf_agents,
    verify,
)

__all__ = ["ocf_agents"]


def hostile_values(canary: Path) -> list[str]:
    return [
        f"$(touch {canary})",
        f"`touch {canary}`",
        f"x; touch {canary}; y",
        f"x && touch {canary} || true",
        "a \"double\" and 'single' quotes",
        "back\\slash \\\" \\' and a trailing \\",
        "x # not a comment",
        "two  spaces and = signs == here",
        "op monitor interval=1s",
        "params x=y meta target-role=Stopped",
        "-- --force -f /etc/passwd",
        "'",
        '"',
        "{{ jinja }} {% raw %} %s %n $HOME ${HOME} ~",
        "<xml attr='&amp;'> &lt; ]]> <!-- -->",
    ]


def _t(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def hostile_site(canary: Path) -> tuple[str, dict[tuple[str, str], str]]:
    """A valid site whose every free-form string is hostile, and the values the CIB must hold."""
    values = itertools.cycle(hostile_values(canary))
    expect: dict[tuple[str, str], str] = {}

    def v(rid: str, name: str) -> str:
        value = next(values)
        expect[(rid, name)] = value
        return _t(value)

    def path(rid: str, name: str) -> str:
        value = "/srv/" + next(values)
        expect[(rid, name)] = value
        return _t(value)

    text = f"""
[site]
name = "hostile"

[[node]]
name = "n1"
fence = {{ agent = "fence_dummy", params = {{ type = "file", status_file = {v("fence-n1", "status_file")} }} }}

[[node]]
name = "n2"
fence = {{ agent = "fence_dummy", params = {{ type = "file", status_file = {v("fence-n2", "status_file")} }} }}

[[director]]
name = "dir"
preferred = "n1"
standby = "n2"
vip = {{ ip = "10.2.0.10", cidr_netmask = 24 }}
params = {{ config = {v("dir-dir", "config")}, bconsole_config = {v("dir-dir", "bconsole_config")} }}
confsync = {{ params = {{ targets = {v("dir-confsync", "targets")}, paths = {v("dir-confsync", "paths")} }} }}

[director.catalog]
backend = "postgresql"
vip = {{ ip = "10.2.0.11", cidr_netmask = 24 }}
disk = {{ type = "shared", device = {v("dir-cat-fs", "device")}, fstype = "ext4", directory = {path("dir-cat-fs", "directory")}, options = {v("dir-cat-fs", "options")} }}
database = {{ agent = "pgsql", params = {{ pgdata = {v("dir-cat-db", "pgdata")}, socketdir = {v("dir-cat-db", "socketdir")}, pgctl = {v("dir-cat-db", "pgctl")} }} }}
params = {{ config = {v("dir-cat-catalog", "config")}, catalog = {v("dir-cat-catalog", "catalog")} }}

[[storage]]
name = "sd"
preferred = "n2"
standby = "n1"
vip = {{ ip = "10.2.0.12" }}
disk = {{ type = "shared", device = {v("sd-fs", "device")}, fstype = "xfs", directory = {path("sd-fs", "directory")} }}
params = {{ config = {v("sd-sd", "config")}, user = {v("sd-sd", "user")} }}

[[filedaemon]]
name = "fd"
preferred = "n1"
standby = "n2"
vip = {{ ip = "10.2.0.13" }}
params = {{ config = {v("fd-fd", "config")}, group = {v("fd-fd", "group")}, address = {v("fd-fd", "address")} }}
"""
    return text, expect


def _nvpairs(cib: Path) -> dict[tuple[str, str], str]:
    root = ET.parse(cib).getroot()
    out = {}
    for prim in root.iter("primitive"):
        for nv in prim.iterfind("instance_attributes/nvpair"):
            out[(prim.get("id", ""), nv.get("name", ""))] = nv.get("value", "")
    return out


def test_hostile_values_reach_the_cib_literally(ocf_agents: None, tmp_path: Path) -> None:
    canary = tmp_path / "injected"
    text, expect = hostile_site(canary)
    assert len(expect) >= len(hostile_values(canary)), "every hostile value is used"
    plan = build(parse_site(text, "hostile.toml"))
    nodes = ["n1", "n2"]
    crm = empty_cib(tmp_path / "crm.xml", nodes)
    pcs = empty_cib(tmp_path / "pcs.xml", nodes)
    stepwise = empty_cib(tmp_path / "stepwise.xml", nodes)
    apply_crm(render(plan, "crm"), crm)
    # The pcs script's XML (its default) and its quoted pcs commands (--stepwise).
    apply_pcs(render(plan, "pcs"), pcs)
    apply_pcs(render(plan, "pcs"), stepwise, stepwise=True)
    assert not canary.exists(), "a value was executed by a shell"
    for cib in (crm, pcs, stepwise):
        verify(cib)
        found = _nvpairs(cib)
        for key, value in expect.items():
            assert found.get(key) == value, (cib.name, key, found.get(key), value)
    # Nothing else slipped in: no extra meta attributes, no stray resources or options.
    assert normalised(crm) == normalised(pcs) == normalised(stepwise)
    for cib in (crm, pcs, stepwise):
        root = ET.parse(cib).getroot()
        assert not list(root.iter("meta_attributes")) or all(
            nv.get("name") != "target-role" for nv in root.iter("nvpair")
        )


HOSTILE_IDS = ["a b", "a;b", "$(x)", "`x`", 'a"b', "a'b", "-x", "a\nb", "a/b", "a:b", ""]


def test_non_ascii_values_are_refused(tmp_path: Path) -> None:
    text, _ = hostile_site(tmp_path / "never")
    bad = text.replace('type = "file"', 'type = "fïle"', 1)
    with pytest.raises(SiteError) as info:
        build(parse_site(bad, "hostile.toml"))
    assert "node[0].fence.params.type: 'fïle' contains non-ASCII" in str(info.value)


@pytest.mark.parametrize("bad", HOSTILE_IDS, ids=repr)
@pytest.mark.parametrize(
    ("field", "old", "template"),
    [
        ("site.name", 'name = "hostile"', "name = {}"),
        ("node[0].name", 'name = "n1"', "name = {}"),
        ("director[0].name", 'name = "dir"', "name = {}"),
        ("storage[0].preferred", 'preferred = "n2"', "preferred = {}"),
        ("director[0].catalog.disk.fstype", 'fstype = "ext4"', "fstype = {}"),
        ("storage[0].vip.ip", 'ip = "10.2.0.12"', "ip = {}"),
        ("node[0].fence.agent", 'agent = "fence_dummy"', "agent = {}"),
        ("director[0].catalog.database.agent", 'agent = "pgsql"', "agent = {}"),
        (
            "director[0].vip.nic",
            "cidr_netmask = 24 }\nparams = { config",
            "cidr_netmask = 24, nic = {} }}\nparams = {{ config",
        ),
        (
            "storage[0].vip.cidr_netmask",
            'ip = "10.2.0.12" }',
            'ip = "10.2.0.12", cidr_netmask = {} }}',
        ),
    ],
)
def test_hostile_names_are_refused(
    field: str, old: str, template: str, bad: str, tmp_path: Path
) -> None:
    text, _ = hostile_site(tmp_path / "never")
    assert old in text
    bad_text = text.replace(old, template.format(_t(bad)), 1)
    with pytest.raises(SiteError) as info:
        build(parse_site(bad_text, "hostile.toml"))
    assert f": {field}: " in str(info.value), str(info.value)


@pytest.mark.parametrize("name", ["x y", "x=y", "-x", "x;y", "x\ny", ""])
def test_hostile_parameter_names_are_refused(name: str, tmp_path: Path) -> None:
    text, _ = hostile_site(tmp_path / "never")
    bad = text.replace(
        'params = { type = "file"', f'params = {{ {_t(name)} = "1", type = "file"', 1
    )
    with pytest.raises(SiteError) as info:
        build(parse_site(bad, "hostile.toml"))
    assert "node[0].fence.params" in str(info.value), str(info.value)
