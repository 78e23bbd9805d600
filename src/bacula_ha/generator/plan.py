"""Turns a validated site into the cluster objects to create: one plan for every template.

Over 1,000 lines in one module on purpose: the plan's records, which every template and cibxml
read together, and the one _Builder that fills them. Its per-component methods (catalog,
director, daemon, fencing, connectivity) call the shared ones (vip, drbd, bacula, placement) and
all share the site, the ids given so far and the problems list; split across modules they
would pass that state back and forth.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from ..bacula import layout
from ..ocf.redact import hide
from ..site import agents
from ..site.errors import Problem, SiteError
from ..site.model import (
    HEURISTICS_DEFAULTS,
    MAX_ID,
    PG_CTL_WAIT_PATH,
    Alerts,
    Catalog,
    Daemon,
    Director,
    Disk,
    Extra,
    Failure,
    Node,
    OpOverride,
    Ops,
    Pairs,
    Site,
    Vip,
)
from . import agentinfo, quorum
from .agentinfo import AgentInfo, OpDefault

PREFERRED_SCORE = "100"
STANDBY_SCORE = "50"
# The bonus of a node that reaches a ping target, for every Bacula group and the Promoted role
# of every promotable clone. A bonus, not the textbook's -INFINITY on unconnected nodes: when no
# node reaches any target (the targets went away), a ban would leave no eligible node and stop
# everything, while a bonus on no node changes nothing. Finite, so it adds up with the other
# scores instead of swallowing them (INFINITY is 1000000 and any sum reaching it saturates), and
# large, so that it outweighs what keeps a group where it runs: stickiness of every member of
# it and of the groups colocated with it, their preferred/standby scores, and the promotion
# scores the agents set (ocf:linbit:drbd up to 10000). build() checks the site stays below it.
CONNECTED_SCORE = "100000"
PROMOTION_ROOM = 10000
PINGD = "pingd"  # ocf:pacemaker:ping's default attribute, set by every ping clone of a site
PROMOTABLE_META: Pairs = (
    ("promotable", "true"),
    ("promoted-max", "1"),
    ("promoted-node-max", "1"),
    ("clone-max", "2"),
    ("clone-node-max", "1"),
    ("notify", "true"),
)


# One operation of a primitive: the same fields as an agent's default operation, resolved.
Op = OpDefault


@dataclass(frozen=True)
class Primitive:
    """A primitive resource."""

    id: str
    spec: str  # class:provider:type, stonith:type, lsb:type
    params: Pairs
    ops: tuple[Op, ...]

    @property
    def standard(self) -> str:
        return self.spec.split(":", 1)[0]

    @property
    def type(self) -> str:
        return self.spec.rsplit(":", 1)[1]


@dataclass(frozen=True)
class Clone:
    """A clone: promotable (DRBD, a replicated database), or one instance per node (ping)."""

    id: str
    primitive: Primitive
    meta: Pairs

    @property
    def promotable(self) -> bool:
        return ("promotable", "true") in self.meta


@dataclass(frozen=True)
class Group:
    """An ordered, colocated group: members start in order and stop in reverse."""

    id: str
    members: tuple[Primitive, ...]
    meta: Pairs = ()


@dataclass(frozen=True)
class Location:
    """A score for one resource on one node."""

    id: str
    rsc: str
    node: str
    score: str


@dataclass(frozen=True)
class RuleLocation:
    """A rule on #uname: `ne` with `and` (everywhere but these nodes) or `eq` on one node."""

    id: str
    rsc: str
    score: str
    operation: str  # "ne" | "eq"
    nodes: tuple[str, ...]
    role: str | None = None
    discovery: str | None = None  # resource-discovery: "never" skips probes there


@dataclass(frozen=True)
class ConnectedRule:
    """`score` for `rsc` (in `role`, when given) on nodes not found cut off: pingd >= 1 or unset."""

    id: str
    rsc: str
    score: str
    role: str | None = None
    attribute: str = PINGD


@dataclass(frozen=True)
class FencingLevel:
    """One level of the fencing topology: every device must succeed, in this order."""

    target: str
    index: int
    devices: tuple[str, ...]


@dataclass(frozen=True)
class PingSet:
    """Nodes that ping the same targets: one ping clone (and one heuristics device) each."""

    name: str  # "connectivity", or "connectivity-<dc>" when data centres ping their own
    dcs: tuple[str, ...]
    targets: tuple[str, ...]
    nodes: tuple[str, ...]  # full and remote nodes
    restricted: bool  # kept to its nodes (one of several sets)

    @property
    def clone_id(self) -> str:
        return f"{self.name}-clone"

    @property
    def heuristics_id(self) -> str:
        return "fence-heuristics" + self.name[len("connectivity") :]

    def only_here(self, rsc: str) -> str:
        """The id of the rule that keeps `rsc` to this set's nodes."""
        return f"{rsc}-only-in-{'-'.join(self.dcs)}" if self.dcs else f"{rsc}-only-on-its-nodes"


@dataclass(frozen=True)
class Colocation:
    """`rsc` runs where `with_rsc` runs (in `with_role`, when given)."""

    id: str
    rsc: str
    with_rsc: str
    score: str
    with_role: str | None = None


