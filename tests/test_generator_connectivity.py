"""`[connectivity]`: validation (file, line, field), the plan's objects, crm/pcs/dot text, check."""
# ruff: noqa: E501  (TOML site text and long parametrised cases read better unwrapped)

from __future__ import annotations

import re

import pytest

from bacula_ha.check.rules import check_site
from bacula_ha.generator.plan import (
    CONNECTED_SCORE,
    Block,
    ConnectedRule,
    FencingLevel,
    Plan,
    Primitive,
    RuleLocation,
    build,
)
from bacula_ha.generator.render import render
from bacula_ha.site.errors import SiteError
from bacula_ha.site.parse import parse_site
from tests.test_generator_schema import BASE as SCHEMA_BASE

# The schema tests' two-node site, with node addresses (a ping target may not be one of them).
BASE = SCHEMA_BASE.replace('dc = "a"\n', 'dc = "a"\naddress = "10.1.0.1"\n').replace(
    'dc = "b"\n', 'dc = "b"\naddress = "10.1.0.2"\n'
)

CONNECTIVITY = """
[connectivity]
targets = ["192.0.2.1", "192.0.2.2"]
"""

REMOTE = """
[[remote]]
name = "r1"
dc = "b"
address = "10.1.0.31"
fence = { agent = "fence_dummy", params = { type = "file", status_file = "/tmp/r1" } }
"""


def plan_of(*sections: str) -> Plan:
    return build(parse_site(BASE + "".join(sections), "site.toml"))


def block(plan: Plan, title: str) -> Block:
    return next(b for b in plan.blocks if b.title == title)


def primitives(plan: Plan) -> dict[str, Primitive]:
    out = {p.id: p for b in plan.blocks for p in b.primitives}
    out.update({c.primitive.id: c.primitive for b in plan.blocks for c in b.clones})
    return out


def connected(plan: Plan) -> dict[str, ConnectedRule]:
    return {c.id: c for b in plan.blocks for c in b.connected}


def rules(plan: Plan) -> dict[str, RuleLocation]:
    return {r.id: r for b in plan.blocks for r in b.rules}


def levels(plan: Plan) -> list[FencingLevel]:
    return [level for b in plan.blocks for level in b.levels]


# ---- validation -------------------------------------------------------------------------------


def problems(text: str) -> list[str]:
    with pytest.raises(SiteError) as info:
        build(parse_site(text, "site.toml"))
    return str(info.value).splitlines()


