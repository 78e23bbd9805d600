"""A plan as CIB XML: the `<configuration>` objects that `crm configure load update` would create.

Used by `--format cib` (for `cibadmin --modify --scope configuration`) and by the pcs script's fast
path. Ids follow crmsh's scheme, so the three ways of applying a site give the same CIB.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

from ..site.model import Pairs
from .plan import Clone, ConnectedRule, Group, Plan, Primitive, RuleLocation


def _nvpairs(parent: ET.Element, tag: str, set_id: str, pairs: Pairs) -> None:
    if not pairs:
        return
    block = ET.SubElement(parent, tag, id=set_id)
    for name, value in pairs:
        ET.SubElement(block, "nvpair", name=name, value=value, id=f"{set_id}-{name}")


def _primitive(parent: ET.Element, p: Primitive) -> None:
    attrs = {"id": p.id, "class": p.standard}
    parts = p.spec.split(":")
    if len(parts) == 3:
        attrs["provider"] = parts[1]
    attrs["type"] = p.type
    el = ET.SubElement(parent, "primitive", attrs)
    _nvpairs(el, "instance_attributes", f"{p.id}-instance_attributes", p.params)
    if not p.ops:
        return
    ops = ET.SubElement(el, "operations")
    for o in p.ops:
        op_id = f"{p.id}-{o.name}-{o.interval}s"
        op = ET.SubElement(ops, "op", name=o.name, interval=f"{o.interval}s")
        op.set("timeout", f"{o.timeout}s")
        if o.role:
            op.set("role", o.role)
        op.set("id", op_id)
        if o.depth:
            depth = (("OCF_CHECK_LEVEL", str(o.depth)),)
            _nvpairs(op, "instance_attributes", f"{op_id}-instance_attributes", depth)


def _clone(parent: ET.Element, c: Clone) -> None:
    el = ET.SubElement(parent, "clone", id=c.id)
    _nvpairs(el, "meta_attributes", f"{c.id}-meta_attributes", c.meta)
    _primitive(el, c.primitive)


def _group(parent: ET.Element, g: Group) -> None:
    el = ET.SubElement(parent, "group", id=g.id)
    _nvpairs(el, "meta_attributes", f"{g.id}-meta_attributes", g.meta)
    for member in g.members:
        _primitive(el, member)


def _rule(parent: ET.Element, r: RuleLocation) -> None:
    el = ET.SubElement(parent, "rsc_location", id=r.id, rsc=r.rsc)
    if r.discovery:
        el.set("resource-discovery", r.discovery)
    rule = ET.SubElement(el, "rule")
    if r.role:
        rule.set("role", r.role)
    rule.set("score", r.score)
    rule.set("id", f"{r.id}-rule")
    if len(r.nodes) > 1:
        rule.set("boolean-op", "and" if r.operation == "ne" else "or")
    for index, node in enumerate(r.nodes):
        suffix = "" if index == 0 else f"-{index - 1}"
        ET.SubElement(
            rule,
            "expression",
            operation=r.operation,
            attribute="#uname",
            value=node,
            id=f"{r.id}-rule-expression{suffix}",
        )


def _connected(parent: ET.Element, c: ConnectedRule) -> None:
    el = ET.SubElement(parent, "rsc_location", id=c.id, rsc=c.rsc)
    rule = ET.SubElement(el, "rule")
    if c.role:
        rule.set("role", c.role)
    rule.set("score", c.score)
    rule.set("id", f"{c.id}-rule")
    rule.set("boolean-op", "or")
    for suffix, operation, value in (("", "not_defined", None), ("-0", "gte", "1")):
        expr = ET.SubElement(rule, "expression", operation=operation, attribute=c.attribute)
        if value is not None:
            expr.set("value", value)
        expr.set("id", f"{c.id}-rule-expression{suffix}")


def configuration(plan: Plan) -> ET.Element:
    """The `<configuration>` element holding every object of the plan."""
    conf = ET.Element("configuration")
    crm_config = ET.SubElement(conf, "crm_config")
    _nvpairs(crm_config, "cluster_property_set", "cib-bootstrap-options", plan.properties)
    rsc_defaults = ET.SubElement(conf, "rsc_defaults")
    _nvpairs(rsc_defaults, "meta_attributes", "rsc-options", plan.rsc_defaults)
    resources = ET.SubElement(conf, "resources")
    constraints = ET.SubElement(conf, "constraints")
    for block in plan.blocks:
        for p in block.primitives:
            _primitive(resources, p)
        for c in block.clones:
            _clone(resources, c)
        for g in block.groups:
            _group(resources, g)
        for loc in block.locations:
            ET.SubElement(
                constraints, "rsc_location", id=loc.id, rsc=loc.rsc, score=loc.score, node=loc.node
            )
        for r in block.rules:
            _rule(constraints, r)
        for cr in block.connected:
            _connected(constraints, cr)
        for co in block.colocations:
            el = ET.SubElement(
                constraints,
                "rsc_colocation",
                id=co.id,
                score=co.score,
                rsc=co.rsc,
            )
            el.set("with-rsc", co.with_rsc)
            if co.with_role:
                el.set("with-rsc-role", co.with_role)
        for o in block.orders:
            el = ET.SubElement(constraints, "rsc_order", id=o.id, kind=o.kind, first=o.first)
            el.set("first-action", o.first_action)
            el.set("then", o.then)
            el.set("then-action", o.then_action)
            if not o.symmetrical:
                el.set("symmetrical", "false")
    levels = plan.levels()
    if levels:
        # Level ids as pcs writes them (crmsh numbers them "fencing", "fencing-0", ...).
        topology = ET.SubElement(conf, "fencing-topology")
        for level in levels:
            ET.SubElement(
                topology,
                "fencing-level",
                id=f"fl-{level.target}-{level.index}",
                target=level.target,
                index=str(level.index),
                devices=",".join(level.devices),
            )
    if plan.alerts:
        alerts = ET.SubElement(conf, "alerts")
        for a in plan.alerts:
            el = ET.SubElement(alerts, "alert", id=a.id, path=a.path)
            _nvpairs(el, "instance_attributes", f"{a.id}-instance_attributes", a.options)
            if a.meta:
                _nvpairs(el, "meta_attributes", f"{a.id}-meta_attributes", a.meta)
            select = ET.SubElement(el, "select")
            for kind in a.select:
                ET.SubElement(select, f"select_{kind}")
            for rid, value in a.recipients:
                ET.SubElement(el, "recipient", id=rid, value=value)
    return conf


def render_cib(plan: Plan) -> str:
    """The plan's `<configuration>`, one element per line (diffs stay readable)."""
    conf = configuration(plan)
    ET.indent(conf, space=" ")
    return ET.tostring(conf, encoding="unicode") + "\n"