@dataclass(frozen=True)
class Order:
    """`then` waits for `first`."""

    id: str
    first: str
    first_action: str
    then: str
    then_action: str
    kind: str = "Mandatory"
    symmetrical: bool = True  # False: the reverse actions are not ordered the other way round


@dataclass(frozen=True)
class Block:
    """The objects of one component, rendered together under one comment."""

    title: str
    notes: tuple[str, ...]
    primitives: tuple[Primitive, ...] = ()
    clones: tuple[Clone, ...] = ()
    groups: tuple[Group, ...] = ()
    locations: tuple[Location, ...] = ()
    rules: tuple[RuleLocation, ...] = ()
    colocations: tuple[Colocation, ...] = ()
    orders: tuple[Order, ...] = ()
    connected: tuple[ConnectedRule, ...] = ()
    levels: tuple[FencingLevel, ...] = ()


@dataclass(frozen=True)
class Alert:
    """One Pacemaker alert (`<alert>` in the CIB) and its recipients."""

    id: str
    path: str
    options: Pairs  # instance attributes: what the agent reads from its environment
    meta: Pairs
    select: tuple[str, ...]  # nodes, fencing, resources, attributes
    recipients: tuple[tuple[str, str], ...]  # (id, value)


# The role the alert agent names each Bacula agent's resource by.
ALERT_ROLES = {
    "bacula-dir": "director",
    "bacula-sd": "storage",
    "bacula-fd": "filedaemon",
    "bacula-catalog": "catalog",
    "bacula-confsync": "confsync",
}


@dataclass(frozen=True)
class QuorumSetup:
    """The site's quorum device: it lives in corosync.conf, so the outputs only show it."""

    section: str  # corosync.conf's quorum section
    pcs: tuple[str, ...]  # argv after `pcs`
    crm: tuple[str, ...]  # argv after `crm`
    timeouts: bool  # the section sets timeouts (crmsh has no options for them)


@dataclass(frozen=True)
class Plan:
    """Everything a template renders."""

    site: str
    source: str
    properties: Pairs
    rsc_defaults: Pairs
    blocks: tuple[Block, ...]
    alerts: tuple[Alert, ...] = ()
    quorum: QuorumSetup | None = None

    def ids(self) -> list[str]:
        out: list[str] = []
        for b in self.blocks:
            out += [p.id for p in b.primitives]
            for c in b.clones:
                out += [c.id, c.primitive.id]
            for g in b.groups:
                out += [g.id, *(m.id for m in g.members)]
            out += [c.id for c in b.locations]
            out += [c.id for c in b.rules]
            out += [c.id for c in b.colocations]
            out += [c.id for c in b.orders]
            out += [c.id for c in b.connected]
        for a in self.alerts:
            out += [a.id, *(rid for rid, _ in a.recipients)]
        return out

    def levels(self) -> list[FencingLevel]:
        """The fencing topology's levels, in plan order."""
        return [level for b in self.blocks for level in b.levels]

    def topology(self) -> list[tuple[str, list[tuple[str, ...]]]]:
        """(target, the devices of each of its levels in index order), targets in plan order."""
        out: dict[str, list[FencingLevel]] = {}
        for level in self.levels():
            out.setdefault(level.target, []).append(level)
        return [
            (target, [lv.devices for lv in sorted(levels, key=lambda lv: lv.index)])
            for target, levels in out.items()
        ]

    def bacula_resources(self) -> str:
        """`ID=ROLE ...` of every Bacula agent's resource: the alert agent's filter."""
        found = []
        for b in self.blocks:
            members = [*b.primitives, *(c.primitive for c in b.clones)]
            members += [m for g in b.groups for m in g.members]
            for p in members:
                if p.spec.startswith("ocf:bacula:") and p.type in ALERT_ROLES:
                    found.append(f"{p.id}={ALERT_ROLES[p.type]}")
        return " ".join(found)