ERRORS = [
    # (section, field, words, the line the problem must name)
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\ncolour = "red"',
        "connectivity.colour",
        "unknown key",
        'colour = "red"',
    ),
    (
        "[connectivity]\nmultiplier = 10",
        "connectivity.targets",
        "is required (or dc_targets",
        "[connectivity]",
    ),
    (
        '[connectivity]\ntargets = "192.0.2.1"',
        "connectivity.targets",
        "must be an array",
        'targets = "192.0.2.1"',
    ),
    ("[connectivity]\ntargets = []", "connectivity.targets", "at least one target", "targets = []"),
    (
        '[connectivity]\ntargets = ["10.99.0.300"]',
        "connectivity.targets[0]",
        "'10.99.0.300' is not an IP address or a host name",
        'targets = ["10.99.0.300"]',
    ),
    (
        '[connectivity]\ntargets = ["-c9"]',
        "connectivity.targets[0]",
        "is not an IP address or a host name",
        'targets = ["-c9"]',
    ),
    (
        '[connectivity]\ntargets = ["gw one"]',
        "connectivity.targets[0]",
        "is not an IP address or a host name",
        'targets = ["gw one"]',
    ),
    (
        "[connectivity]\ntargets = [5]",
        "connectivity.targets[0]",
        "must be a string",
        "targets = [5]",
    ),
    (
        '[connectivity]\ntargets = ["127.0.0.1"]',
        "connectivity.targets[0]",
        "says nothing about the clients' network",
        'targets = ["127.0.0.1"]',
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1", "192.0.2.01"]',
        "connectivity.targets[1]",
        "is not an IP address or a host name",
        'targets = ["192.0.2.1", "192.0.2.01"]',
    ),
    (
        '[connectivity]\ntargets = ["gw", "GW"]',
        "connectivity.targets[1]",
        "gw is listed twice",
        'targets = ["gw", "GW"]',
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1", "2001:db8::1"]',
        "connectivity.targets",
        "mixes IPv4 and IPv6",
        'targets = ["192.0.2.1", "2001:db8::1"]',
    ),
    (
        '[connectivity]\ntargets = ["10.1.0.2"]',
        "connectivity.targets[0]",
        "10.1.0.2 is used by node n2",
        'targets = ["10.1.0.2"]',
    ),
    (
        '[connectivity]\ntargets = ["10.1.0.12"]',
        "connectivity.targets[0]",
        "10.1.0.12 is used by sd1",
        'targets = ["10.1.0.12"]',
    ),
    (
        '[connectivity]\ndc_targets = { a = ["192.0.2.1"], c = ["192.0.2.3"] }',
        "connectivity.dc_targets.c",
        "no node is in data centre 'c' (the nodes' dc: a, b)",
        "dc_targets =",
    ),
    (
        '[connectivity]\ndc_targets = { a = ["192.0.2.1"] }',
        "connectivity.targets",
        "is required: node n2 is in b, which dc_targets does not list",
        "[connectivity]",
    ),
    (
        '[connectivity]\ndc_targets = ["192.0.2.1"]',
        "connectivity.dc_targets",
        "must be a table of data centre",
        "dc_targets =",
    ),
    (
        '[connectivity]\ndc_targets = { a = [], b = ["192.0.2.2"] }',
        "connectivity.dc_targets.a",
        "at least one target",
        "dc_targets =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nmultiplier = 0',
        "connectivity.multiplier",
        "must be an integer from 1 to 100000",
        "multiplier = 0",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\ndampen = "soon"',
        "connectivity.dampen",
        "'soon' is not a duration",
        'dampen = "soon"',
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nfence_heuristics = "yes"',
        "connectivity.fence_heuristics",
        "must be true or false",
        "fence_heuristics =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { host_list = "x" }',
        "connectivity.params.host_list",
        "set connectivity.targets",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { name = "ping2" }',
        "connectivity.params.name",
        "always pingd",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { multiplier = 5 }',
        "connectivity.params.multiplier",
        "set connectivity.multiplier",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { dampen = 5 }',
        "connectivity.params.dampen",
        "set connectivity.dampen",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { failure_score = 1 }',
        "connectivity.params.failure_score",
        "must lower pingd, not fail",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { attempt = 2 }',
        "connectivity.params.attempt",
        "ocf:pacemaker:ping has no parameter 'attempt'",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nparams = { attempts = "two" }',
        "connectivity.params.attempts",
        "'two' is not a whole number",
        "params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nheuristics_params = { ping_targets = "x" }',
        "connectivity.heuristics_params.ping_targets",
        "set connectivity.targets",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nheuristics_params = { pcmk_host_list = "n1" }',
        "connectivity.heuristics_params.pcmk_host_list",
        "every fenced node",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nheuristics_params = { ping_cout = 3 }',
        "connectivity.heuristics_params.ping_cout",
        "no parameter 'ping_cout'",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nheuristics_params = { ping_count = "fast" }',
        "connectivity.heuristics_params.ping_count",
        "'fast' is not a whole number",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nheuristics_params = { ping_good_count = 3 }',
        "connectivity.heuristics_params.ping_good_count",
        "3 is more than ping_count (2)",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1", "192.0.2.2"]\nheuristics_params = { ping_maxfail = 2 }',
        "connectivity.heuristics_params.ping_maxfail",
        "pass with all 2 targets unreachable",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nfence_heuristics = false\nheuristics_params = { ping_count = 3 }',
        "connectivity.heuristics_params.ping_count",
        "has no effect: fence_heuristics is false",
        "heuristics_params =",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nops.connectivity.monitor = { interval = "soon" }',
        "connectivity.ops.connectivity.monitor.interval",
        "'soon' is not a duration",
        "ops.connectivity.monitor",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nops.connectivity.start = { interval = 5 }',
        "connectivity.ops.connectivity.start.interval",
        "start is not a recurring operation",
        "ops.connectivity.start",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nops.vip.monitor = { interval = 5 }',
        "connectivity.ops.vip",
        "unknown key (allowed: connectivity)",
        "ops.vip.monitor",
    ),
    (
        '[connectivity]\ntargets = ["192.0.2.1"]\nops.connectivity.promote = { timeout = 5 }',
        "connectivity.ops.connectivity.promote",
        "has no such operation here",
        "ops.connectivity.promote",
    ),
]


