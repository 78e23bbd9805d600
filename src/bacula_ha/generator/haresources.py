"""Translates Heartbeat v1 `haresources` lines into a site description (TOML text)."""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..site.model import ID_RE
from .errors import HaresourcesError

_DIRECTOR = {"bacula-dir", "bacula-director"}
_STORAGE = {"bacula-sd", "bacula-storage", "bacula-storage-daemon"}
_FILEDAEMON = {"bacula-fd", "bacula-client", "bacula-file-daemon"}
_DATABASES = {
    "postgresql": ("postgresql", "pgsql"),
    "postgres": ("postgresql", "pgsql"),
    "pgsql": ("postgresql", "pgsql"),
    "mysql": ("mysql", "mysql"),
    "mysqld": ("mysql", "mysql"),
    "mariadb": ("mysql", "mysql"),
}
_PREFIX = {"director": "dir", "catalog": "cat", "storage": "sd", "filedaemon": "fd"}
_TITLE = {
    "director": "director",
    "catalog": "catalog",
    "storage": "storage daemon",
    "filedaemon": "file daemon",
}


@dataclass
class _Group:
    """One haresources line, decoded."""

    line: int
    node: str
    vips: list[dict[str, object]] = field(default_factory=list)
    drbd: str | None = None
    filesystem: dict[str, str] | None = None
    kinds: list[str] = field(default_factory=list)
    database: tuple[str, str] | None = None
    extra: list[str] = field(default_factory=list)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Lines without comments, backslash continuations joined, with their first line number."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            out.append((start, pending.strip()))
        pending = ""
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def _vip(arg: str, where: str) -> dict[str, object]:
    # IPaddr::IP[/NETMASK[/NIC[/BROADCAST]]]
    parts = arg.split("/")
    try:
        ip = str(ipaddress.ip_address(parts[0]))
    except ValueError:
        raise HaresourcesError(f"{where}: {parts[0]!r} is not an IP address") from None
    vip: dict[str, object] = {"ip": ip}
    if len(parts) > 1 and parts[1]:
        if not parts[1].isdigit():
            raise HaresourcesError(f"{where}: netmask {parts[1]!r} is not a prefix length")
        vip["cidr_netmask"] = int(parts[1])
    if len(parts) > 2 and parts[2]:
        vip["nic"] = parts[2]
    return vip


def _parse_line(number: int, text: str, source: str, warnings: list[str]) -> _Group:
    words = text.split()
    where = f"{source}:{number}"
    node = words[0]
    if not ID_RE.match(node):
        raise HaresourcesError(f"{where}: node name {node!r} is not usable as a cluster node name")
    group = _Group(number, node)
    ip_words: list[tuple[int, str]] = []  # (index in words, the word)
    for index, word in enumerate(words[1:], start=1):
        name, *args = word.split("::")
        lower = name.lower()
        if lower in ("ipaddr", "ipaddr2") or (not args and _looks_like_ip(name)):
            group.vips.append(_vip(args[0] if args else name, where))
            ip_words.append((index, word))
        elif lower == "drbddisk":
            if not args or args[0] == "all":
                raise HaresourcesError(f"{where}: drbddisk needs a DRBD resource name, not 'all'")
            group.drbd = args[0]
        elif lower == "filesystem":
            if len(args) < 3:
                raise HaresourcesError(
                    f"{where}: Filesystem needs DEVICE::MOUNTPOINT::FSTYPE, got {word!r}"
                )
            group.filesystem = {"device": args[0], "directory": args[1], "fstype": args[2]}
            if len(args) > 3:
                group.filesystem["options"] = args[3]
        elif lower in _DIRECTOR:
            group.kinds.append("director")
        elif lower in _STORAGE:
            group.kinds.append("storage")
        elif lower in _FILEDAEMON:
            group.kinds.append("filedaemon")
        elif lower in _DATABASES:
            group.kinds.append("catalog")
            group.database = _DATABASES[lower]
        elif args or not re.match(r"^[A-Za-z0-9_.@-]+$", name):
            # A Heartbeat resource script with arguments (MailTo::..., IPsrcaddr::...) has no
            # init script of that name to fall back on: say so rather than guess.
            warnings.append(
                f"{where}: {word!r} dropped: no equivalent; add it to the site "
                "by hand if it is still needed"
            )
        else:
            group.extra.append(f"lsb:{name}")
            warnings.append(
                f"{where}: {name} is not a Bacula component: kept as lsb:{name}; "
                f"check it exists on every node (or use systemd:{name})"
            )
    if not group.kinds:
        raise HaresourcesError(f"{where}: no Bacula daemon or catalog database in this group")
    if len(group.vips) < len(group.kinds):
        raise HaresourcesError(f"{where}: " + _missing_ips(words, group.kinds, ip_words))
    if group.drbd and not group.filesystem:
        raise HaresourcesError(f"{where}: drbddisk::{group.drbd} without a Filesystem")
    return group