class _Builder:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.problems: list[Problem] = []
        # Most resources of a kind share their operations: compute each combination once
        # (a 100-daemon site has hundreds of identical op lists).
        self._ops: dict[tuple[int, str, Ops], tuple[tuple[Op, ...], list[tuple[str, str]]]]
        self._ops = {}
        self.ping_sets = ping_sets(site)

    def problem(self, field: str, message: str) -> None:
        message = hide(message, self.site.secrets)
        self.problems.append(Problem(field, message, self.site.line(field)))

    def failure_meta(self, own: Failure) -> Pairs:
        """migration-threshold and failure-timeout of a component (0 leaves one unset)."""
        policy = self.site.failure_policy(own)
        meta: list[tuple[str, str]] = []
        if policy.migration_threshold:
            meta.append(("migration-threshold", str(policy.migration_threshold)))
        if policy.failure_timeout:
            meta.append(("failure-timeout", f"{policy.failure_timeout}s"))
        return tuple(meta)

    def ops(
        self, rid: str, info: AgentInfo, kind: str, overrides: Ops, field: str
    ) -> tuple[Op, ...]:
        """The agent's default operations with the site's, then the component's, overrides."""
        # id(): agent infos are long-lived singletons, and hashing one hashes all its ops.
        key = (id(info), kind, overrides)
        if key not in self._ops:
            self._ops[key] = self._compute_ops(info, kind, overrides)
        ops, problems = self._ops[key]
        for suffix, message in problems:
            self.problem(f"{field}{suffix}", message.format(rid=rid))
        return ops

    def _compute_ops(
        self, info: AgentInfo, kind: str, overrides: Ops
    ) -> tuple[tuple[Op, ...], list[tuple[str, str]]]:
        problems: list[tuple[str, str]] = []  # (field suffix, message with {rid})
        chosen: dict[str, OpDefault] = {o.name: o for o in info.ops}
        for source in (self.site.ops, overrides):
            for okind, name, override in source:
                if okind != kind:
                    continue
                if name not in chosen:
                    have = ", ".join(sorted(chosen))
                    problems.append(
                        (
                            f".ops.{kind}.{name}",
                            f"{info.spec or kind} has no such operation here (it has: {have})",
                        )
                    )
                    continue
                chosen[name] = _apply(chosen[name], override)
        out: list[Op] = []
        seen: dict[int, str] = {}
        for o in chosen.values():
            if o.interval:
                if o.interval in seen:
                    problems.append(
                        (
                            f".ops.{kind}",
                            f"{{rid}}: {o.name} and {seen[o.interval]} both recur every "
                            f"{o.interval}s; Pacemaker needs distinct intervals",
                        )
                    )
                seen[o.interval] = o.name
            out.append(
                Op(
                    "monitor" if o.name.startswith(("monitor", "deep_monitor")) else o.name,
                    o.interval,
                    o.timeout,
                    o.role,
                    o.depth if o.depth else None,
                )
            )
        return tuple(out), problems

    def vip(self, name: str, vip: Vip, ops: Ops, field: str) -> Primitive:
        params: list[tuple[str, str]] = [("ip", vip.ip)]
        if vip.cidr_netmask is not None:
            params.append(("cidr_netmask", str(vip.cidr_netmask)))
        if vip.nic is not None:
            params.append(("nic", vip.nic))
        info = agentinfo.third_party("vip")
        rid = f"{name}-ip"
        return Primitive(
            rid, info.spec, (*params, *vip.params), self.ops(rid, info, "vip", ops, field)
        )

    def filesystem(self, name: str, disk: Disk, ops: Ops, field: str) -> Primitive:
        params = [("device", disk.device), ("directory", disk.directory), ("fstype", disk.fstype)]
        if disk.options is not None:
            params.append(("options", disk.options))
        info = agentinfo.third_party("filesystem")
        rid = f"{name}-fs"
        return Primitive(
            rid, info.spec, (*params, *disk.params), self.ops(rid, info, "filesystem", ops, field)
        )

    def drbd(self, name: str, disk: Disk, ops: Ops, field: str, meta: Pairs) -> Clone:
        assert disk.drbd_resource is not None
        info = agentinfo.third_party("drbd")
        rid = f"{name}-drbd"
        prim = Primitive(
            rid,
            info.spec,
            (("drbd_resource", disk.drbd_resource),),
            self.ops(rid, info, "drbd", ops, field),
        )
        return Clone(f"{rid}-clone", prim, (*PROMOTABLE_META, *meta))

    def bacula(
        self,
        rid: str,
        agent: str,
        kind: str,
        params: Pairs,
        ops: Ops,
        field: str,
        derived: Mapping[str, str] | None = None,
    ) -> Primitive:
        """One of our agents. `derived`: the parameters set here from another field of the
        site (name -> that field), where a value the agent refuses is reported."""
        info = agentinfo.bacula(agent)
        own = {k for k, _ in params}
        params = self.install_paths(agent, info, params)
        # The site's own values passed the same check in the schema; this catches what is set
        # here (archive_mounts from the disk, the catalog's backend, the prefix's paths).
        sources = {
            **{name: "bacula.prefix" for name, _ in params if name not in own},
            **(derived or {}),
        }
        for name, value in params:
            problem = agents.value_problem(agent, name, value)
            if problem is not None:
                where = sources.get(name)
                if where is None:
                    self.problem(f"{field}.params.{name}", problem)
                else:
                    self.problem(where, f"as {agent}'s {name}: {problem}")
        given = {k for k, _ in params}
        for missing in sorted(info.required - given):
            self.problem(f"{field}.params.{missing}", f"{agent} requires this parameter")
        return Primitive(rid, info.spec, params, self.ops(rid, info, kind, ops, field))

    def install_paths(self, agent: str, info: AgentInfo, params: Pairs) -> Pairs:
        """The component's params, then the paths of the site's `[bacula] prefix` it lacks."""
        if self.site.bacula_prefix is None:
            return params  # Debian's layout: the agents' own defaults
        own = dict(params)
        known = info.parameters or frozenset()
        added = [
            (name, value)
            for name, value in prefix_params(agent, layout.under(self.site.bacula_prefix))
            # Only what this agent has (the catalog agent's `binary` is recent).
            if name not in own and name in known
        ]
        return (*params, *added)

    def extras(self, name: str, extra: tuple[Extra, ...], ops: Ops, field: str) -> list[Primitive]:
        out = []
        info = agentinfo.third_party("extra")
        for e in extra:
            rid = f"{name}-" + re.sub(r"[^A-Za-z0-9_.-]", "_", e.spec.rsplit(":", 1)[1])
            out.append(Primitive(rid, e.spec, e.params, self.ops(rid, info, "extra", ops, field)))
        return out

    def placement(
        self, rsc: str, preferred: str, standby: str, role: str | None = None
    ) -> tuple[list[Location], list[RuleLocation]]:
        """Preferred node, then standby, and never anywhere else (where the data is not)."""
        # Outside its two nodes a resource is not probed either (unless the site asks): on a
        # large cluster the probes of every resource on every node dominate the transition.
        discovery = None if self.site.probe_all_nodes else "never"
        rules = [
            RuleLocation(
                f"{rsc}-only-on-pair",
                rsc,
                "-INFINITY",
                "ne",
                (preferred, standby),
                discovery=discovery,
            )
        ]
        if role is None:
            return [
                Location(f"{rsc}-prefers-{preferred}", rsc, preferred, PREFERRED_SCORE),
                Location(f"{rsc}-standby-{standby}", rsc, standby, STANDBY_SCORE),
            ], rules
        # A promotable clone runs on both nodes; where it is promoted is what we prefer.
        rules += [
            RuleLocation(
                f"{rsc}-promote-on-{preferred}", rsc, PREFERRED_SCORE, "eq", (preferred,), role
            ),
            RuleLocation(f"{rsc}-promote-on-{standby}", rsc, STANDBY_SCORE, "eq", (standby,), role),
        ]
        return [], rules

    def component(
        self,
        title: str,
        notes: list[str],
        name: str,
        preferred: str,
        standby: str,
        members: list[Primitive],
        clone: Clone | None,
        meta: Pairs,
    ) -> Block:
        group = Group(f"{name}-group", tuple(members), meta)
        locations, rules = self.placement(group.id, preferred, standby)
        colocations, orders, clones = [], [], []
        if clone is not None:
            clones.append(clone)
            _, clone_rules = self.placement(clone.id, preferred, standby, "Promoted")
            rules += clone_rules
            colocations.append(
                Colocation(f"{group.id}-with-promoted", group.id, clone.id, "INFINITY", "Promoted")
            )
            orders.append(
                Order(f"{group.id}-after-promote", clone.id, "promote", group.id, "start")
            )
        connected = []
        if self.ping_sets:
            connected.append(ConnectedRule(f"{group.id}-on-connected", group.id, CONNECTED_SCORE))
            if clone is not None:
                # The promotion follows connectivity too: the group can only run where the
                # clone is Promoted, so a bonus for the group alone would be outvoted.
                connected.append(
                    ConnectedRule(
                        f"{clone.id}-promoted-on-connected", clone.id, CONNECTED_SCORE, "Promoted"
                    )
                )
            # Optional: the group waits for the ping clone only when both start in the same
            # transition (the first start, so pingd exists when placement is decided); a
            # Mandatory order would restart the group whenever a ping instance restarts.
            for ps in self.ping_sets:
                rid = f"{group.id}-after-{ps.name}"
                orders.append(Order(rid, ps.clone_id, "start", group.id, "start", "Optional"))
        return Block(
            title,
            tuple(notes),
            clones=tuple(clones),
            groups=(group,),
            locations=tuple(locations),
            rules=tuple(rules),
            colocations=tuple(colocations),
            orders=tuple(orders),
            connected=tuple(connected),
        )

    def fencing(self) -> Block:
        prims, locations = [], []
        info = agentinfo.third_party("fence")
        two_node = len(self.site.nodes) == 2
        nodes = [(f"node[{i}]", n) for i, n in enumerate(self.site.nodes)]
        nodes += [(f"remote[{i}]", n) for i, n in enumerate(self.site.remotes)]
        for i, (where, node) in enumerate(nodes):
            assert node.fence is not None
            params = dict(node.fence.params)
            params.setdefault("pcmk_host_list", node.name)
            if two_node and i == 0:
                # On a partition both nodes shoot: delaying the shots at the first node lets it
                # win, so the node that runs the preferred placements survives.
                params.setdefault("pcmk_delay_base", f"{self.site.fence_delay}s")
            rid = f"fence-{node.name}"
            ops = self.ops(rid, info, "fence", (), f"{where}.fence")
            prims.append(Primitive(rid, f"stonith:{node.fence.agent}", tuple(params.items()), ops))
            locations.append(Location(f"{rid}-avoids-self", rid, node.name, "-INFINITY"))
        notes = ["One device per node, kept off the node it powers off."]
        if self.site.remotes:
            notes.append("Remote nodes are fenced like full nodes (the devices run on full nodes).")
        if two_node:
            notes.append(
                f"Two nodes: fencing the first one waits {self.site.fence_delay}s, so it "
                "wins a fencing race."
            )
        heuristics = self.heuristics([node.name for _, node in nodes])
        rules = tuple(r for _, r in heuristics if r is not None)
        prims += [p for p, _ in heuristics]
        levels = tuple(
            FencingLevel(node.name, index, (device.id, f"fence-{node.name}"))
            for _, node in nodes
            for index, (device, _) in enumerate(heuristics, start=1)
        )
        if heuristics:
            notes += self.heuristics_notes(len(heuristics), two_node)
        return Block(
            "Fencing",
            tuple(notes),
            primitives=tuple(prims),
            locations=tuple(locations),
            rules=rules,
            levels=levels,
        )

    def heuristics(self, fenced: list[str]) -> list[tuple[Primitive, RuleLocation | None]]:
        """fence_heuristics_ping devices (one per ping set), each with its placement rule."""
        c = self.site.connectivity
        if c is None or not c.fence_heuristics:
            return []
        info = agentinfo.third_party("heuristics")
        full = {n.name for n in self.site.nodes}
        out: list[tuple[Primitive, RuleLocation | None]] = []
        for ps in self.ping_sets:
            runs_on = tuple(n for n in ps.nodes if n in full)
            if not runs_on:
                continue  # fence devices run on full nodes only: this set cannot check
            # Reaching any one target passes (ping_maxfail = all but one), as pingd >= 1 does.
            params = {
                "ping_targets": ",".join(ps.targets),
                "ping_maxfail": str(len(ps.targets) - 1),
                **{k: str(v) for k, v in HEURISTICS_DEFAULTS.items()},
                # The agent has no list or status action: name every node it may be asked
                # to "fence", so that Pacemaker uses it in each node's topology level.
                "pcmk_host_list": " ".join(fenced),
            }
            params.update(c.heuristics_params)
            rid = ps.heuristics_id
            ops = self.ops(rid, info, "fence", (), "connectivity")
            device = Primitive(rid, info.spec, tuple(params.items()), ops)
            # A data centre's targets are checked from its own nodes only: in a partition
            # without them the device cannot run, and the fencer tries the next level.
            rule = None
            if ps.restricted:
                rule = RuleLocation(ps.only_here(rid), rid, "-INFINITY", "ne", runs_on)
            out.append((device, rule))
        return out

    def heuristics_notes(self, levels: int, two_node: bool) -> list[str]:
        if levels == 1:
            notes = ["Fencing topology: each node's level 1 is a fence_heuristics_ping check, then"]
        else:
            notes = [
                f"Fencing topology: each node's levels 1 to {levels}, one per data centre's ping",
                "targets, are a fence_heuristics_ping check (run in that data centre), then",
            ]
        notes += [
            "the node's own device; both must succeed. The check passes on a node that reaches",
            "any one of its ping targets: a node cut off from the clients' network never fences",
            "its peer.",
        ]
        if two_node:
            notes += [
                "Delays: priority-fencing-delay (if set) holds back the first device of level 1",
                "(the check), pcmk_delay_base the first node's own device once the check passed.",
                "They now decide only a race between two nodes that both reach their targets",
                "(the cluster link alone cut); a node that reaches none never fences.",
            ]
        return notes

    def connectivity(self) -> Block:
        """The ping clone(s): pingd on every node, each set kept to its own nodes."""
        c = self.site.connectivity
        assert c is not None
        info = agentinfo.third_party("connectivity")
        clones, rules = [], []
        discovery = None if self.site.probe_all_nodes else "never"
        for ps in self.ping_sets:
            rid = f"{ps.name}-ping"
            params = (
                ("host_list", " ".join(ps.targets)),
                ("multiplier", str(c.multiplier)),
                ("dampen", f"{c.dampen}s"),
                *c.params,
            )
            prim = Primitive(
                rid, info.spec, params, self.ops(rid, info, "connectivity", c.ops, "connectivity")
            )
            # interleave: a group's instance on one node never waits for another node's ping.
            clones.append(Clone(ps.clone_id, prim, (("interleave", "true"),)))
            if ps.restricted:
                rules.append(
                    RuleLocation(
                        ps.only_here(ps.clone_id),
                        ps.clone_id,
                        "-INFINITY",
                        "ne",
                        ps.nodes,
                        discovery=discovery,
                    )
                )
        targets = "; ".join(
            (f"{', '.join(ps.dcs)}: " if ps.restricted and ps.dcs else "") + " ".join(ps.targets)
            for ps in self.ping_sets
        )
        notes = (
            f"ocf:pacemaker:ping sets the node attribute {PINGD} to {c.multiplier} x the number",
            f"of targets it reaches ({targets}).",
            "Every Bacula group, and the Promoted role of every promotable clone, gets",
            f"{CONNECTED_SCORE} on nodes that did not find themselves cut off ({PINGD} >= 1, or",
            "not measured yet): a node that reaches none of its targets loses them to a",
            "connected standby. A bonus, not the textbook's -INFINITY on 'not_defined pingd or",
            "pingd lt 1': when no node reaches any target (the targets went away), a ban would",
            "stop every service, while a bonus on no node moves nothing. Not measured counts as",
            "connected: a ping instance restarting (its stop deletes pingd), a node just booted",
            "or a remote node whose connection moved must not send its groups away.",
            f"{CONNECTED_SCORE} outweighs stickiness, location preferences, colocated groups and",
            "promotion scores, and stays below INFINITY so that these still count.",
        )
        return Block("Connectivity", notes, clones=tuple(clones), rules=tuple(rules))

    def remotes(self) -> Block:
        """One ocf:pacemaker:remote connection per remote node; its id is the node's name."""
        info = agentinfo.third_party("remote")
        prims = []
        for i, node in enumerate(self.site.remotes):
            prims.append(self.remote(node, info, f"remote[{i}]"))
        notes = (
            "pacemaker_remote nodes: each connection runs on a full node and makes its node",
            "available; they run storage and file daemons, never directors or catalogs.",
        )
        return Block("Remote nodes", notes, primitives=tuple(prims))

    def remote(self, node: Node, info: AgentInfo, field: str) -> Primitive:
        # The server is always explicit (Pacemaker would use the name): `pcs cluster node
        # add-remote` writes it either way, and both formats must give the same CIB.
        params = [("server", node.address or node.name)]
        if node.port is not None:
            params.append(("port", str(node.port)))
        if node.reconnect_interval is not None:
            params.append(("reconnect_interval", f"{node.reconnect_interval}s"))
        ops = self.ops(node.name, info, "remote", (), field)
        return Primitive(node.name, info.spec, tuple(params), ops)

    def catalog(self, c: Catalog, field: str) -> Block:
        db = c.database
        meta = self.failure_meta(c.failure)
        members: list[Primitive] = []
        clone = None
        db_kind = "pgsql-replicated" if db.agent == "pgsql" and db.replicated else db.agent
        db_info = agentinfo.third_party(db_kind)
        db_params = dict(db.params)
        if db.agent == "pgsql" and db.replicated:
            db_params.setdefault("node_list", f"{c.preferred} {c.standby}")
            db_params.setdefault("master_ip", c.vip.ip)
        wait_note = ""
        if db.agent == "pgsql" and not db.replicated and db.wait_start:
            wait_note = _wait_start(db_params)
        rid = f"{c.name}-db"
        database = Primitive(
            rid,
            db_info.spec,
            tuple(db_params.items()),
            self.ops(rid, db_info, "database", c.ops, field),
        )
        notes = [f"Catalog ({c.backend}) on {c.preferred}, standby {c.standby}."]
        notes += [wait_note] if wait_note else []
        if c.disk is not None:
            if c.disk.kind == "drbd":
                clone = self.drbd(c.name, c.disk, c.ops, field, meta)
                notes.append(
                    f"Database files on DRBD resource {c.disk.drbd_resource}: "
                    "the group follows the Promoted side, after promotion."
                )
            else:
                notes.append("Database files on a shared disk.")
            members += [self.filesystem(c.name, c.disk, c.ops, field), database]
        else:
            clone = Clone(f"{rid}-clone", database, (*PROMOTABLE_META, *meta))
            notes.append(
                f"{db.agent} streaming replication: the VIP and bacula-catalog follow the "
                "Promoted database, after promotion."
            )
        params = dict(c.params)
        derived = {}
        if "backend" in (agentinfo.bacula("bacula-catalog").parameters or ()):
            if "backend" not in params:
                derived["backend"] = f"{field}.backend"
            params.setdefault("backend", c.backend)
        repl = None
        if c.replication_vip is not None:
            repl = self.vip(f"{c.name}-repl", c.replication_vip, c.ops, field)
            notes.append(
                f"Standbys replicate from {c.replication_vip.ip}: it follows the Promoted "
                "instance, starts after the promotion and stops after the demotion."
            )
        members += [
            self.vip(c.name, c.vip, c.ops, field),
            self.bacula(
                f"{c.name}-catalog",
                "bacula-catalog",
                "catalog",
                tuple(params.items()),
                c.ops,
                field,
                derived,
            ),
        ]
        block = self.component(
            f"Catalog {c.name}", notes, c.name, c.preferred, c.standby, members, clone, meta
        )
        if repl is None or clone is None:
            return block
        # Outside the group, which stops before the demotion: the old primary's last WAL (its
        # shutdown checkpoint) must still reach the standby through this address, or PAF
        # cancels the switchover. PAF's own setup orders its VIP the same way.
        _, rules = self.placement(repl.id, c.preferred, c.standby)
        return Block(
            block.title,
            block.notes,
            (repl,),
            block.clones,
            block.groups,
            block.locations,
            (*block.rules, *rules[:1]),
            (
                *block.colocations,
                Colocation(f"{repl.id}-with-promoted", repl.id, clone.id, "INFINITY", "Promoted"),
            ),
            (
                *block.orders,
                Order(
                    f"{repl.id}-after-promote",
                    clone.id,
                    "promote",
                    repl.id,
                    "start",
                    symmetrical=False,
                ),
                Order(
                    f"{repl.id}-after-demote",
                    clone.id,
                    "demote",
                    repl.id,
                    "stop",
                    symmetrical=False,
                ),
            ),
            block.connected,
            block.levels,
        )

    def director(self, d: Director, field: str) -> list[Block]:
        blocks = []
        members = [
            self.vip(d.name, d.vip, d.ops, field),
            self.bacula(f"{d.name}-dir", "bacula-dir", "director", d.params, d.ops, field),
        ]
        if d.confsync.enabled:
            members.append(
                self.bacula(
                    f"{d.name}-confsync",
                    "bacula-confsync",
                    "confsync",
                    d.confsync.params,
                    d.ops,
                    field,
                )
            )
        members += self.extras(d.name, d.extra, d.ops, field)
        notes = [f"Director on {d.preferred}, standby {d.standby}; VIP {d.vip.ip}."]
        if d.catalog is not None:
            blocks.append(self.catalog(d.catalog, f"{field}.catalog"))
            notes.append(
                f"The director starts after its catalog {d.catalog.name}'s database and address"
                + (" and runs on the same node." if d.with_catalog else ".")
            )
        block = self.component(
            f"Director {d.name}",
            notes,
            d.name,
            d.preferred,
            d.standby,
            members,
            None,
            self.failure_meta(d.failure),
        )
        if d.catalog is not None:
            cat, me = f"{d.catalog.name}-group", f"{d.name}-group"
            # Only the director daemon needs its catalog (it opens it at start, and its stop
            # records interrupted jobs there): it waits for the database's address, not for
            # bacula-catalog's health check, and the director's VIP waits for nothing. A
            # failover then starts both VIPs and the check beside the database's start.
            daemon, cat_ip = f"{d.name}-dir", f"{d.catalog.name}-ip"
            orders = (
                *block.orders,
                Order(f"{daemon}-after-catalog", cat_ip, "start", daemon, "start"),
            )
            colocs = block.colocations
            if d.with_catalog:
                colocs = (*colocs, Colocation(f"{me}-with-catalog", me, cat, "INFINITY"))
            block = Block(
                block.title,
                block.notes,
                block.primitives,
                block.clones,
                block.groups,
                block.locations,
                block.rules,
                colocs,
                orders,
                block.connected,
                block.levels,
            )
        blocks.append(block)
        return blocks

    def daemon(self, s: Daemon, field: str) -> Block:
        agent, kind, suffix = (
            ("bacula-sd", "storage", "sd")
            if s.kind == "storage"
            else ("bacula-fd", "filedaemon", "fd")
        )
        members = [self.vip(s.name, s.vip, s.ops, field)]
        meta = self.failure_meta(s.failure)
        clone = None
        notes = [
            f"{'Storage' if s.kind == 'storage' else 'File'} daemon on {s.preferred}, "
            f"standby {s.standby}; VIP {s.vip.ip}."
        ]
        if s.disk is not None:
            if s.disk.kind == "drbd":
                clone = self.drbd(s.name, s.disk, s.ops, field, meta)
                notes.append(f"Volumes on DRBD resource {s.disk.drbd_resource}.")
            else:
                notes.append("Volumes on a shared disk.")
            members.append(self.filesystem(s.name, s.disk, s.ops, field))
        params = s.params
        derived = {}
        if s.kind == "storage" and s.disk is not None and "archive_mounts" not in dict(params):
            # The deep monitor then fails when the backup filesystem is not mounted, instead
            # of writing volumes onto the bare mount point on the root filesystem.
            params = (*params, ("archive_mounts", s.disk.directory))
            derived["archive_mounts"] = f"{field}.disk.directory"
        members.append(
            self.bacula(f"{s.name}-{suffix}", agent, kind, params, s.ops, field, derived)
        )
        members += self.extras(s.name, s.extra, s.ops, field)
        title = f"{'Storage daemon' if s.kind == 'storage' else 'File daemon'} {s.name}"
        return self.component(title, notes, s.name, s.preferred, s.standby, members, clone, meta)


