"""The status as a table for people and as JSON for monitoring systems."""

from __future__ import annotations

import json
from dataclasses import asdict

from .collect import Status

# The JSON document's version: monitoring systems key on it.
FORMAT_VERSION = 1


def as_json(status: Status, indent: int | None = 2) -> str:
    """The versioned document; `indent=None` puts it on one line (`status --watch`: NDJSON)."""
    doc = {
        "version": FORMAT_VERSION,
        "dc": status.dc,
        "nodes": status.nodes,
        "components": [
            {**asdict(c), "checks": [{**asdict(k), "health": k.health} for k in c.checks]}
            for c in status.components
        ],
        "failures": [{**asdict(f), "sentence": f.sentence()} for f in status.failures],
    }
    return json.dumps(doc, indent=indent, sort_keys=True) + "\n"


def as_text(status: Status) -> str:
    nodes = ", ".join(f"{name} ({state})" for name, state in sorted(status.nodes.items()))
    lines = [f"Nodes: {nodes}    DC: {status.dc or '-'}", ""]
    header = ("component", "role", "runs on", "would go", "VIP", "health by depth")
    rows = [header]
    for c in sorted(status.components, key=lambda c: (c.role, c.rsc)):
        health = "  ".join(f"{k.depth}:{k.health}" for k in c.checks) or "-"
        rows.append(
            (
                c.rsc,
                c.role,
                ", ".join(c.running_on) or "STOPPED",
                c.would_go or "-",
                c.vip or "-",
                health,
            )
        )
    if not status.components:
        return "\n".join([*lines, "No Bacula component in this cluster's configuration."]) + "\n"
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    for row in rows:
        lines.append(
            "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)) + "  " + row[-1]
        )
    details = [
        f"  {c.rsc} {key}: {value}"
        for c in status.components
        for key, value in sorted(c.details.items())
    ]
    details += [
        f"  {c.rsc} depth {k.depth}: {k.reason}"
        for c in status.components
        for k in c.checks
        if k.reason
    ]
    if details:
        lines += ["", "Details:", *details]
    lines += ["", "Failed actions:" if status.failures else "Failed actions: none"]
    lines += [f"  {f.sentence()}" for f in status.failures]
    return "\n".join(lines) + "\n"
