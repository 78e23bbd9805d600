"""Hostile values: refused with a message, or quoted so that the CIB holds the literal value."""
# ruff: noqa: E501  (TOML site text and long parametrised cases read better unwrapped)

from __future__ import annotations

import itertools
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bacula_ha.generator.plan import build
from bacula_ha.generator.render import render
from bacula_ha.site.errors import SiteError
from bacula_ha.site.parse import parse_site
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
    """A valid site whose every free-form string is hostile, and the values the CIB must hold.
    A parameter that the agent wants an absolute path gets one that starts with /srv/ (any
    other is refused, test_bad_parameter_values_are_refused); confsync's paths and targets,
    which have rules of their own, are left out. The storage names its archive_mounts: the
    one generate would take from its disk's directory, which holds spaces here, is refused
    (test_a_directory_archive_mounts_cannot_express_is_refused)."""
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
params = {{ config = {path("dir-dir", "config")}, bconsole_config = {path("dir-dir", "bconsole_config")} }}
confsync = {{ params = {{ peer_root = {v("dir-confsync", "peer_root")} }} }}

[director.catalog]
backend = "postgresql"
vip = {{ ip = "10.2.0.11", cidr_netmask = 24 }}
disk = {{ type = "shared", device = {v("dir-cat-fs", "device")}, fstype = "ext4", directory = {path("dir-cat-fs", "directory")}, options = {v("dir-cat-fs", "options")} }}
database = {{ agent = "pgsql", params = {{ pgdata = {v("dir-cat-db", "pgdata")}, socketdir = {v("dir-cat-db", "socketdir")}, pgctl = {v("dir-cat-db", "pgctl")} }} }}
params = {{ config = {path("dir-cat-catalog", "config")}, catalog = {v("dir-cat-catalog", "catalog")} }}

[[storage]]
name = "sd"
preferred = "n2"
standby = "n1"
vip = {{ ip = "10.2.0.12" }}
disk = {{ type = "shared", device = {v("sd-fs", "device")}, fstype = "xfs", directory = {path("sd-fs", "directory")} }}
params = {{ config = {path("sd-sd", "config")}, user = {v("sd-sd", "user")}, archive_mounts = "/srv" }}

[[filedaemon]]
name = "fd"
preferred = "n1"
standby = "n2"
vip = {{ ip = "10.2.0.13" }}
params = {{ config = {path("fd-fd", "config")}, group = {v("fd-fd", "group")}, address = {v("fd-fd", "address")} }}
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
        meta_names = [nv.get("name") for m in root.iter("meta_attributes") for nv in m]
        assert meta_names, f"{cib.name}: no meta attributes at all (the site sets some)"
        every_name = [nv.get("name") for nv in root.iter("nvpair")]
        assert "target-role" not in every_name, f"{cib.name}: a target-role slipped in"


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


# --- parameter values: the agents' own rules (their meta-data), before the CIB -----------------

VALUES_SITE = """
[site]
name = "values"

[[node]]
name = "n1"
fence = { agent = "fence_dummy", params = { type = "file" } }

[[node]]
name = "n2"
fence = { agent = "fence_dummy", params = { type = "file" } }

[[director]]
name = "dir"
preferred = "n1"
standby = "n2"
vip = { ip = "10.2.0.10", cidr_netmask = 24 }
params = { DIR }
confsync = { params = { CONFSYNC } }

[director.catalog]
backend = "postgresql"
vip = { ip = "10.2.0.11", cidr_netmask = 24 }
disk = { type = "shared", device = "/dev/sdb1", fstype = "ext4", directory = "/var/lib/postgresql" }
database = { agent = "pgsql" }
params = { CATALOG }

[[storage]]
name = "sd"
preferred = "n2"
standby = "n1"
vip = { ip = "10.2.0.12" }
params = { SD }

[[filedaemon]]
name = "fd"
preferred = "n1"
standby = "n2"
vip = { ip = "10.2.0.13" }
params = { FD }
"""
# A sound value in every slot: the site generates as it is.
SOUND = {
    "DIR": {
        "job_wait": "30",
        "interrupted_jobs": '"log"',
        "config": '"/etc/bacula/bacula-dir.conf"',
    },
    "CONFSYNC": {"paths": '"/etc/bacula"', "backups": "3", "node_attribute": "false"},
    "CATALOG": {"connect_timeout": '"5"', "db_port": "5432", "backend": '"postgresql"'},
    "SD": {"archive_mounts": '"/srv/backup"', "check_timeout": "5"},
    "FD": {"port": '"9102"', "binary": '"/usr/sbin/bacula-fd"'},
}
# Where each slot's parameters land: the field generate names, and its line in VALUES_SITE.
SLOTS = {
    "DIR": "director[0].params",
    "CONFSYNC": "director[0].confsync.params",
    "CATALOG": "director[0].catalog.params",
    "SD": "storage[0].params",
    "FD": "filedaemon[0].params",
}