def prefix_params(agent: str, where: layout.Layout) -> Pairs:
    """The path parameters of a Bacula agent for an install laid out as `where`."""
    daemon = {"bacula-dir": "dir", "bacula-sd": "sd", "bacula-fd": "fd", "bacula-catalog": "dir"}
    if agent in daemon:
        own: Pairs = (
            ("binary", where.tool(f"bacula-{daemon[agent]}")),
            ("config", where.conf(f"bacula-{daemon[agent]}.conf")),
        )
        if agent == "bacula-dir":
            own += (
                ("bconsole", where.tool("bconsole")),
                ("bconsole_config", where.conf("bconsole.conf")),
            )
        return own
    if agent == "bacula-confsync":
        return (("paths", where.etc),)
    return ()


def ping_sets(site: Site) -> list[PingSet]:
    """The site's ping sets: nodes grouped by the targets they ping, in node order."""
    c = site.connectivity
    if c is None:
        return []
    found: dict[tuple[str, ...], tuple[list[str], list[str]]] = {}
    for node in (*site.nodes, *site.remotes):
        dcs, names = found.setdefault(c.targets_of(node.dc), ([], []))
        if node.dc and node.dc not in dcs:
            dcs.append(node.dc)
        names.append(node.name)
    if len(found) == 1:
        ((targets, (dcs, names)),) = found.items()
        return [PingSet("connectivity", tuple(dcs), targets, tuple(names), False)]
    return [
        PingSet(
            f"connectivity-{dcs[0]}" if dcs else "connectivity",
            tuple(dcs),
            targets,
            tuple(names),
            True,
        )
        for targets, (dcs, names) in found.items()
    ]