def _labels(kinds: list[str]) -> list[str]:
    """What the message calls each component of a line: "the director", "the 2nd storage
    daemon" when a kind is there more than once."""
    out = []
    for i, kind in enumerate(kinds):
        nth = kinds[: i + 1].count(kind)
        ordinal = {1: "1st", 2: "2nd", 3: "3rd"}.get(nth, f"{nth}th")
        out.append(f"the {ordinal + ' ' if kinds.count(kind) > 1 else ''}{_TITLE[kind]}")
    return out


def _missing_ips(words: list[str], kinds: list[str], ip_words: list[tuple[int, str]]) -> str:
    """Why a line with fewer IP addresses than components is refused, and exactly what to
    add: the IP addresses go to the components in the order both are written, so the new ones
    go after the last one there is (with its netmask and NIC), one for each component left."""
    labels = _labels(kinds)
    have = len(ip_words)
    kept = [f"{labels[i]} keeps {ip_words[i][1]}" for i in range(have)]
    needed = labels[have:]
    if ip_words:
        last = ip_words[-1][1]
        name, _, arg = last.rpartition("::")
        resource = name or "IPaddr"
        suffix = arg[len(arg.split("/")[0]) :]  # /NETMASK/NIC as the last one has them
        at = ip_words[-1][0] + 1
    else:
        resource, suffix, at = "IPaddr", "", 1
    new = [
        f"{resource}::<ip-for-{label.removeprefix('the ').replace(' ', '-')}>{suffix}"
        for label in needed
    ]
    fixed = " ".join([*words[:at], *new, *words[at:]])
    count = f"{len(kinds)} components" if len(kinds) > 1 else "1 component"
    ips = {0: "no IP address", 1: "1 IP address"}.get(have, f"{have} IP addresses")
    return (
        f"{count} ({', '.join(kinds)}) but {ips}: every component needs its own virtual IP. "
        "The IP addresses of a line go to its components in the order both are written"
        + (f" ({'; '.join(kept)})" if kept else "")
        + (
            f": add an IP address for {needed[0]}"
            if len(needed) == 1
            else f": add {len(needed)} IP addresses, for {', '.join(needed[:-1])} and {needed[-1]},"
        )
        + (f" after {ip_words[-1][1]}" if ip_words else " after the node name")
        + f", e.g.\n  {fixed}"
    )


def _looks_like_ip(text: str) -> bool:
    return bool(re.match(r"^[0-9.]+(/.*)?$|^[0-9a-fA-F:]+:[0-9a-fA-F:]*(/.*)?$", text))


