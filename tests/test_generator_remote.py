"""Remote nodes ([[remote]]): validation, both formats, 3 full + 100 remote nodes verified, started and failed."""
# ruff: noqa: E501  (TOML site text reads better unwrapped)

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.generator.plan import build
from bacula_ha.generator.render import render
from bacula_ha.site.errors import SiteError
from bacula_ha.site.model import Site
from bacula_ha.site.parse import parse_site
from tests.test_generator_helpers import (
    apply_crm,
    apply_pcs,
    empty_cib,
    executed,
    normalised,
    ocf_agents,
    placement,
    remote_site_text,
    simulate,
    verify,
)

__all__ = ["ocf_agents"]  # the fixture, imported so that pytest finds it here

SMALL = """\
[site]
name = "remote-small"

[[node]]
name = "f1"
dc = "a"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/f1" } }

[[node]]
name = "f2"
dc = "b"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/f2" } }

[[remote]]
name = "r1"
dc = "a"
address = "192.0.2.101"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/r1" } }

[[remote]]
name = "r2"
dc = "b"
address = "192.0.2.102"
port = 3122
reconnect_interval = "1min"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/r2" } }

[[director]]
name = "dir"
preferred = "f1"
standby = "f2"
vip = { ip = "192.0.2.10" }

[[storage]]
name = "sd1"
preferred = "r1"
standby = "r2"
vip = { ip = "192.0.2.21" }
disk = { type = "drbd", drbd_resource = "sd1", device = "/dev/drbd1", fstype = "xfs", directory = "/srv/sd1" }

[[filedaemon]]
name = "fd1"
preferred = "r2"
standby = "r1"
vip = { ip = "192.0.2.22" }

[[storage]]
name = "sd3"
preferred = "f2"
standby = "r1"
vip = { ip = "192.0.2.23" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SiteError) as info:
        build(parse_site(text, "site.toml"))
    return str(info.value).splitlines()


def one(text: str, pattern: str) -> str:
    found = problems(text)
    assert any(re.search(pattern, p) for p in found), found
    return next(p for p in found if re.search(pattern, p))


# ---- validation ------------------------------------------------------------------------------


def test_small_remote_site_is_valid() -> None:
    site = parse_site(SMALL, "site.toml")
    assert [n.name for n in site.nodes] == ["f1", "f2"]
    assert [(n.name, n.remote, n.port) for n in site.remotes] == [
        ("r1", True, None),
        ("r2", True, 3122),
    ]
    assert site.node("r2").reconnect_interval == 60


def test_director_on_a_remote_node_is_refused_with_the_reason() -> None:
    bad = SMALL.replace('name = "dir"\npreferred = "f1"', 'name = "dir"\npreferred = "r1"')
    line = SMALL.splitlines().index('preferred = "f1"') + 1
    message = one(bad, r"director\[0\]\.preferred")
    assert message.startswith(f"site.toml:{line}: director[0].preferred: 'r1' is a remote node")
    assert "a director must run on a full cluster node" in message
    assert "no vote" in message


def test_catalog_on_a_remote_node_is_refused() -> None:
    bad = SMALL.replace(
        'vip = { ip = "192.0.2.10" }\n',
        'vip = { ip = "192.0.2.10" }\nwith_catalog = false\n\n[director.catalog]\nstandby = "r2"\n'
        'backend = "postgresql"\nvip = { ip = "192.0.2.11" }\n'
        'disk = { type = "shared", device = "/dev/sdc", fstype = "ext4", directory = "/srv/cat" }\n'
        'database = { agent = "pgsql" }\n',
    )
    message = one(bad, r"director\[0\]\.catalog\.standby")
    assert "'r2' is a remote node: a catalog must run on a full cluster node" in message


@pytest.mark.parametrize(
    ("old", "new", "pattern"),
    [
        ('name = "r2"', 'name = "f1"', r"remote\[1\]\.name: node 'f1' is defined twice"),
        ('name = "r2"', 'name = "sd3"', r"the name 'sd3' is used twice"),
        ("port = 3122", "port = 70000", r"remote\[1\]\.port: must be an integer from 1 to 65535"),
        (
            'address = "192.0.2.102"',
            'address = "192.0.2.101"',
            r"remote\[1\]\.address: 192\.0\.2\.101 is already used by node r1",
        ),
        (
            'address = "192.0.2.102"',
            'address = "192.0.2.21"',
            r"storage\[0\]\.vip\.ip: 192\.0\.2\.21 is already used",
        ),
        (
            'address = "192.0.2.102"',
            'address = "remote-2"',
            r"remote\[1\]\.address: 'remote-2' is not an IP address",
        ),
        ("port = 3122", "port = 3122\nweight = 1", r"remote\[1\]\.weight: unknown key"),
        ('reconnect_interval = "1min"', 'server = "x"', r"remote\[1\]\.server: unknown key"),
        (
            'reconnect_interval = "1min"',
            'reconnect_interval = "soon"',
            r"remote\[1\]\.reconnect_interval: 'soon' is not a duration",
        ),
        (
            'dc = "b"\naddress = "192.0.2.102"',
            'address = "192.0.2.102"',
            r"remote\[1\]\.dc: when any node names a data centre",
        ),
        (
            'preferred = "r2"\nstandby = "r1"',
            'preferred = "r2"\nstandby = "r3"',
            r"filedaemon\[0\]\.standby: there is no node 'r3'",
        ),
    ],
)
def test_bad_remote_nodes(old: str, new: str, pattern: str) -> None:
    assert old in SMALL
    one(SMALL.replace(old, new, 1), pattern)


def test_remote_node_needs_a_fence_device() -> None:
    bad = SMALL.replace(
        'port = 3122\nreconnect_interval = "1min"\nfence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/r2" } }\n',
        "port = 3122\n",
    )
    one(bad, r"remote\[1\]: fence is required")


def test_remote_node_in_the_same_data_centre_cannot_be_the_standby() -> None:
    bad = SMALL.replace('name = "r2"\ndc = "b"', 'name = "r2"\ndc = "a"')
    one(bad, r"storage\[0\]\.standby: 'r2' is in the same data centre \(a\)")


# ---- both formats on CIB files ---------------------------------------------------------------


def test_small_remote_site_both_formats_and_simulation(ocf_agents: None, tmp_path: Path) -> None:
    site = parse_site(SMALL, "remote-small.toml")
    plan = build(site)
    remotes = [n.name for n in site.remotes]
    # The remote nodes as a cluster knows them once they have connected (crmsh warns about
    # constraints on nodes it has not seen); `pcs cluster node add-remote` wants them unknown.
    # The pcs script's --stepwise path (a pcs process per command, 20 s here) runs in
    # test_generator_cib's connectivity test, on this site with every one of these commands.
    cibs = {
        "crm": empty_cib(tmp_path / "crm.xml", ["f1", "f2"], remotes),
        "pcs": empty_cib(tmp_path / "pcs.xml", ["f1", "f2"], remotes),
    }
    apply_crm(render(plan, "crm"), cibs["crm"])  # no crmsh warning either
    apply_pcs(render(plan, "pcs"), cibs["pcs"])
    for cib in cibs.values():
        verify(cib)
    assert normalised(cibs["crm"]) == normalised(cibs["pcs"])
    conf = ET.parse(cibs["crm"]).getroot()
    r2 = conf.find(".//primitive[@id='r2']")
    assert r2 is not None and (r2.get("class"), r2.get("provider"), r2.get("type")) == (
        "ocf",
        "pacemaker",
        "remote",
    )
    params = {nv.get("name"): nv.get("value") for nv in r2.iterfind("instance_attributes/nvpair")}
    assert params == {"server": "192.0.2.102", "port": "3122", "reconnect_interval": "60s"}
    fence = conf.find(".//primitive[@id='fence-r2']//nvpair[@name='pcmk_host_list']")
    assert fence is not None and fence.get("value") == "r2"

    up = tmp_path / "up.xml"
    simulate(cibs["crm"], up)
    where = placement(up)
    assert where["r1"][0] in ("f1", "f2") and where["r2"][0] in ("f1", "f2")
    assert where["sd1-drbd"] == ("r1", "Promoted") and where["sd1-sd"][0] == "r1"
    assert where["fd1-fd"][0] == "r2" and where["sd3-sd"][0] == "f2"
    assert where["dir-dir"][0] == "f1"


# ---- 3 full nodes, 100 remote nodes, 200 storage daemons --------------------------------------
# The full size is generated, verified, applied both ways and scheduled (its probes). Starting it
# and failing nodes (crm_simulate executing every probe and start: two minutes at full size, and
# quadratic in the actions) runs on the same shape at 30 remote nodes and 60 daemons.


@dataclass(frozen=True)
class Large:
    """A large site, where each group prefers and stands by, and its CIB after crmsh."""

    site: Site
    home: dict[str, str]  # group -> preferred node
    standby: dict[str, str]
    cib: Path


@dataclass(frozen=True)
class Started(Large):
    up: Path  # the CIB after crm_simulate started everything


def _large(base: Path, remotes: int, daemons: int) -> Large:
    site = parse_site(remote_site_text(remotes=remotes, daemons=daemons), "large.toml")
    assert (len(site.nodes), len(site.remotes), len(site.storages)) == (3, remotes, daemons)
    plan = build(site)
    cib = empty_cib(base / "cib.xml", [n.name for n in site.nodes], [n.name for n in site.remotes])
    apply_crm(render(plan, "crm"), cib)
    home, standby = {}, {}
    for block in plan.blocks:
        for group in block.groups:
            scores = {loc.score: loc.node for loc in block.locations if loc.rsc == group.id}
            home[group.id], standby[group.id] = scores["100"], scores["50"]
    return Large(site, home, standby, cib)


@pytest.fixture(scope="module")
def large(ocf_agents: None, tmp_path_factory: pytest.TempPathFactory) -> Large:
    return _large(tmp_path_factory.mktemp("large"), remotes=100, daemons=200)


@pytest.fixture(scope="module")
def started(ocf_agents: None, tmp_path_factory: pytest.TempPathFactory) -> Started:
    shape = _large(tmp_path_factory.mktemp("started"), remotes=30, daemons=60)
    up = shape.cib.with_name("up.xml")
    simulate(shape.cib, up)  # the slow part: every probe and start
    return Started(shape.site, shape.home, shape.standby, shape.cib, up)


def _groups_at(cib: Path, large: Large) -> dict[str, str]:
    """Group -> the node of its last member (a group's members share it)."""
    where = placement(cib)
    out = {}
    for group in large.home:
        members = [r for r in where if r.startswith(group.removesuffix("-group") + "-")]
        nodes = {where[m][0] for m in members if not m.endswith(("-drbd", "-db"))}
        assert len(nodes) == 1, (group, nodes)
        out[group] = nodes.pop()
    return out


def test_large_site_verifies_clean_and_pcs_gives_the_same_cib(large: Large, tmp_path: Path) -> None:
    verify(large.cib)
    pcs = empty_cib(
        tmp_path / "pcs.xml",
        [n.name for n in large.site.nodes],
        [n.name for n in large.site.remotes],
    )
    apply_pcs(render(build(large.site), "pcs"), pcs)
    assert normalised(pcs) == normalised(large.cib)


def test_large_site_nothing_is_probed_where_it_can_never_run(large: Large, tmp_path: Path) -> None:
    graph = tmp_path / "graph.xml"
    done = subprocess.run(
        ["crm_simulate", "-x", str(large.cib), "-R", "-Q", "-G", str(graph)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    # A set: an action appears once where it is scheduled and again as an input of later ones.
    probes = {
        (op.get("operation_key", "").removesuffix("_monitor_0"), op.get("on_node", ""))
        for op in ET.parse(graph).getroot().iter("rsc_op")
        if op.get("operation_key", "").endswith("_monitor_0")
    }
    assert probes
    pairs = {g.removesuffix("-group"): {large.home[g], large.standby[g]} for g in large.home}
    for rid, node in probes:
        component = rid.rsplit("-", 1)[0]
        if component in pairs:
            assert node in pairs[component], (rid, node)
    # Remote nodes are probed only for the daemons that may run there: no fence device, no
    # connection, no director or catalog, no daemon of another pair.
    on_remote = [rid for rid, node in probes if node.startswith("r")]
    assert len(on_remote) == 2 * 2 * 200, len(on_remote)  # 2 members x 2 nodes x 200 daemons


def test_large_site_everything_starts_on_its_preferred_node(started: Started) -> None:
    assert _groups_at(started.up, started) == started.home
    where = placement(started.up)
    assert all(where[r.name][0].startswith("f") for r in started.site.remotes)


def test_large_site_failed_remote_node_moves_only_its_daemons(
    started: Started, tmp_path: Path
) -> None:
    where = placement(started.up)
    host = where["r001"][0]
    out = tmp_path / "r001.xml"
    # A dead remote node: its connection's monitor fails on the full node that holds it.
    output = simulate(started.up, out, f"--op-inject=r001_monitor_30000@{host}=1")
    assert re.search(r"Fence \(reboot\) r001\b", output), output
    expect = {g: (started.standby[g] if n == "r001" else n) for g, n in started.home.items()}
    assert _groups_at(out, started) == expect
    moved = [g for g in expect if expect[g] != started.home[g]]
    assert sorted(moved) == ["sd000-group", "sd030-group"]  # daemon i prefers r(i mod 30 + 1)
    starts = {a.split()[0] for a in executed(output) if " start " in a}
    assert starts <= {"r001", "sd000-ip", "sd000-sd", "sd030-ip", "sd030-sd"}, starts


def test_large_site_failed_full_node_moves_no_daemon_of_a_remote_node(
    started: Started, tmp_path: Path
) -> None:
    out = tmp_path / "f1.xml"
    output = simulate(started.up, out, "--node-fail=f1")
    assert re.search(r"Fence \(reboot\) f1\b", output), output
    at = _groups_at(out, started)
    for group, node in started.home.items():
        if group.startswith("sd"):
            assert at[group] == node, group
    assert at["dir1-group"] == started.standby["dir1-group"]
    assert at["cat1-group"] == started.standby["cat1-group"]
    # Connections held by f1 moved to the surviving full nodes; no daemon stopped or moved.
    stopped = {a.split()[0] for a in executed(output) if " stop " in a}
    assert not any(s.startswith("sd") for s in stopped), stopped
    where = placement(out)
    assert all(where[r.name][0] in ("f2", "f3") for r in started.site.remotes)