def _inertia(blocks: list[Block], stickiness: int) -> tuple[int, str]:
    """The most a connected standby's bonus has to outweigh: (score, the groups concerned).

    Per set of groups and clones colocated with each other: the stickiness of every member,
    each one's preferred score, and room for the promotion scores agents set.
    """
    members: dict[str, int] = {}
    link: dict[str, str] = {}

    def root(rsc: str) -> str:
        while link.get(rsc, rsc) != rsc:
            rsc = link[rsc]
        return rsc

    for b in blocks:
        for g in b.groups:
            members[g.id] = len(g.members)
        for c in b.clones:
            if c.promotable:
                members[c.id] = 1
    for b in blocks:
        for co in b.colocations:
            if co.rsc in members and co.with_rsc in members:
                link[root(co.rsc)] = root(co.with_rsc)
    chains: dict[str, list[str]] = {}
    for rsc in members:
        chains.setdefault(root(rsc), []).append(rsc)
    groups = {g.id for b in blocks for g in b.groups}
    worst = (0, "")
    for chain in chains.values():
        score = sum(stickiness * members[r] + int(PREFERRED_SCORE) for r in chain)
        if not set(chain) <= groups:  # a promotable clone: its agent's promotion scores
            score += PROMOTION_ROOM
        worst = max(worst, (score, ", ".join(chain)))
    return worst