def _slot_line(slot: str) -> int:
    return next(n for n, ln in enumerate(VALUES_SITE.split("\n"), 1) if f"{{ {slot} }}" in ln)


# (slot, parameter, TOML value, words of the message): each a value the agent refuses with 6.
BAD_VALUES = [
    # The three.
    ("DIR", "config", '"relative.conf"', "must be an absolute path"),
    ("DIR", "job_wait", '"abc"', "is not an integer"),
    ("DIR", "interrupted_jobs", '"bogus"', "is not one of: rerun, log, off"),
    ("DIR", "job_wait", "3.5", "is not an integer"),
    ("DIR", "job_wait", '"30s"', "is not an integer"),
    ("DIR", "job_wait", "-1", "out of range (0..604800)"),
    ("DIR", "job_wait", "604801", "out of range"),
    ("DIR", "job_wait", "true", "is not an integer"),
    ("DIR", "job_wait", '"\u0663\u0660"', "contains non-ASCII"),  # the schema's own rule
    ("DIR", "interrupted_jobs", '"RERUN"', "is not one of"),
    ("DIR", "on_stop", '"kill"', "is not one of: resume, interrupt"),
    ("DIR", "rerun_types", '"backup backups"', "unknown job type 'backups'"),
    ("DIR", "max_reruns", "1001", "out of range (0..1000)"),
    ("DIR", "missed_runs_window", '"6h"', "is not an integer"),
    ("DIR", "check_timeout", "3.5", "is not an integer"),
    ("DIR", "check_timeout", "0", "out of range (1..3600)"),
    ("DIR", "port", "0", "out of range (1..65535)"),
    ("DIR", "port", '"ninety-one-oh-one"', "is not an integer"),
    ("DIR", "binary", '"bacula-dir"', "must be an absolute path"),
    ("DIR", "bconsole", '"bin/bconsole"', "must be an absolute path"),
    ("DIR", "bconsole_config", '"bconsole.conf"', "must be an absolute path"),
    ("SD", "config", '"sd.conf"', "must be an absolute path"),
    ("SD", "check_timeout", "3.5", "is not an integer"),
    ("SD", "port", "70000", "out of range (1..65535)"),
    ("SD", "archive_mounts", '"/srv/backup srv/other"', "'srv/other' is not an absolute path"),
    ("FD", "check_timeout", '"soon"', "is not an integer"),
    ("FD", "check_timeout", '"3.5"', "is not an integer"),
    ("FD", "binary", '"./bacula-fd"', "must be an absolute path"),
    ("CATALOG", "config", '"bacula-dir.conf"', "must be an absolute path"),
    ("CATALOG", "connect_timeout", "0", "out of range (1..3600)"),
    ("CATALOG", "query_timeout", "3601", "out of range (1..3600)"),
    ("CATALOG", "latency_threshold", '"fast"', "is not an integer"),
    ("CATALOG", "schema_version", "0", "out of range"),
    ("CATALOG", "db_port", "65536", "out of range (1..65535)"),
    ("CATALOG", "backend", '"sqlite"', "is not one of: auto, postgresql, mysql"),
    ("CATALOG", "client", '"psql"', "must be an absolute path"),
    ("CATALOG", "password_file", '"pw.txt"', "must be an absolute path"),
    ("CATALOG", "db_socket", '"mysqld.sock"', "must be an absolute path"),
    ("CATALOG", "sync_standby_names", "\"ANY 1 (n1, 'n2')\"", "without quotes"),
    ("CONFSYNC", "paths", '"etc/bacula"', "must be an absolute path"),
    ("CONFSYNC", "paths", '"/etc/bacula /etc/bacula/x"', "is inside /etc/bacula"),
    ("CONFSYNC", "paths", '"/"', "cannot be synced"),
    ("CONFSYNC", "targets", '"-n1"', "is not NAME or NAME=ADDRESS"),
    ("CONFSYNC", "targets", '"n1 n1"', "a node is listed twice"),
    ("CONFSYNC", "ssh_options", '"-oBatchMode=yes"', "is not Key=Value"),
    ("CONFSYNC", "rsync_options", '"-a"', "is not a --long option"),
    ("CONFSYNC", "exclude", '"a/b"', "hold no '/'"),
    ("CONFSYNC", "user", '"-root"', "is not a user name"),
    ("CONFSYNC", "identity", '"id_ed25519"', "must be an absolute path"),
    ("CONFSYNC", "ssh_config", '"ssh_config"', "must be an absolute path"),
    ("CONFSYNC", "connect_timeout", "0", "out of range"),
    ("CONFSYNC", "io_timeout", '"x"', "is not an integer"),
    ("CONFSYNC", "backups", "0", "out of range"),
    ("CONFSYNC", "check_timeout", "1.5", "is not an integer"),
    ("CONFSYNC", "config_check", '"sometimes"', "is not one of: full, parse, none"),
    ("CONFSYNC", "node_attribute", '"maybe"', "is not a boolean"),
]