@pytest.mark.parametrize(
    ("section", "field", "words", "marker"), ERRORS, ids=[e[1] + ":" + e[2][:20] for e in ERRORS]
)
def test_bad_connectivity_names_file_line_and_field(
    section: str, field: str, words: str, marker: str
) -> None:
    text = BASE + "\n" + section + "\n"
    line = next(
        i
        for i, x in enumerate(text.splitlines(), start=1)
        if marker in x and i > len(BASE.splitlines())
    )
    found = problems(text)
    wanted = [p for p in found if p.startswith(f"site.toml:{line}: {field}: ") and words in p]
    assert wanted, (field, line, found)


def test_a_duplicate_written_two_ways_is_one_address() -> None:
    found = problems(BASE + '\n[connectivity]\ntargets = ["2001:db8::1", "2001:DB8:0::1"]\n')
    assert any("connectivity.targets[1]: 2001:db8::1 is listed twice" in p for p in found), found


def test_every_problem_is_reported_not_only_the_first() -> None:
    found = problems(
        BASE + '\n[connectivity]\ntargets = ["127.0.0.1"]\nmultiplier = -1\ndampen = "x"\n'
    )
    assert {"connectivity.targets[0]", "connectivity.multiplier", "connectivity.dampen"} <= {
        p.split(": ")[1] for p in found
    }, found


def test_site_wide_ops_may_name_connectivity() -> None:
    plan = plan_of('\n[ops.connectivity.monitor]\ninterval = "20s"\n', CONNECTIVITY)
    ops = {o.name: (o.interval, o.timeout) for o in primitives(plan)["connectivity-ping"].ops}
    assert ops["monitor"] == (20, 60)


def test_overwhelming_stickiness_is_refused_with_connectivity_only() -> None:
    heavy = BASE.replace('name = "t"', 'name = "t"\nstickiness = 30000')
    build(parse_site(heavy, "site.toml"))  # fine without connectivity
    with pytest.raises(SiteError) as info:
        build(parse_site(heavy + CONNECTIVITY, "site.toml"))
    message = str(info.value)
    assert (
        "site.toml:3: site.stickiness: with [connectivity], a connected standby gets 100000"
        in message
    )
    # The heaviest chain: the catalog group, the director group that runs with it (4 + 3
    # members, confsync on by default), each with its preferred score.
    assert "keeps dir-cat-group, dir-group where it runs adds up to 210200" in message


# ---- the plan ---------------------------------------------------------------------------------


def test_one_ping_clone_with_the_agents_defaults_and_the_sites_values() -> None:
    plan = plan_of(CONNECTIVITY)
    conn = block(plan, "Connectivity")
    (clone,) = conn.clones
    assert (clone.id, clone.primitive.id, clone.meta) == (
        "connectivity-clone",
        "connectivity-ping",
        (("interleave", "true"),),
    )
    assert not clone.promotable
    assert clone.primitive.spec == "ocf:pacemaker:ping"
    assert clone.primitive.params == (
        ("host_list", "192.0.2.1 192.0.2.2"),
        ("multiplier", "1000"),
        ("dampen", "5s"),
    )
    ops = {o.name: (o.interval, o.timeout) for o in clone.primitive.ops}
    assert ops == {"start": (0, 60), "stop": (0, 20), "monitor": (10, 60)}
    assert conn.rules == ()  # one set of targets: runs everywhere
    assert "failure_score" not in dict(clone.primitive.params)


def test_site_values_and_overrides_reach_the_clone() -> None:
    plan = plan_of(
        '\n[connectivity]\ntargets = ["gw.example.org"]\nmultiplier = 10\ndampen = "2min"\n'
        'params = { attempts = 2, timeout = 1 }\nops.connectivity.monitor = { interval = "2s", timeout = "10s" }\n'
    )
    ping = primitives(plan)["connectivity-ping"]
    assert ping.params == (
        ("host_list", "gw.example.org"),
        ("multiplier", "10"),
        ("dampen", "120s"),
        ("attempts", "2"),
        ("timeout", "1"),
    )
    assert [(o.name, o.interval, o.timeout) for o in ping.ops if o.name == "monitor"] == [
        ("monitor", 2, 10)
    ]