def _apply(op: OpDefault, override: OpOverride) -> OpDefault:
    return OpDefault(
        op.name,
        override.interval if override.interval is not None else op.interval,
        override.timeout if override.timeout is not None else op.timeout,
        op.role,
        override.depth if override.depth is not None else op.depth,
    )


def _alert(alerts: Alerts, resources: str) -> Alert:
    options: list[tuple[str, str]] = [("bacula_resources", resources)]
    if alerts.command:
        options.append(("command", alerts.command))
    if alerts.command_timeout:
        options.append(("command_timeout", str(alerts.command_timeout)))
    return Alert(
        id="bacula-ha-alert",
        path=alerts.path,
        options=tuple(options),
        meta=(("timeout", f"{alerts.timeout}s"),) if alerts.timeout else (),
        select=alerts.select,
        recipients=tuple(
            (f"bacula-ha-alert-recipient-{i}", value)
            for i, value in enumerate(alerts.recipients, start=1)
        ),
    )


def _quorum(site: Site) -> QuorumSetup | None:
    q = site.quorum_device
    section, pcs, crm = (
        quorum.corosync_quorum_section(site),
        quorum.pcs_command(site),
        quorum.crm_command(site),
    )
    if q is None or section is None or pcs is None or crm is None:
        return None
    timeouts = q.timeout is not None or q.sync_timeout is not None or q.heuristics != "off"
    return QuorumSetup(section, pcs, crm, timeouts)