def _values_site(given: dict[str, dict[str, str]] | None = None) -> str:
    """VALUES_SITE with each slot's sound values, `given` over them."""
    text = VALUES_SITE
    for slot, sound in SOUND.items():
        pairs = {**sound, **(given or {}).get(slot, {})}
        text = text.replace(
            f"{{ {slot} }}", "{ " + ", ".join(f"{k} = {v}" for k, v in pairs.items()) + " }"
        )
    return text


def test_sound_parameter_values_generate() -> None:
    plan = build(parse_site(_values_site(), "values.toml"))
    assert render(plan, "crm") and render(plan, "pcs")


@pytest.mark.parametrize(
    ("slot", "name", "value", "words"),
    BAD_VALUES,
    ids=[f"{s}-{n}={v}" for s, n, v, _ in BAD_VALUES],
)
def test_bad_parameter_values_are_refused(slot: str, name: str, value: str, words: str) -> None:
    """Each bad value, alone in a sound site: FILE:LINE: field: message, and nothing else."""
    with pytest.raises(SiteError) as info:
        build(parse_site(_values_site({slot: {name: value}}), "values.toml"))
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"values.toml:{_slot_line(slot)}: {SLOTS[slot]}.{name}: "), lines[0]
    assert words in lines[0], lines[0]


def test_every_bad_value_refused_at_once() -> None:
    """The whole sweep in one site (one value per parameter and slot): every one reported, each
    on its line; the count is the issue's measure of what generate now refuses before the CIB."""
    first: dict[str, dict[str, str]] = {}
    for slot, name, value, _ in BAD_VALUES:
        first.setdefault(slot, {}).setdefault(name, value)
    with pytest.raises(SiteError) as info:
        build(parse_site(_values_site(first), "values.toml"))
    assert len(info.value.problems) == sum(len(v) for v in first.values()), str(info.value)
    assert {p.line for p in info.value.problems} == {_slot_line(s) for s in first}
    refused = 0
    for slot, name, value, _ in BAD_VALUES:
        try:
            build(parse_site(_values_site({slot: {name: value}}), "values.toml"))
        except SiteError:
            refused += 1
    print(f"generate refuses {refused} of {len(BAD_VALUES)} bad parameter values")
    assert refused == len(BAD_VALUES)


def test_a_directory_archive_mounts_cannot_express_is_refused(tmp_path: Path) -> None:
    """What generate itself sets is checked by the agent's rules too, and reported on the
    field it came from: bacula-sd's archive_mounts is a space-separated list, so a disk
    directory with a space in it cannot be one."""
    text, _ = hostile_site(tmp_path / "never")
    text = text.replace(', archive_mounts = "/srv" }', " }")
    with pytest.raises(SiteError) as info:
        build(parse_site(text, "hostile.toml"))
    (problem,) = info.value.problems
    assert problem.field == "storage[0].disk.directory", problem
    assert problem.message.startswith("as bacula-sd's archive_mounts: archive_mounts: "), problem
    line = next(
        n for n, ln in enumerate(text.split("\n"), 1) if "directory =" in ln and "xfs" in ln
    )
    assert problem.line == line