def test_every_group_and_promotable_clone_gets_the_bonus_and_waits_optionally() -> None:
    plan = plan_of(CONNECTIVITY)
    rules_ = connected(plan)
    groups = [g.id for b in plan.blocks for g in b.groups]
    clones = [c.id for b in plan.blocks for c in b.clones if c.promotable]
    assert groups == ["dir-cat-group", "dir-group", "sd1-group"] and clones == ["sd1-drbd-clone"]
    expected = {
        f"{g}-on-connected": ConnectedRule(f"{g}-on-connected", g, CONNECTED_SCORE) for g in groups
    }
    expected["sd1-drbd-clone-promoted-on-connected"] = ConnectedRule(
        "sd1-drbd-clone-promoted-on-connected", "sd1-drbd-clone", CONNECTED_SCORE, "Promoted"
    )
    assert rules_ == expected
    assert CONNECTED_SCORE == "100000" and all(r.attribute == "pingd" for r in rules_.values())
    orders = {o.id: o for b in plan.blocks for o in b.orders if o.first == "connectivity-clone"}
    assert set(orders) == {f"{g}-after-connectivity" for g in groups}
    for o in orders.values():
        assert (o.kind, o.first_action, o.then_action) == ("Optional", "start", "start")


def test_without_connectivity_nothing_of_it_is_planned() -> None:
    plan = plan_of()
    assert not connected(plan) and not levels(plan)
    assert all(b.title != "Connectivity" for b in plan.blocks)
    assert all(o.kind == "Mandatory" for b in plan.blocks for o in b.orders)


def test_heuristics_device_and_topology() -> None:
    plan = plan_of(CONNECTIVITY, REMOTE.replace("[[remote]]", "[[remote]]", 1))
    fencing = block(plan, "Fencing")
    heur = primitives(plan)["fence-heuristics"]
    assert heur.spec == "stonith:fence_heuristics_ping"
    assert dict(heur.params) == {
        "ping_targets": "192.0.2.1,192.0.2.2",
        "ping_maxfail": "1",  # any one target passes, as pingd >= 1
        "ping_count": "2",
        "ping_good_count": "1",
        "ping_interval": "1",
        "ping_timeout": "1",
        "pcmk_host_list": "n1 n2 r1",  # every fenced node, remote ones too
    }
    # It runs on the node that fences: nothing keeps it off any node.
    assert not [loc for loc in fencing.locations if loc.rsc == heur.id]
    assert not [r for r in fencing.rules if r.rsc == heur.id]
    assert levels(plan) == [
        FencingLevel("n1", 1, ("fence-heuristics", "fence-n1")),
        FencingLevel("n2", 1, ("fence-heuristics", "fence-n2")),
        FencingLevel("r1", 1, ("fence-heuristics", "fence-r1")),
    ]
    # The fencing delay of two nodes is kept as it was.
    assert dict(primitives(plan)["fence-n1"].params)["pcmk_delay_base"] == "5s"
    assert "pcmk_delay_base" not in dict(primitives(plan)["fence-n2"].params)


def test_heuristics_params_override_the_generators_timing() -> None:
    plan = plan_of(
        CONNECTIVITY,
        "heuristics_params = { ping_count = 3, ping_good_count = 2, pcmk_reboot_timeout = 90 }\n",
    )
    params = dict(primitives(plan)["fence-heuristics"].params)
    assert (params["ping_count"], params["ping_good_count"], params["pcmk_reboot_timeout"]) == (
        "3",
        "2",
        "90",
    )


def test_fence_heuristics_false_keeps_the_ping_clone_only() -> None:
    plan = plan_of(CONNECTIVITY, "fence_heuristics = false\n")
    assert "fence-heuristics" not in primitives(plan)
    assert not levels(plan)
    assert "connectivity-ping" in primitives(plan) and connected(plan)