def build(site: Site) -> Plan:
    """The plan of a valid site; raises SiteError for what only the plan can see (ids, ops)."""
    b = _Builder(site)
    blocks = [b.fencing()]
    if site.remotes:
        blocks.append(b.remotes())
    if site.connectivity is not None:
        blocks.append(b.connectivity())
    for i, d in enumerate(site.directors):
        blocks += b.director(d, f"director[{i}]")
    for i, s in enumerate(site.storages):
        blocks.append(b.daemon(s, f"storage[{i}]"))
    for i, f in enumerate(site.filedaemons):
        blocks.append(b.daemon(f, f"filedaemon[{i}]"))
    resources = Plan(site.name, site.source, (), (), tuple(blocks)).bacula_resources()
    plan = Plan(
        site=site.name,
        source=site.source,
        properties=(("stonith-enabled", "true"), *site.properties),
        rsc_defaults=(("resource-stickiness", str(site.stickiness)),),
        blocks=tuple(blocks),
        alerts=(_alert(site.alerts, resources),) if site.alerts is not None else (),
        quorum=_quorum(site),
    )
    if site.connectivity is not None:
        inertia, chain = _inertia(blocks, site.stickiness)
        if inertia >= int(CONNECTED_SCORE):
            b.problem(
                "site.stickiness",
                f"with [connectivity], a connected standby gets {CONNECTED_SCORE}, but what "
                f"keeps {chain} where it runs adds up to {inertia} (stickiness "
                f"{site.stickiness} per member, location and promotion scores): lower the "
                "stickiness so that connectivity can move them",
            )
    seen: set[str] = set()
    for rid in plan.ids():
        if rid in seen:
            b.problem("", f"two objects would get the id {rid!r}: rename a component")
        elif len(rid) > MAX_ID + 32:
            b.problem("", f"the id {rid!r} would be too long: use a shorter name")
        seen.add(rid)
    if b.problems:
        raise SiteError(site.source, b.problems)
    return plan


def _wait_start(db_params: dict[str, str]) -> str:
    """Make ocf:heartbeat:pgsql's start wait for PostgreSQL (pg_ctl-wait, bacula_ha.pgwait)
    when the site names its pg_ctl and psql in one directory; say what was done either way."""
    pgctl, psql = db_params.get("pgctl", ""), db_params.get("psql", "")
    beside = os.path.dirname(pgctl) == os.path.dirname(psql) and pgctl.endswith("/pg_ctl")
    if not (pgctl and psql and beside):
        return (
            "PostgreSQL's start is polled once a second by ocf:heartbeat:pgsql: name pgctl and"
            " psql in one directory for a start that waits for it (pg_ctl-wait)."
        )
    db_params["pgctl"] = PG_CTL_WAIT_PATH
    return (
        f"PostgreSQL's start waits for the database: pgctl is bacula-ha's pg_ctl-wait, which"
        f" runs {pgctl} (beside psql) with -w for a start (database.wait_start = false: off)."
    )
