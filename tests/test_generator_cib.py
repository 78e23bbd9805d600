"""Every example, rendered both ways, applied to empty CIB files by crmsh and pcs, and simulated."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.generator.generate import generate_text
from bacula_ha.generator.plan import PREFERRED_SCORE, STANDBY_SCORE, Plan, build
from bacula_ha.generator.render import render
from bacula_ha.site.parse import load_site, parse_site
from tests.test_generator_helpers import (
    EXAMPLES,
    apply_crm,
    apply_pcs,
    empty_cib,
    executed,
    normalised,
    ocf_agents,
    placement,
    set_attribute,
    simulate,
    site_nodes,
    site_remotes,
    verify,
)
from tests.test_generator_remote import SMALL

__all__ = ["ocf_agents"]  # the fixture, imported so that pytest finds it here

pytestmark = pytest.mark.skipif(not EXAMPLES, reason="no examples")


@dataclass(frozen=True)
class Applied:
    """One example applied both ways, or the failure of doing so."""

    crm: Path
    pcs: Path  # the pcs script's default, fast path
    stepwise: Path  # the same script's pcs commands, one by one
    error: str | None


@pytest.fixture(scope="module")
def applied(
    ocf_agents: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Applied]]:
    """All examples applied in parallel (pcs runs one process per command: the slow part)."""
    base = tmp_path_factory.mktemp("cibs")

    def one(example: Path) -> Applied:
        # Remote nodes as a cluster knows them once connected (crmsh warns about unknown ones);
        # `pcs cluster node add-remote` wants them unknown.
        nodes, remotes = site_nodes(example), site_remotes(example)
        crm = empty_cib(base / f"{example.stem}-crm.xml", nodes, remotes)
        pcs = empty_cib(base / f"{example.stem}-pcs.xml", nodes, remotes)
        stepwise = empty_cib(base / f"{example.stem}-stepwise.xml", nodes)
        try:
            apply_crm(generate_text(example, "crm"), crm)
            script = generate_text(example, "pcs")
            apply_pcs(script, pcs)
            apply_pcs(script, stepwise, stepwise=True)
        except AssertionError as exc:
            return Applied(crm, pcs, stepwise, str(exc))
        return Applied(crm, pcs, stepwise, None)

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip((e.stem for e in EXAMPLES), pool.map(one, EXAMPLES), strict=True))
    yield results


def _get(applied: dict[str, Applied], example: Path) -> Applied:
    result = applied[example.stem]
    assert result.error is None, result.error
    return result


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_both_formats_apply_and_verify_clean(applied: dict[str, Applied], example: Path) -> None:
    result = _get(applied, example)
    verify(result.crm)
    verify(result.pcs)
    verify(result.stepwise)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_crm_and_pcs_build_the_same_cib(applied: dict[str, Applied], example: Path) -> None:
    result = _get(applied, example)
    crm, pcs = normalised(result.crm), normalised(result.pcs)
    stepwise = normalised(result.stepwise)
    plan = build(load_site(example))
    # Not vacuous: every object of the plan is in the CIB.
    text = result.crm.read_text()
    for rid in plan.ids():
        assert f'id="{rid}"' in text, rid
    assert crm["resources"] and crm["constraints"]
    # The topology is compared too, and present exactly when the plan has one.
    assert bool(crm["fencing-topology"]) == any(b.levels for b in plan.blocks)
    for section in crm:
        assert crm[section] == pcs[section], section
        assert crm[section] == stepwise[section], section


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_cib_format_merges_into_the_same_cib(
    applied: dict[str, Applied], example: Path, tmp_path: Path
) -> None:
    """`--format cib` through `cibadmin --modify`, as its help says, equals crm's CIB too."""
    result = _get(applied, example)
    cib = empty_cib(tmp_path / "cib.xml", site_nodes(example), site_remotes(example))
    xml = tmp_path / "site.xml"
    xml.write_text(generate_text(example, "cib"))
    done = subprocess.run(
        ["cibadmin", "--modify", "--scope", "configuration", "--xml-file", str(xml)],
        env={**os.environ, "CIB_file": str(cib)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    verify(cib)
    assert normalised(cib) == normalised(result.crm)


# ---- crm_simulate ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    """What the plan says about one group: members in order, its promotable clone, its nodes."""

    group: str
    members: tuple[str, ...]
    clone_primitive: str | None
    preferred: str
    standby: str


def _components(plan: Plan) -> list[Component]:
    out = []
    for block in plan.blocks:
        for group in block.groups:
            scores = {loc.score: loc.node for loc in block.locations if loc.rsc == group.id}
            clone = block.clones[0].primitive.id if block.clones else None
            out.append(
                Component(
                    group.id,
                    tuple(m.id for m in group.members),
                    clone,
                    scores[PREFERRED_SCORE],
                    scores[STANDBY_SCORE],
                )
            )
    return out


def _dependencies(plan: Plan) -> list[tuple[str, str]]:
    """(first group, then group) of every start-after-start order between groups."""
    return [(o.first, o.then) for b in plan.blocks for o in b.orders if o.first_action == "start"]


def _check_placement(plan: Plan, where: dict[str, tuple[str, str]], expect: dict[str, str]) -> None:
    for comp in _components(plan):
        node = expect[comp.group]
        for member in comp.members:
            assert where.get(member, ("", ""))[0] == node, (member, where.get(member), node)
        if comp.clone_primitive:
            assert where[comp.clone_primitive] == (node, "Promoted"), comp.clone_primitive
    for block in plan.blocks:
        for loc in block.locations:
            if loc.score == "-INFINITY":  # a fence device never runs on the node it fences
                assert where.get(loc.rsc, ("", ""))[0] != loc.node, loc.rsc


def _check_order(plan: Plan, actions: list[str], moved: dict[str, str]) -> None:
    """Within what moved: promote before the group, members in order, catalog before director."""

    def index(action: str) -> int:
        assert action in actions, f"{action!r} not executed: {actions}"
        return actions.index(action)

    comps = {c.group: c for c in _components(plan)}
    for group, node in moved.items():
        comp = comps[group]
        starts = [index(f"{m} start {node}") for m in comp.members]
        assert starts == sorted(starts), f"{group} members started out of order: {actions}"
        if comp.clone_primitive:
            assert index(f"{comp.clone_primitive} promote {node}") < starts[0], group
    for first, then in _dependencies(plan):
        if first in moved and then in moved:
            last = index(f"{comps[first].members[-1]} start {moved[first]}")
            assert last < index(f"{comps[then].members[0]} start {moved[then]}"), (first, then)


def _plan(example: Path) -> Plan:
    return build(load_site(example))


@pytest.fixture(scope="module")
def started(
    applied: dict[str, Applied], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Each example's crm CIB after crm_simulate started everything (all nodes up)."""
    base = tmp_path_factory.mktemp("sim")
    out = {}
    for example in EXAMPLES:
        result = _get(applied, example)
        out[example.stem] = base / f"{example.stem}-up.xml"
        simulate(result.crm, out[example.stem])
    return out


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_all_up_every_resource_on_its_preferred_node(
    started: dict[str, Path], example: Path
) -> None:
    plan = _plan(example)
    where = placement(started[example.stem])
    _check_placement(plan, where, {c.group: c.preferred for c in _components(plan)})


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_node_down_moves_its_resources_to_the_standby_in_order(
    started: dict[str, Path], example: Path, tmp_path: Path
) -> None:
    plan = _plan(example)
    comps = _components(plan)
    # Full nodes: a remote node's failure is its connection's (tests/test_generator_remote.py).
    for node in sorted({c.preferred for c in comps} & set(site_nodes(example))):
        output = simulate(started[example.stem], tmp_path / f"{node}.xml", f"--node-fail={node}")
        assert re.search(
            rf"Fencing {re.escape(node)}\b|Fence \(reboot\) {re.escape(node)}\b", output
        ), f"{node} was not fenced"
        expect = {c.group: c.standby if c.preferred == node else c.preferred for c in comps}
        _check_placement(plan, placement(tmp_path / f"{node}.xml"), expect)
        moved = {c.group: c.standby for c in comps if c.preferred == node}
        assert moved
        _check_order(plan, executed(output), moved)


# A remote node dies with its data centre when its connection fails, which crm_simulate cannot
# inject together with the loss of the full nodes holding that connection (it replays the
# connection's recovery over several transitions): tests/test_generator_remote.py proves a failed
# remote node and a failed full node separately.
@pytest.mark.parametrize(
    "example", [e for e in EXAMPLES if not site_remotes(e)], ids=lambda p: p.stem
)
def test_data_centre_down_runs_the_site_in_the_other(
    started: dict[str, Path], example: Path, tmp_path: Path
) -> None:
    site = load_site(example)
    plan = build(site)
    dcs = sorted({n.dc for n in site.nodes if n.dc})
    assert len(dcs) == 2, "every example spans two data centres"
    for dead in dcs:
        down = [n.name for n in site.nodes if n.dc == dead]
        out = tmp_path / f"{dead}.xml"
        simulate(started[example.stem], out, *(f"--node-fail={n}" for n in down))
        where = placement(out)
        alive = {n.name for n in site.nodes if n.dc != dead}
        for comp in _components(plan):
            assert where[comp.members[-1]][0] in alive, (comp.group, where[comp.members[-1]])
            assert all(where[m][0] in alive for m in comp.members), comp.group
        assert not [r for r, (n, _) in where.items() if n not in alive]


VARIANTS = """\
[site]
name = "variants"
probe_all_nodes = true
properties = { cluster-recheck-interval = "5min" }

[failure]
migration_threshold = 5

[[node]]
name = "v1"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/v1" } }

[[node]]
name = "v2"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/run/v2" }  }

[[director]]
name = "dir"
preferred = "v1"
standby = "v2"
vip = { ip = "10.3.0.10", cidr_netmask = 24, params = { iflabel = "dir" } }
confsync = { enabled = false }

[director.catalog]
backend = "postgresql"
vip = { ip = "10.3.0.11", cidr_netmask = 24 }
database = { agent = "pgsql", replicated = true, params = { rep_mode = "sync", pgdata = "/pg" } }
failure = { failure_timeout = "1h" }

[[filedaemon]]
name = "fd"
preferred = "v2"
standby = "v1"
vip = { ip = "10.3.0.12" }
extra = [{ agent = "lsb:rsync" }]
failure = { migration_threshold = 0, failure_timeout = 0 }

[filedaemon.disk]
type = "drbd"
drbd_resource = "fd"
device = "/dev/drbd9"
fstype = "xfs"
directory = "/srv/fd"
"""


def test_variants_replicated_pgsql_drbd_file_daemon_extras(
    ocf_agents: None, tmp_path: Path
) -> None:
    """What the examples do not show: pgsql replication, a DRBD file daemon, extras, properties."""
    plan = build(parse_site(VARIANTS, "variants.toml"))
    crm = empty_cib(tmp_path / "crm.xml", ["v1", "v2"])
    pcs = empty_cib(tmp_path / "pcs.xml", ["v1", "v2"])
    stepwise = empty_cib(tmp_path / "stepwise.xml", ["v1", "v2"])
    apply_crm(render(plan, "crm"), crm)
    apply_pcs(render(plan, "pcs"), pcs)
    apply_pcs(render(plan, "pcs"), stepwise, stepwise=True)
    for cib in (crm, pcs, stepwise):
        verify(cib)
    assert normalised(crm) == normalised(pcs) == normalised(stepwise)
    text = crm.read_text()
    assert 'name="node_list" value="v1 v2"' in text and 'name="master_ip" value="10.3.0.11"' in text
    assert "resource-discovery" not in text  # probe_all_nodes
    assert 'name="cluster-recheck-interval" value="5min"' in text
    assert 'id="fd-rsync" class="lsb" type="rsync"' in text
    assert "dir-confsync" not in text
    # Failure policy: the site's threshold, the default timeout, a catalog's own timeout on its
    # group and its clone, and a file daemon that turned both off.
    conf = ET.parse(crm).getroot()
    meta = {
        el.get("id"): {
            nv.get("name"): nv.get("value") for nv in el.iterfind("meta_attributes/nvpair")
        }
        for el in conf.iter()
        if el.tag in ("group", "clone")
    }
    assert meta["dir-group"] == {"migration-threshold": "5", "failure-timeout": "600s"}
    assert meta["dir-cat-group"] == {"migration-threshold": "5", "failure-timeout": "3600s"}
    assert meta["dir-cat-db-clone"]["failure-timeout"] == "3600s"
    assert meta["fd-group"] == {}
    assert "migration-threshold" not in meta["fd-drbd-clone"]
    up = tmp_path / "up.xml"
    simulate(crm, up)
    where = placement(up)
    assert where["dir-cat-db"] == ("v1", "Promoted") and where["dir-cat-catalog"][0] == "v1"
    assert where["fd-drbd"] == ("v2", "Promoted") and where["fd-rsync"][0] == "v2"


# ---- failure policy --------------------------------------------------------------------------


@pytest.mark.parametrize("director", [0, 1], ids=["with_catalog", "catalog_apart"])
def test_repeated_monitor_failures_move_a_director_one_failure_restarts_it(
    started: dict[str, Path], tmp_path: Path, director: int
) -> None:
    """migration-threshold failed monitors on the preferred node move the director's group (and
    the catalog it runs with) to the standby; fewer restart it in place; the failures are
    cleared after failure-timeout."""
    example = next(e for e in EXAMPLES if e.stem == "two-dc")
    site = load_site(example)
    plan = build(site)
    d = site.directors[director]
    assert d.catalog is not None and d.with_catalog == (director == 0)
    threshold = site.failure_policy(d.failure).migration_threshold
    assert threshold is not None and threshold > 1
    comps = {c.group: c for c in _components(plan)}
    me, cat = comps[f"{d.name}-group"], comps[f"{d.catalog.name}-group"]
    rid = f"{d.name}-dir"
    prim = next(m for b in plan.blocks for g in b.groups for m in g.members if m.id == rid)
    interval = min(o.interval for o in prim.ops if o.name == "monitor" and o.interval)
    home = {c.group: c.preferred for c in comps.values()}
    cib = started[example.stem]
    for failure in range(1, threshold + 1):
        out = tmp_path / f"failure{failure}.xml"
        output = simulate(cib, out, f"--op-inject={rid}_monitor_{interval * 1000}@{me.preferred}=1")
        where = placement(out)
        if failure < threshold:
            assert re.search(rf"Recover\s+{rid}\s+\(\s*{me.preferred}\s*\)", output), output
            _check_placement(plan, where, home)
        else:
            moved = {**home, me.group: me.standby}
            # A director that runs with its catalog takes it along; otherwise the catalog stays.
            moved[cat.group] = me.standby if d.with_catalog else cat.preferred
            _check_placement(plan, where, moved)
            assert re.search(rf"Recover\s+{rid}\s+\(\s*{me.preferred} -> {me.standby}", output)
        cib = out
    # failure-timeout: the failures are cleared once the last one is that old, not before.
    timeout = site.failure_policy(d.failure).failure_timeout
    assert timeout
    last = max(
        int(nv.get("value", "0"))
        for nv in ET.parse(cib).getroot().iter("nvpair")
        if nv.get("name", "").startswith(f"last-failure-{rid}#")
    )
    for offset, cleared in ((timeout - 60, False), (timeout + 60, True)):
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(last + offset))
        output = simulate(cib, tmp_path / f"later{offset}.xml", "-t", when)
        found = re.search(rf"clear_failcount for {rid} on {me.preferred}\b", output)
        assert bool(found) == cleared, (offset, output)


# ---- connectivity: ping clones, the bonus rules, fence heuristics ------------------------------

CONNECTED = [e for e in EXAMPLES if load_site(e).connectivity is not None]


def _everyone(example: Path) -> list[str]:
    return site_nodes(example) + site_remotes(example)


@pytest.fixture(scope="module")
def connected_up(
    applied: dict[str, Applied], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    """Each example with [connectivity], every node reaching its targets, after crm_simulate
    started everything."""
    base = tmp_path_factory.mktemp("connected")
    out = {}
    for example in CONNECTED:
        cib = base / f"{example.stem}-pingd.xml"
        shutil.copy(_get(applied, example).crm, cib)
        for node in _everyone(example):
            set_attribute(cib, node, "pingd", "1000")
        out[example.stem] = base / f"{example.stem}-up.xml"
        simulate(cib, out[example.stem])
    return out


def test_examples_cover_connectivity() -> None:
    assert {e.stem for e in CONNECTED} >= {"two-node-drbd", "two-dc", "streaming-replication"}
    # Between them: DRBD clones and PAF's replicated database, whose promotion must follow.
    clones = [c for e in CONNECTED for b in _plan(e).blocks for c in b.clones]
    specs = {c.primitive.spec for c in clones if c.promotable}
    assert specs >= {"ocf:linbit:drbd", "ocf:heartbeat:pgsqlms"}


@pytest.mark.parametrize("example", CONNECTED, ids=lambda p: p.stem)
def test_connected_everywhere_everything_on_its_preferred_node(
    connected_up: dict[str, Path], example: Path
) -> None:
    plan = _plan(example)
    where = placement(connected_up[example.stem])
    _check_placement(plan, where, {c.group: c.preferred for c in _components(plan)})
    ping = [c.primitive.id for b in plan.blocks for c in b.clones if not c.promotable]
    assert ping and all(p in where for p in ping)


@pytest.mark.parametrize("example", CONNECTED, ids=lambda p: p.stem)
def test_a_node_that_loses_its_targets_loses_its_groups_and_promotions(
    connected_up: dict[str, Path], example: Path, tmp_path: Path
) -> None:
    """pingd 0 on the active node: every group it runs, and the Promoted role of every clone
    those groups need, moves to the connected standby, in order; nothing else moves."""
    plan = _plan(example)
    comps = _components(plan)
    preferred = sorted({c.preferred for c in comps} & set(site_nodes(example)))
    assert preferred
    for node in preferred:
        cib = tmp_path / f"{node}-cut.xml"
        shutil.copy(connected_up[example.stem], cib)
        set_attribute(cib, node, "pingd", "0")
        out = tmp_path / f"{node}.xml"
        output = simulate(cib, out)
        expect = {c.group: c.standby if c.preferred == node else c.preferred for c in comps}
        _check_placement(plan, placement(out), expect)
        moved = {c.group: c.standby for c in comps if c.preferred == node}
        assert moved
        _check_order(plan, executed(output), moved)
        assert "Fence" not in output and "Fencing" not in output  # still a member: no fencing


@pytest.mark.parametrize("example", CONNECTED, ids=lambda p: p.stem)
def test_an_unmeasured_node_keeps_its_groups(
    connected_up: dict[str, Path], example: Path, tmp_path: Path
) -> None:
    """pingd deleted on the active node (its ping instance restarting, a remote node's
    connection moving) is no news of lost connectivity: nothing moves."""
    plan = _plan(example)
    preferred = sorted({c.preferred for c in _components(plan)} & set(site_nodes(example)))
    for node in preferred:
        cib = tmp_path / f"{node}-unset.xml"
        shutil.copy(connected_up[example.stem], cib)
        set_attribute(cib, node, "pingd", None)
        out = tmp_path / f"{node}-after.xml"
        output = simulate(cib, out)
        changes = [
            a for a in executed(output) if a.split()[1] in ("start", "stop", "promote", "demote")
        ]
        assert changes == [], (node, changes)


@pytest.mark.parametrize("value", ["0", None], ids=["pingd-0", "pingd-undefined"])
@pytest.mark.parametrize("example", CONNECTED, ids=lambda p: p.stem)
def test_no_node_reaching_any_target_moves_and_stops_nothing(
    connected_up: dict[str, Path], example: Path, value: str | None, tmp_path: Path
) -> None:
    """The targets themselves went away: a bonus on no node changes nothing (the textbook's
    -INFINITY ban would stop every service)."""
    plan = _plan(example)
    cib = tmp_path / "cut.xml"
    shutil.copy(connected_up[example.stem], cib)
    for node in _everyone(example):
        set_attribute(cib, node, "pingd", value)
    out = tmp_path / "after.xml"
    output = simulate(cib, out)
    changes = [
        a for a in executed(output) if a.split()[1] in ("start", "stop", "promote", "demote")
    ]
    assert changes == [], changes
    _check_placement(plan, placement(out), {c.group: c.preferred for c in _components(plan)})


@pytest.mark.parametrize("example", CONNECTED, ids=lambda p: p.stem)
def test_fencing_topology_puts_the_heuristics_before_every_fence_device(
    applied: dict[str, Applied], example: Path
) -> None:
    site = load_site(example)
    assert site.connectivity is not None and site.connectivity.fence_heuristics
    fenced = _everyone(example)
    # From the site, not the plan: one heuristics device per distinct list of targets.
    lists: dict[tuple[str, ...], str] = {}  # targets -> the first data centre pinging them
    for node in (*site.nodes, *site.remotes):
        lists.setdefault(site.connectivity.targets_of(node.dc), node.dc or "")
    if len(lists) == 1:
        devices = {"fence-heuristics": next(iter(lists))}
    else:
        devices = {f"fence-heuristics-{dc}": targets for targets, dc in lists.items()}
    expected = sorted(
        (node, index, f"{device},fence-{node}")
        for node in fenced
        for index, device in enumerate(devices, start=1)
    )
    result = _get(applied, example)
    for cib in (result.crm, result.pcs, result.stepwise):
        conf = ET.parse(cib).getroot().find("configuration")
        assert conf is not None
        found = sorted(
            (lv.get("target"), int(lv.get("index", "0")), lv.get("devices"))
            for lv in conf.iterfind("fencing-topology/fencing-level")
        )
        assert found == expected, cib.name
        for device, wanted in devices.items():
            prim = conf.find(f"resources/primitive[@id='{device}']")
            assert prim is not None and (prim.get("class"), prim.get("type")) == (
                "stonith",
                "fence_heuristics_ping",
            )
            params = {nv.get("name"): nv.get("value") for nv in prim.iter("nvpair")}
            assert params["ping_targets"] == ",".join(wanted)
            assert params["ping_maxfail"] == str(len(wanted) - 1)
            assert params["pcmk_host_list"].split() == fenced
    if example.stem == "two-dc":  # per data centre: its own level each, dc1's first
        assert [(i, d) for n, i, d in expected if n == "dc2-n1"] == [
            (1, "fence-heuristics-dc1,fence-dc2-n1"),
            (2, "fence-heuristics-dc2,fence-dc2-n1"),
        ]


def test_remote_nodes_with_per_data_centre_connectivity(ocf_agents: None, tmp_path: Path) -> None:
    """Ping clones on remote nodes too, kept to their data centre; remote nodes are fenced
    through the topology like full nodes; a remote node without targets loses its daemons.
    Its pcs commands include every one of the small remote site's without connectivity: the
    --stepwise path of both is proven here."""
    text = SMALL + '\n[connectivity]\ndc_targets = { a = ["198.51.100.1"], b = ["203.0.113.1"] }\n'
    plan = build(parse_site(text, "remote-connected.toml"))
    full, remotes = ["f1", "f2"], ["r1", "r2"]
    cibs = {
        "crm": empty_cib(tmp_path / "crm.xml", full, remotes),
        "pcs": empty_cib(tmp_path / "pcs.xml", full, remotes),
        "stepwise": empty_cib(tmp_path / "stepwise.xml", full),
    }
    apply_crm(render(plan, "crm"), cibs["crm"])
    apply_pcs(render(plan, "pcs"), cibs["pcs"])
    apply_pcs(render(plan, "pcs"), cibs["stepwise"], stepwise=True)
    for cib in cibs.values():
        verify(cib)
    assert normalised(cibs["crm"]) == normalised(cibs["pcs"]) == normalised(cibs["stepwise"])

    def commands(script: str) -> set[str]:
        return {c for c in script.replace("\\\n", " ").splitlines() if c.startswith("run ")}

    without = render(build(parse_site(SMALL, "remote-small.toml")), "pcs")
    assert commands(without) <= commands(render(plan, "pcs"))
    levels = normalised(cibs["crm"])["fencing-topology"]
    assert len(levels) == 8  # (f1, f2, r1, r2) x (a, b)  # type: ignore[arg-type]
    for node in (*full, *remotes):
        set_attribute(cibs["crm"], node, "pingd", "1000")
    up = tmp_path / "up.xml"
    simulate(cibs["crm"], up)
    where = placement(up)
    assert where["sd1-drbd"] == ("r1", "Promoted") and where["sd1-sd"][0] == "r1"
    # Each data centre's ping clone runs on its own nodes only, remote ones included.
    instances = subprocess.run(
        ["crm_resource", "--locate", "--resource", "connectivity-b-clone"],
        env={**os.environ, "CIB_file": str(up)},
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    assert sorted(re.findall(r"running on: (\S+)", instances)) == ["f2", "r2"], instances
    cut = tmp_path / "cut.xml"
    shutil.copy(up, cut)
    set_attribute(cut, "r1", "pingd", "0")
    after = tmp_path / "after.xml"
    simulate(cut, after)
    where = placement(after)
    assert where["sd1-drbd"] == ("r2", "Promoted") and where["sd1-sd"][0] == "r2"
    assert where["sd3-sd"][0] == "f2" and where["fd1-fd"][0] == "r2" and where["dir-dir"][0] == "f1"