def test_per_data_centre_targets() -> None:
    plan = plan_of(
        REMOTE,
        '\n[connectivity]\ndc_targets = { a = ["192.0.2.1"], b = ["198.51.100.1", "198.51.100.2"] }\n',
    )
    prims = primitives(plan)
    assert dict(prims["connectivity-a-ping"].params)["host_list"] == "192.0.2.1"
    assert dict(prims["connectivity-b-ping"].params)["host_list"] == "198.51.100.1 198.51.100.2"
    r = rules(plan)
    # Each clone is kept to its data centre's nodes (remote ones too), not probed elsewhere.
    assert r["connectivity-a-clone-only-in-a"] == RuleLocation(
        "connectivity-a-clone-only-in-a",
        "connectivity-a-clone",
        "-INFINITY",
        "ne",
        ("n1",),
        discovery="never",
    )
    assert r["connectivity-b-clone-only-in-b"].nodes == ("n2", "r1")
    # Heuristics per data centre, kept to its full nodes; each checks its own targets.
    assert dict(prims["fence-heuristics-b"].params)["ping_targets"] == "198.51.100.1,198.51.100.2"
    assert dict(prims["fence-heuristics-b"].params)["ping_maxfail"] == "1"
    assert dict(prims["fence-heuristics-a"].params)["ping_maxfail"] == "0"
    assert r["fence-heuristics-a-only-in-a"].nodes == ("n1",)
    assert r["fence-heuristics-b-only-in-b"].nodes == ("n2",)
    # One level per data centre for every fenced node.
    assert levels(plan) == [
        FencingLevel(node, index, (f"fence-heuristics-{dc}", f"fence-{node}"))
        for node in ("n1", "n2", "r1")
        for index, dc in ((1, "a"), (2, "b"))
    ]
    # Every clone sets pingd: one bonus rule per group, an order after each clone.
    assert set(connected(plan)) >= {"dir-group-on-connected"}
    firsts = {
        o.first
        for b in plan.blocks
        for o in b.orders
        if o.then == "dir-group" and o.kind == "Optional"
    }
    assert firsts == {"connectivity-a-clone", "connectivity-b-clone"}


def test_data_centres_with_the_same_targets_share_one_clone() -> None:
    plan = plan_of('\n[connectivity]\ndc_targets = { a = ["192.0.2.1"], b = ["192.0.2.1"] }\n')
    assert "connectivity-ping" in primitives(plan) and "fence-heuristics" in primitives(plan)
    assert not block(plan, "Connectivity").rules
    plan = plan_of(
        '\n[connectivity]\ntargets = ["192.0.2.9"]\ndc_targets = { a = ["192.0.2.1"] }\n'
    )
    # b has no entry: its nodes ping the site's targets, in a clone named after it.
    assert dict(primitives(plan)["connectivity-b-ping"].params)["host_list"] == "192.0.2.9"
    assert dict(primitives(plan)["connectivity-a-ping"].params)["host_list"] == "192.0.2.1"


# ---- rendered text ----------------------------------------------------------------------------


def test_crm_text() -> None:
    text = render(plan_of(CONNECTIVITY), "crm")
    assert 'clone connectivity-clone connectivity-ping \\\n    meta interleave="true"\n' in text
    assert (
        "location dir-group-on-connected dir-group rule 100000: not_defined pingd or pingd gte 1\n"
        in text
    )
    assert (
        "location sd1-drbd-clone-promoted-on-connected sd1-drbd-clone rule $role=Promoted 100000: "
        "not_defined pingd or pingd gte 1\n"
    ) in text
    assert (
        "order dir-group-after-connectivity Optional: connectivity-clone:start dir-group:start\n"
        in text
    )
    assert (
        "fencing_topology \\\n    n1: fence-heuristics,fence-n1 \\\n    n2: fence-heuristics,fence-n2\n"
        in text
    )
    # The why, in the generated comments.
    assert "A bonus, not the textbook's -INFINITY" in text
    assert "a node that reaches none never fences." in text


def test_crm_text_per_data_centre_lists_the_levels_of_a_node_in_order() -> None:
    text = render(
        plan_of('\n[connectivity]\ndc_targets = { a = ["192.0.2.1"], b = ["198.51.100.1"] }\n'),
        "crm",
    )
    assert (
        "fencing_topology \\\n"
        "    n1: fence-heuristics-a,fence-n1 fence-heuristics-b,fence-n1 \\\n"
        "    n2: fence-heuristics-a,fence-n2 fence-heuristics-b,fence-n2\n"
    ) in text
    assert (
        "location fence-heuristics-b-only-in-b fence-heuristics-b rule -INFINITY: #uname ne n2\n"
        in text
    )


