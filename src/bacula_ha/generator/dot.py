"""A picture of the site: Graphviz dot text (and SVG through Graphviz's `dot`, when installed).

Nodes are grouped by data centre; each component is one box listing its group's members in start
order (and its promotable clone), with arrows to its preferred node (solid) and standby (dashed),
what starts after what, what runs with what, and which fence device powers off which node. With
`[connectivity]`: the ping clone(s) and the nodes they run on, and the fence_heuristics_ping
device(s) checked before each fence device.
"""

from __future__ import annotations

import html
import shutil
from typing import NamedTuple

from ..site.model import Site
from .errors import GeneratorError
from .plan import PREFERRED_SCORE, STANDBY_SCORE, Block, Plan, Primitive

# Colours that stay distinguishable when printed in grey.
_COMPONENT_COLOURS = {
    "Director": "#dbe8fb",
    "Catalog": "#fdf0c8",
    "Storage daemon": "#dff2da",
    "File daemon": "#f0e0f5",
}


def _q(text: str) -> str:
    """A dot ID: always double-quoted, with quotes and backslashes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _what(p: Primitive) -> str:
    """A short description of a member: its agent and its most telling parameter."""
    params = dict(p.params)
    detail = next(
        (params[k] for k in ("ip", "directory", "drbd_resource", "config") if k in params), ""
    )
    return f"{p.type} {detail}".strip()


def _component_box(block: Block) -> tuple[str, str] | None:
    """(group id, HTML-like label) of a component block; None for fencing and remote nodes."""
    if not block.groups:
        return None
    group = block.groups[0]
    colour = next(
        (c for prefix, c in _COMPONENT_COLOURS.items() if block.title.startswith(prefix)), "white"
    )
    rows = [f'<TR><TD COLSPAN="2" BGCOLOR="{colour}"><B>{html.escape(block.title)}</B></TD></TR>']
    for clone in block.clones:
        rows.append(
            f'<TR><TD ALIGN="LEFT">promotable</TD><TD ALIGN="LEFT">{html.escape(clone.id)} '
            f"<I>({html.escape(_what(clone.primitive))})</I></TD></TR>"
        )
    for index, member in enumerate(group.members, start=1):
        rows.append(
            f'<TR><TD ALIGN="LEFT">{index}.</TD><TD ALIGN="LEFT">{html.escape(member.id)} '
            f"<I>({html.escape(_what(member))})</I></TD></TR>"
        )
    meta = ", ".join(f"{k}={v}" for k, v in group.meta)
    if meta:
        rows.append(
            f'<TR><TD COLSPAN="2"><FONT POINT-SIZE="8">{html.escape(meta)}</FONT></TD></TR>'
        )
    table = '<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="3">'
    return group.id, f"<{table}{''.join(rows)}</TABLE>>"


_CONNECTIVITY = "darkorange3"


class _Part(NamedTuple):
    """A ping clone or a heuristics device, as drawn."""

    id: str
    label: str  # dot text, already escaped
    nodes: tuple[str, ...]  # where it may run
    clone: bool


def _connectivity_parts(plan: Plan, everywhere: tuple[str, ...]) -> list[_Part]:
    """Every ping clone and fence_heuristics_ping device, with the nodes it may run on."""
    allowed = {r.rsc: r.nodes for b in plan.blocks for r in b.rules if r.operation == "ne"}
    out = []
    for b in plan.blocks:
        for c in b.clones:
            if not c.promotable:
                targets = dict(c.primitive.params).get("host_list", "")
                nodes = allowed.get(c.id, everywhere)
                out.append(_Part(c.id, f"{c.id}\\nping {targets}", nodes, True))
        for p in b.primitives:
            if p.type == "fence_heuristics_ping":
                targets = dict(p.params).get("ping_targets", "").replace(",", " ")
                nodes = allowed.get(p.id, everywhere)
                out.append(_Part(p.id, f"{p.id}\\nping {targets}", nodes, False))
    return out


def render_dot(plan: Plan, site: Site) -> str:
    """The site as a dot digraph (left to right: components, then nodes by data centre)."""
    out = [
        f"digraph {_q(plan.site)} {{",
        f"    graph [rankdir=LR, fontname=Helvetica, labelloc=t, ranksep=1.4, nodesep=0.25, "
        f"label={_q(f'Bacula HA site {plan.site}')}];",
        # A legend instead of a label on every arrow: on a real site they overlap.
        '    legend [shape=note, fontsize=9, label="arrows: green = preferred node, '
        "dashed grey = standby node,\\nblue = starts before, purple dotted = runs with, "
        'red = fences"];',
        "    node [fontname=Helvetica, fontsize=10];",
        "    edge [fontname=Helvetica, fontsize=9];",
    ]
    fences = {
        p.id: dict(p.params).get("pcmk_host_list", "")
        for b in plan.blocks
        for p in b.primitives
        if p.standard == "stonith" and p.type != "fence_heuristics_ping"
    }
    by_dc: dict[str, list[str]] = {}
    for node in (*site.nodes, *site.remotes):
        by_dc.setdefault(node.dc or "", []).append(node.name)
    everywhere = tuple(n.name for n in (*site.nodes, *site.remotes))
    connectivity = _connectivity_parts(plan, everywhere)
    if connectivity:
        out[2] = out[2].replace(
            'red = fences"];',
            "red = fences,\\norange = connectivity: ping clone (dotted to the nodes it runs on), "
            'fence heuristics (dashed: checked before that fence device)"];',
        )
    for index, (dc, names) in enumerate(sorted(by_dc.items())):
        label = f"data centre {dc}" if dc else "nodes"
        out.append(f"    subgraph cluster_dc{index} {{")
        out.append(f"        label={_q(label)}; style=rounded; color=grey40;")
        for name in names:
            node = site.node(name)
            kind = "remote node" if node.remote else "full node"
            text = f"{name}\\n{kind}" + (f"\\n{node.address}" if node.address else "")
            style = "dashed" if node.remote else "solid"
            out.append(
                f'        {_q("node:" + name)} [shape=box3d, style={style}, label="{text}"];'
            )
        for device, target in fences.items():
            if target in names:
                out.append(
                    f"        {_q(device)} [shape=octagon, color=red3, fontcolor=red3, "
                    f"fontsize=8, label={_q(device)}];"
                )
        # A ping clone or heuristics device kept to this data centre is drawn inside it.
        for part in connectivity:
            if len(by_dc) > 1 and set(part.nodes) <= set(names):
                out.append(_connectivity_node(part, "        "))
        out.append("    }")
    for part in connectivity:
        if len(by_dc) == 1 or not any(set(part.nodes) <= set(n) for n in by_dc.values()):
            out.append(_connectivity_node(part, "    "))
    for device, target in fences.items():
        out.append(f"    {_q(device)} -> {_q('node:' + target)} [color=red3];")
    for part in connectivity:
        for name in part.nodes if part.clone else ():
            out.append(
                f"    {_q(part.id)} -> {_q('node:' + name)} [color={_CONNECTIVITY}, "
                "style=dotted, arrowhead=none, constraint=false];"
            )
    for block in plan.blocks:
        for level in block.levels:
            for first, then in zip(level.devices, level.devices[1:], strict=False):
                out.append(f"    {_q(first)} -> {_q(then)} [color={_CONNECTIVITY}, style=dashed];")
    for block in plan.blocks:
        box = _component_box(block)
        if box is None:
            continue
        gid, label = box
        out.append(f"    {_q(gid)} [shape=plain, label={label}];")
        for loc in block.locations:
            if loc.rsc != gid:
                continue
            if loc.score == PREFERRED_SCORE:
                attrs = "color=darkgreen, penwidth=1.6"
            elif loc.score == STANDBY_SCORE:
                attrs = "color=grey35, style=dashed"
            else:
                continue
            out.append(f"    {_q(gid)} -> {_q('node:' + loc.node)} [{attrs}];")
    for block in plan.blocks:
        for order in block.orders:
            # Optional orders (after the ping clone) only matter within one transition: the
            # dotted connectivity lines show that clone instead of an arrow to every group.
            if order.kind != "Optional" and (order.first_action, order.then_action) == (
                "start",
                "start",
            ):
                out.append(
                    f"    {_q(order.first)} -> {_q(order.then)} [color=blue3, penwidth=1.4];"
                )
        for coloc in block.colocations:
            if coloc.with_role is None:
                out.append(
                    f"    {_q(coloc.rsc)} -> {_q(coloc.with_rsc)} [color=purple, "
                    "style=dotted, penwidth=1.4, constraint=false];"
                )
    out.append("}")
    return "\n".join(out) + "\n"


def _connectivity_node(part: _Part, indent: str) -> str:
    shape = "box, style=rounded" if part.clone else "octagon"
    return (
        f"{indent}{_q(part.id)} [shape={shape}, color={_CONNECTIVITY}, "
        f'fontcolor={_CONNECTIVITY}, fontsize=8, label="{part.label}"];'
    )


def render_svg(dot_text: str) -> str:
    """SVG drawn by Graphviz's dot; a clear error when Graphviz is not installed."""
    dot = shutil.which("dot")
    if dot is None:
        raise GeneratorError(
            "--format svg needs Graphviz's `dot` (Debian: apt install graphviz); "
            "--format dot writes the graph as text"
        )
    import subprocess  # only this format runs a program

    try:
        done = subprocess.run(
            [dot, "-Tsvg"], input=dot_text, capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GeneratorError(f"running {dot} failed: {exc}") from None
    if done.returncode != 0:
        raise GeneratorError(f"{dot} -Tsvg failed: {done.stderr.strip()}")
    return done.stdout