def _q(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def _inline(table: dict[str, object]) -> str:
    return "{ " + ", ".join(f"{k} = {_q(v)}" for k, v in table.items()) + " }"


def convert(
    text: str, source: str, nodes: list[str], site_name: str, remotes: list[str] | None = None
) -> tuple[str, list[str]]:
    """The site description for `text`, and warnings for what needs an admin's attention.

    `remotes` names the nodes to describe as pacemaker_remote nodes ([[remote]]): they may run
    storage and file daemons, not directors or catalogs.
    """
    if not ID_RE.match(site_name):
        raise HaresourcesError(f"site name {site_name!r} is not a valid name")
    warnings: list[str] = []
    groups = [_parse_line(n, t, source, warnings) for n, t in _logical_lines(text)]
    if not groups:
        raise HaresourcesError(f"{source}: no resource groups found")
    remote = set(remotes or [])
    all_nodes = list(dict.fromkeys([*nodes, *(g.node for g in groups), *(remotes or [])]))
    for node in all_nodes:
        if not ID_RE.match(node):
            raise HaresourcesError(f"node name {node!r} is not usable as a cluster node name")
    if len(all_nodes) < 2:
        raise HaresourcesError(
            f"{source}: only node {all_nodes[0]} is named; give the standby with --node NAME"
        )

    full = [n for n in all_nodes if n not in remote]
    for g in groups:
        core = [k for k in g.kinds if k in ("director", "catalog")]
        if g.node in remote and core:
            raise HaresourcesError(
                f"{source}:{g.line}: {g.node} is given as a remote node (--remote) but runs a "
                f"{core[0]}: directors and catalogs need a full cluster node"
            )
    if not full:
        raise HaresourcesError(f"{source}: every node is remote; a cluster needs full nodes")

    def standby(node: str, among: list[str] = all_nodes) -> str:
        # The next node after this one (among full nodes only for directors and catalogs).
        ring = among if node in among else [*among, node]
        return ring[(ring.index(node) + 1) % len(ring)]

    counters: dict[str, int] = {}
    components: dict[str, list[tuple[str, _Group, dict[str, object]]]] = {k: [] for k in _PREFIX}
    for g in groups:
        for kind, vip in zip(g.kinds, g.vips, strict=False):
            counters[kind] = counters.get(kind, 0) + 1
            components[kind].append((f"{_PREFIX[kind]}{counters[kind]}", g, vip))
        if len(g.vips) > len(g.kinds):
            dropped = ", ".join(str(v["ip"]) for v in g.vips[len(g.kinds) :])
            warnings.append(
                f"{source}:{g.line}: more IP addresses than components ({', '.join(g.kinds)}): "
                f"{dropped} dropped (a line's IP addresses go to its components in order)"
            )

    out = [
        f"# Site description imported by bacula-ha from {source} (Heartbeat v1 haresources).",
        "# Review every value marked TODO before generating the cluster configuration.",
        "",
        "[site]",
        f"name = {_q(site_name)}",
        "",
    ]
    for node in all_nodes:
        out += [
            "[[remote]]" if node in remote else "[[node]]",
            f"name = {_q(node)}",
            *(
                ['# TODO: address = "..." (where pacemaker_remote listens)']
                if node in remote
                else []
            ),
            "# TODO: fencing protects the shared data; the generator refuses a node without it.",
            '# fence = { agent = "fence_ipmilan", params = { ip = "...", username = "...", '
            'password = "..." } }',
            "",
        ]
    warnings.append("haresources has no fencing: add a fence device to every [[node]]")
    if remote:
        warnings.append("give every [[remote]] its address and a fence device")

    catalogs = components["catalog"]
    directors = components["director"]
    if len(catalogs) > len(directors):
        warnings.append("more catalog databases than directors: the extra ones are dropped")
    for index, (name, g, vip) in enumerate(directors):
        out += _component("director", name, g, vip, standby(g.node, full))
        if index < len(catalogs):
            cname, cg, cvip = catalogs[index]
            with_catalog = cg.node == g.node
            out.insert(len(out) - 1, f"with_catalog = {_q(with_catalog)}")
            backend, agent = cg.database or ("postgresql", "pgsql")
            out += [
                "[director.catalog]",
                f"name = {_q(cname)}",
                f"preferred = {_q(cg.node)}",
                f"standby = {_q(standby(cg.node, full))}",
                f"backend = {_q(backend)}",
                f"vip = {_inline(cvip)}",
            ]
            out += _disk(cg, warnings)
            out += [
                f"database = {{ agent = {_q(agent)} }}",
                f"# TODO: database params (e.g. pgdata, pgctl) for ocf:heartbeat:{agent}",
                "",
            ]
            if cg.extra:
                warnings.append(
                    f"{source}:{cg.line}: {', '.join(cg.extra)} dropped: a catalog "
                    "group holds only the database, its VIP and bacula-catalog"
                )
            warnings.append(f"{source}:{cg.line}: check the {agent} parameters of {cname}")
    for kind in ("storage", "filedaemon"):
        for name, g, vip in components[kind]:
            out += _component(kind, name, g, vip, standby(g.node))
            disk = _disk(g, warnings)
            out[len(out) - 1 : len(out) - 1] = disk
    return "\n".join(out).rstrip("\n") + "\n", warnings


def _component(kind: str, name: str, g: _Group, vip: dict[str, object], other: str) -> list[str]:
    lines = [
        f"[[{kind}]]",
        f"name = {_q(name)}",
        f"preferred = {_q(g.node)}",
        f"standby = {_q(other)}",
        f"vip = {_inline(vip)}",
    ]
    if g.extra and kind != "catalog":
        lines.append("extra = [" + ", ".join(_inline({"agent": e}) for e in g.extra) + "]")
    lines.append("")
    return lines


def _disk(g: _Group, warnings: list[str]) -> list[str]:
    if g.filesystem is None:
        return []
    disk: dict[str, object] = {"type": "drbd" if g.drbd else "shared"}
    if g.drbd:
        disk["drbd_resource"] = g.drbd
    disk.update(g.filesystem)
    return [f"disk = {_inline(disk)}"]


def convert_file(
    path: Path, nodes: list[str], site_name: str, remotes: list[str] | None = None
) -> tuple[str, list[str]]:
    """`convert` on a file."""
    from bacula_ha.cliout import InputError, read_text

    try:
        text = read_text(path)
    except InputError as exc:
        raise HaresourcesError(str(exc)) from None
    return convert(text, str(path), nodes, site_name, remotes)