def test_pcs_text() -> None:
    text = render(plan_of(CONNECTIVITY), "pcs")
    assert "--no-default-ops clone connectivity-clone interleave=true\n" in text
    assert (
        "run constraint location dir-group rule constraint-id=dir-group-on-connected "
        "score=100000 not_defined pingd or pingd gte 1\n"
    ) in text
    assert (
        "run constraint location sd1-drbd-clone rule constraint-id=sd1-drbd-clone-promoted-on-connected "
        "role=Promoted score=100000 not_defined pingd or pingd gte 1\n"
    ) in text
    assert (
        "run constraint order start connectivity-clone then start dir-group kind=Optional id=dir-group-after-connectivity\n"
        in text
    )
    assert "run stonith level add 1 n1 fence-heuristics fence-n1\n" in text
    assert (
        "run stonith create fence-heuristics fence_heuristics_ping \\\n    ping_targets=192.0.2.1,192.0.2.2 "
        "ping_maxfail=1 ping_count=2 ping_good_count=1 ping_interval=1 ping_timeout=1 'pcmk_host_list=n1 n2'"
    ) in text
    # The CIB of the fast path carries the topology.
    assert (
        '<fencing-level id="fl-n2-1" target="n2" index="1" devices="fence-heuristics,fence-n2" />'
        in text
    )


def test_dot_draws_the_ping_clone_and_the_heuristics() -> None:
    site = parse_site(BASE + CONNECTIVITY, "site.toml")
    text = render(build(site), "dot", site)
    assert "orange = connectivity" in text
    assert re.search(
        r'"connectivity-clone" \[shape=box, style=rounded, .*label="connectivity-clone\\nping 192.0.2.1 192.0.2.2"\]',
        text,
    )
    assert re.search(r'"fence-heuristics" \[shape=octagon, .*ping 192.0.2.1 192.0.2.2"\]', text)
    assert '"connectivity-clone" -> "node:n1" [color=darkorange3, style=dotted' in text
    assert '"fence-heuristics" -> "fence-n2" [color=darkorange3, style=dashed]' in text
    # The heuristics device fences nobody: no red arrow from it, no node named after its list.
    assert '"fence-heuristics" -> "node:' not in text and "node:n1 n2" not in text
    # Optional orders are not "starts before" arrows.
    assert '"connectivity-clone" -> "dir-group"' not in text


def test_dot_draws_a_data_centres_parts_inside_it() -> None:
    site = parse_site(
        BASE + '\n[connectivity]\ndc_targets = { a = ["192.0.2.1"], b = ["198.51.100.1"] }\n', "s"
    )
    text = render(build(site), "dot", site)
    dc_a = text.split("subgraph cluster_dc0 {")[1].split("    }")[0]
    assert '"connectivity-a-clone"' in dc_a and '"fence-heuristics-a"' in dc_a
    assert '"connectivity-b-clone"' not in dc_a


# ---- bacula-ha check: the site rule --------------------------------------------------------------


def test_check_warns_about_a_two_node_site_without_connectivity_or_quorum_device() -> None:
    (finding,) = check_site(parse_site(BASE, "site.toml"))
    assert (finding.code, finding.severity, finding.file, finding.directive, finding.value) == (
        "two-node-without-connectivity",
        "warning",
        "site.toml",
        "[connectivity]",
        None,
    )
    assert "race to fence" in finding.message and "unreachable" in finding.message
    assert "[connectivity]" in finding.fix and "[quorum_device]" in finding.fix
    assert check_site(parse_site(BASE + CONNECTIVITY, "site.toml")) == []
    assert check_site(parse_site(BASE + '\n[quorum_device]\nhost = "192.0.2.100"\n', "s")) == []
    # Three full nodes: the majority decides a partition, no fencing race.
    three = BASE.replace(
        "[[director]]",
        '[[node]]\nname = "n3"\ndc = "b"\nfence = { agent = "fence_dummy" }\n\n[[director]]',
    )
    assert check_site(parse_site(three, "site.toml")) == []


def test_replication_vip_only_for_a_replicated_catalog_and_not_an_address_twice() -> None:
    shared = BASE.replace(
        'vip = { ip = "10.1.0.11", cidr_netmask = 24 }\n',
        'vip = { ip = "10.1.0.11", cidr_netmask = 24 }\nreplication_vip = { ip = "10.1.0.12" }\n',
    )
    with pytest.raises(SiteError) as caught:
        parse_site(shared, "site.toml")
    text = str(caught.value)
    line = next(i for i, x in enumerate(shared.splitlines(), 1) if x.startswith("replication_vip"))
    assert f"site.toml:{line}: director[0].catalog.replication_vip: only a replicated" in text
    # The address is sd1's VIP too: named at the replication VIP.
    assert "director[0].catalog.replication_vip.ip: 10.1.0.12 is already used by sd1" in text
