"""The checks that need the whole site: names, nodes, addresses and devices used twice."""

from __future__ import annotations

from .locate import Path as FieldPath
from .model import Disk, Site, Vip
from .reader import Reader


def cross_check(r: Reader, site: Site) -> None:
    """Checks that need the whole site: names, nodes, addresses and devices used twice."""
    seen_nodes: set[str] = set()
    all_nodes = [(("node", i), n) for i, n in enumerate(site.nodes)]
    all_nodes += [(("remote", i), n) for i, n in enumerate(site.remotes)]
    for where, node in all_nodes:
        if node.name in seen_nodes:
            r.problem((*where, "name"), f"node {node.name!r} is defined twice")
        seen_nodes.add(node.name)
    remotes = {n.name for n in site.remotes}
    dcs = {n.dc for _, n in all_nodes if n.dc}

    components: list[tuple[FieldPath, str, str, str, Vip, Disk | None]] = []
    for i, d in enumerate(site.directors):
        components.append((("director", i), d.name, d.preferred, d.standby, d.vip, None))
        if d.catalog is not None:
            c = d.catalog
            components.append(
                (("director", i, "catalog"), c.name, c.preferred, c.standby, c.vip, c.disk)
            )
            if d.with_catalog and (c.preferred, c.standby) != (d.preferred, d.standby):
                r.problem(
                    ("director", i, "with_catalog"),
                    f"director {d.name!r} runs with its catalog, so the catalog must have "
                    "the same preferred and standby nodes (or set with_catalog = false)",
                )
    for i, s in enumerate(site.storages):
        components.append((("storage", i), s.name, s.preferred, s.standby, s.vip, s.disk))
    for i, f in enumerate(site.filedaemons):
        components.append((("filedaemon", i), f.name, f.preferred, f.standby, f.vip, f.disk))

    names: dict[str, FieldPath] = {n.name: where for where, n in all_nodes}
    ips: dict[str, str] = {}

    for where, node in all_nodes:
        if node.address in ips:
            r.problem((*where, "address"), f"{node.address} is already used by {ips[node.address]}")
        elif node.address:
            ips[node.address] = f"node {node.name}"
    devices: dict[str, str] = {}
    drbd_resources: dict[str, str] = {}
    for path, name, preferred, standby, vip, disk in components:
        if name in names:
            r.problem((*path, "name"), f"the name {name!r} is used twice")
        names[name] = path
        for role, node_name in (("preferred", preferred), ("standby", standby)):
            if node_name not in seen_nodes:
                r.problem((*path, role), f"there is no node {node_name!r}")
            elif node_name in remotes and path[0] == "director":
                what = "a catalog" if "catalog" in path else "a director"
                r.problem(
                    (*path, role),
                    f"{node_name!r} is a remote node: {what} must run on a full cluster node "
                    "(a remote node has no vote and is only reachable through a connection "
                    "from a full node, so the site's core would stop with that connection; "
                    "remote nodes are for storage and file daemons)",
                )
        if preferred == standby:
            r.problem((*path, "standby"), "must differ from the preferred node")
        elif len(dcs) > 1 and preferred in seen_nodes and standby in seen_nodes:
            pdc, sdc = site.node(preferred).dc, site.node(standby).dc
            if pdc and pdc == sdc:
                r.problem(
                    (*path, "standby"),
                    f"{standby!r} is in the same data centre ({pdc}) as the preferred node; "
                    "the standby must be in another one",
                )
        if vip.ip in ips:
            r.problem((*path, "vip", "ip"), f"{vip.ip} is already used by {ips[vip.ip]}")
        ips[vip.ip] = name
        if disk is not None:
            if disk.device in devices:
                r.problem(
                    (*path, "disk", "device"),
                    f"device {disk.device} is already used by {devices[disk.device]}",
                )
            devices[disk.device] = name
            if disk.drbd_resource is not None:
                if disk.drbd_resource in drbd_resources:
                    r.problem(
                        (*path, "disk", "drbd_resource"),
                        f"DRBD resource {disk.drbd_resource} is already used by "
                        f"{drbd_resources[disk.drbd_resource]}",
                    )
                drbd_resources[disk.drbd_resource] = name
    # A replication VIP is one more address of its catalog.
    for i, d in enumerate(site.directors):
        if d.catalog is not None and d.catalog.replication_vip is not None:
            ip = d.catalog.replication_vip.ip
            if ip in ips:
                r.problem(
                    ("director", i, "catalog", "replication_vip", "ip"),
                    f"{ip} is already used by {ips[ip]}",
                )
            ips[ip] = f"{d.catalog.name} (replication_vip)"
    _check_targets(r, site, ips)
    for where, node in all_nodes:
        if node.fence is None:
            r.problem((*where, "fence"), "every node needs a fence device")
    if len(dcs) > 1 and any(n.dc is None for _, n in all_nodes):
        missing = next(w for w, n in all_nodes if n.dc is None)
        r.problem((*missing, "dc"), "when any node names a data centre (dc), every node must")


def _check_targets(r: Reader, site: Site, used: dict[str, str]) -> None:
    """Ping targets and the arbiter are outside the cluster: never a node's address or a VIP."""
    found: list[tuple[FieldPath, str]] = []
    if site.connectivity is not None:
        c = site.connectivity
        found += [(("connectivity", "targets", i), x) for i, x in enumerate(c.targets)]
        for dc, own in c.dc_targets:
            found += [(("connectivity", "dc_targets", dc, i), x) for i, x in enumerate(own)]
    if site.quorum_device is not None:
        found.append((("quorum_device", "host"), site.quorum_device.host))
    for where, target in found:
        if target in used:
            # A VIP answers from the node that holds it, a node's address from the node itself:
            # neither says whether that node reaches the clients' network.
            r.problem(
                where, f"{target} is used by {used[target]}: name a machine outside the cluster"
            )
