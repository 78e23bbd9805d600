"""The checks: Bacula resources (as Bacula's parser printed them) against the site's addresses.

Defaults below are Bacula 9.6.7's, read from its binaries' directive tables, and the same in
13.0.3's sources (dird_conf.c, stored_conf.c, filed_conf.c); an absent directive is absent from
bdirjson's output, so the default has to be known here.

About 800 lines in one module on purpose: every check reads the same Facts and reports through
the same _Out, one function per Bacula resource type in the order `check` runs them; the
defaults above are shared by several of them.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ..site.model import Daemon, Director, Node, Site, is_ip
from .findings import ERROR, WARNING, Finding
from .inputs import DIRECTOR, STORAGE, Parsed

DEFAULT_HEARTBEAT = 300  # Heartbeat Interval in every daemon of 9.6.7 and 13.0.3
MAX_HEARTBEAT = 120  # longer: a dead peer holds a job for minutes before it fails
DEFAULT_RESCHEDULE_INTERVAL = 1800
MAX_RESCHEDULE_INTERVAL = 600
DEFAULT_FAILOVER_TIME = 30

# How an address relates to the site.
ANY, OWN_VIP, LOOPBACK, SOCKET, NODE, OTHER_VIP, OTHER = (
    "any",
    "own-vip",
    "loopback",
    "socket",
    "node",
    "other-vip",
    "other",
)


@dataclass(frozen=True)
class Place:
    """Where an address leads: its kind, and the node or component it names."""

    kind: str
    what: str = ""


@dataclass
class Facts:
    """What the site says about addresses and disks, plus /etc/hosts. No site (a lint of the
    configurations alone): no component, node or VIP is known, only loopback is judged."""

    site: Site | None
    hosts: Mapping[str, frozenset[str]]
    failover_time: int = DEFAULT_FAILOVER_TIME
    nodes: dict[str, str] = field(default_factory=dict)  # address or name -> node name
    vips: dict[str, str] = field(default_factory=dict)  # VIP -> "storage sd1" etc.
    disks: list[tuple[str, str]] = field(default_factory=list)  # (directory, component)

    @property
    def site_nodes(self) -> tuple[Node, ...]:
        return self.site.nodes if self.site is not None else ()

    @property
    def directors(self) -> tuple[Director, ...]:
        return self.site.directors if self.site is not None else ()

    @property
    def storages(self) -> tuple[Daemon, ...]:
        return self.site.storages if self.site is not None else ()

    @property
    def filedaemons(self) -> tuple[Daemon, ...]:
        return self.site.filedaemons if self.site is not None else ()

    def __post_init__(self) -> None:
        for n in self.site_nodes:
            self.nodes[n.name.lower()] = n.name
            if n.address:
                self.nodes[_norm(n.address)] = n.name
        for d in self.directors:
            self.vips[d.vip.ip] = f"director {d.name}"
            if d.catalog is not None:
                self.vips[d.catalog.vip.ip] = f"catalog {d.catalog.name}"
                if d.catalog.disk is not None:
                    self.disks.append((d.catalog.disk.directory, d.catalog.name))
        for kind, daemons in (
            ("storage", self.storages),
            ("filedaemon", self.filedaemons),
        ):
            for s in daemons:
                self.vips[s.vip.ip] = f"{kind} {s.name}"
                if s.disk is not None:
                    self.disks.append((s.disk.directory, s.name))

    def place(self, value: str, own: Iterable[str]) -> Place:
        """Classify an address: literal comparison, plus the names /etc/hosts lists (no DNS)."""
        own_set = {_norm(v) for v in own}
        text = value.strip()
        if text.startswith("/"):
            return Place(SOCKET)
        if text in ("", "0.0.0.0", "::", "*"):
            return Place(ANY)
        lowered = text.lower()
        if is_ip(text):
            addresses = {_norm(text)}
        else:
            if lowered == "localhost" or lowered.endswith(".localhost"):
                return Place(LOOPBACK)
            if lowered in self.nodes and not is_ip(lowered):
                return Place(NODE, self.nodes[lowered])
            addresses = {_norm(a) for a in self.hosts.get(lowered, frozenset())}
        if addresses & own_set:
            return Place(OWN_VIP)
        for address in addresses:
            if ipaddress.ip_address(address).is_loopback:
                return Place(LOOPBACK)
            if ipaddress.ip_address(address).is_unspecified:
                return Place(ANY)
        for address in addresses:
            if address in self.nodes:
                return Place(NODE, self.nodes[address])
        for address in addresses:
            if address in self.vips:
                return Place(OTHER_VIP, self.vips[address])
        return Place(OTHER)

    def disk_of(self, path: str) -> str | None:
        """The component whose disk holds `path`, if any."""
        for directory, component in self.disks:
            if _under(path, directory):
                return component
        return None


def _norm(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower()


def _under(path: str, directory: str) -> bool:
    path, directory = os.path.normpath(path), os.path.normpath(directory)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


class _Out:
    """Collects findings for one configuration file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.findings: list[Finding] = []

    def add(
        self,
        code: str,
        severity: str,
        res_type: str,
        res: Mapping[str, Any],
        directive: str,
        value: object,
        message: str,
        fix: str,
    ) -> None:
        self.findings.append(
            Finding(
                code,
                severity,
                self.path,
                res_type,
                str(res.get("Name", "?")),
                directive,
                None if value is None else _text(value),
                message,
                fix,
            )
        )


def _seconds(value: object) -> int | None:
    """A number as Bacula's parser printed it (times in seconds), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def check_site(site: Site) -> list[Finding]:
    """Findings about the site description itself rather than a Bacula configuration."""
    out: list[Finding] = []
    if len(site.nodes) == 2 and site.connectivity is None and site.quorum_device is None:
        out.append(
            Finding(
                "two-node-without-connectivity",
                WARNING,
                site.source,
                "site",
                site.name,
                "[connectivity]",
                None,
                "when the link between the two nodes breaks, both keep quorum and race to fence "
                "each other; nothing tells the cluster which one still reaches the clients, so "
                "a node whose network cable was pulled can win and keep every service, "
                "unreachable",
                "add [connectivity] with ping targets on the clients' network (its fence "
                "heuristics stop an isolated node from fencing), or a [quorum_device] on a "
                "third machine",
            )
        )
    return out


def check(parsed: Parsed, facts: Facts) -> list[Finding]:
    out = _Out(parsed.path)
    if parsed.daemon == DIRECTOR:
        _director_config(parsed, facts, out)
    elif parsed.daemon == STORAGE:
        _storage_config(parsed, facts, out)
    else:
        _filedaemon_config(parsed, facts, out)
    return out.findings


# -- addresses ----------------------------------------------------------------------------------


def _why_not_vip(place: Place, daemon: str, vip_text: str) -> str:
    if place.kind == NODE:
        return (
            f"it is node {place.what}'s own address: on the other node the {daemon} cannot use "
            "it, so after a failover it is unreachable (or cannot even start)"
        )
    if place.kind == LOOPBACK:
        return (
            f"a loopback address only reaches the {daemon} from its own node: nothing elsewhere "
            "can reach it through the cluster's virtual IP"
        )
    if place.kind == SOCKET:
        return f"a local socket only reaches the {daemon} on the same node"
    if place.kind == OTHER_VIP:
        return f"it is the virtual IP of {place.what}, which may run on another node"
    return f"it is not {vip_text}, the address that follows the {daemon} from node to node"


def _vip_text(ips: Iterable[str]) -> str:
    found = sorted(set(ips))
    if len(found) == 1:
        return f"the virtual IP {found[0]}"
    return "a virtual IP of the site (" + ", ".join(found) + ")" if found else "a virtual IP"


def _bind_check(
    out: _Out,
    facts: Facts,
    res_type: str,
    res: Mapping[str, Any],
    key: str,
    directive: str,
    code: str,
    daemon: str,
    vips: list[str],
) -> None:
    """A daemon's listen (or source) address: the VIP or every address; anything else is not
    there on the other node (bind fails) or not reachable from elsewhere. Without a VIP (the
    site does not have this daemon, or no site), only loopback is known to be wrong."""
    value = res.get(key)
    if value is None:
        return
    place = facts.place(str(value), vips)
    if place.kind in (ANY, OWN_VIP) or (not vips and place.kind != LOOPBACK):
        return
    vip = _vip_text(vips)
    out.add(
        code,
        ERROR,
        res_type,
        res,
        directive,
        value,
        f"{directive} {value} binds the {daemon} to an address that does not move with it: "
        + _why_not_vip(place, daemon, vip),
        f"set {directive} = {sorted(vips)[0] if len(vips) == 1 else 'its virtual IP'}, or "
        f"remove {directive} to listen on every address",
    )


def _heartbeat(out: _Out, res_type: str, res: Mapping[str, Any], between: str) -> None:
    value = res.get("HeartbeatInterval")
    seconds = _seconds(value)
    fix = "set Heartbeat Interval = 60 (seconds; at most the time your cluster takes to fail over)"
    why = (
        f"a connection {between} whose other end died with its node is noticed only by TCP "
        "keepalives, which Bacula starts after this interval: until then a running job waits "
        "for a daemon that is gone instead of failing and being rescheduled"
    )
    if value is None:
        out.add(
            "heartbeat-interval-missing",
            WARNING,
            res_type,
            res,
            "Heartbeat Interval",
            None,
            f"not set, so Bacula's default of {DEFAULT_HEARTBEAT} s applies: {why}",
            fix,
        )
    elif seconds == 0:
        out.add(
            "heartbeat-interval-disabled",
            WARNING,
            res_type,
            res,
            "Heartbeat Interval",
            value,
            f"0 turns keepalives off: {why} (possibly forever)",
            fix,
        )
    elif seconds is not None and seconds > MAX_HEARTBEAT:
        out.add(
            "heartbeat-interval-long",
            WARNING,
            res_type,
            res,
            "Heartbeat Interval",
            value,
            f"{value} s is longer than {MAX_HEARTBEAT} s: {why}",
            fix,
        )


def _directories(
    out: _Out, facts: Facts, res_type: str, res: Mapping[str, Any], own: set[str] | None
) -> None:
    """PidDirectory and WorkingDirectory must be on the node's own disks (or the daemon's)."""
    pid_dir = res.get("PidDirectory")
    if pid_dir is not None and (component := facts.disk_of(str(pid_dir))) is not None:
        out.add(
            "pid-directory-on-shared-disk",
            WARNING,
            res_type,
            res,
            "PidDirectory",
            pid_dir,
            f"it is on the disk of {component}, which moves between nodes: after a crash the "
            "dead node's pid file arrives with the disk, and Bacula refuses to start when that "
            "pid belongs to a running process on the new node",
            "set PidDirectory = /run/bacula (node-local)",
        )
    work = res.get("WorkingDirectory")
    if own is None or work is None:
        return
    component = facts.disk_of(str(work))
    if component is not None and component not in own:
        out.add(
            "working-directory-on-other-disk",
            ERROR,
            res_type,
            res,
            "WorkingDirectory",
            work,
            f"it is on the disk of {component}, another cluster resource that may be mounted "
            "on another node (or nowhere) when this daemon starts",
            "set WorkingDirectory to a node-local directory such as /var/lib/bacula",
        )


# -- director ------------------------------------------------------------------------------------


def _site_director(parsed: Parsed, facts: Facts) -> Director | None:
    directors = facts.directors
    if parsed.component is not None:
        return next((d for d in directors if d.name == parsed.component), None)
    if len(directors) == 1:
        return directors[0]
    res = parsed.resources.all("Director")
    name = str(res[0].get("Name", "")) if res else ""
    address = str(res[0].get("DirAddress", "")) if res else ""
    return next((d for d in directors if name == d.name or address == d.vip.ip), None)


def _director_config(parsed: Parsed, facts: Facts, out: _Out) -> None:
    res_all = parsed.resources
    director = _site_director(parsed, facts)
    directors = facts.directors
    dir_vips = [director.vip.ip] if director else [d.vip.ip for d in directors]
    own_disks: set[str] = set()
    if director is not None and director.catalog is not None and director.with_catalog:
        own_disks.add(director.catalog.name)
    for res in res_all.all("Director"):
        for key, directive, code in (
            ("DirAddress", "DirAddress", "director-address-not-vip"),
            ("DirSourceAddress", "DirSourceAddress", "director-source-address-not-vip"),
        ):
            _bind_check(out, facts, "Director", res, key, directive, code, "director", dir_vips)
        _heartbeat(out, "Director", res, "from the director to a client or storage daemon")
        _directories(out, facts, "Director", res, own_disks if directors else None)
    for res_type in ("Storage", "Autochanger"):
        for res in res_all.all(res_type):
            _storage_resource(out, facts, res_type, res)
            _heartbeat(out, res_type, res, "between the director and this storage daemon")
    for res in res_all.all("Client"):
        _client_resource(out, facts, res)
        _heartbeat(out, "Client", res, "between the director and this client")
    _catalogs(out, facts, res_all.all("Catalog"), director)
    for res_type in ("Job",):
        for res in res_all.all(res_type):
            if str(res.get("Type", "")).lower() == "backup":
                _backup_job(out, facts, res)


def _storage_resource(out: _Out, facts: Facts, res_type: str, res: Mapping[str, Any]) -> None:
    storages = facts.storages
    name = str(res.get("Name", ""))
    address = res.get("Address")
    if address is None:
        return
    if not storages:
        # No storage daemon in the site (or no site): only loopback is known to be wrong.
        if facts.place(str(address), []).kind == LOOPBACK:
            out.add(
                "storage-address-not-vip",
                ERROR,
                res_type,
                res,
                "Address",
                address,
                "the director gives this address to the file daemons and connects to it "
                "itself: a loopback address leads every file daemon to itself, and the "
                "director to a storage daemon on whichever node it runs on",
                "set Address to the virtual IP of the storage daemon this resource names",
            )
        return
    matched = next((s for s in storages if s.name == name), None)
    vips = [matched.vip.ip] if matched else [s.vip.ip for s in storages]
    place = facts.place(str(address), vips)
    if place.kind == OWN_VIP:
        return
    # With one storage daemon in the site, that is the one a misaddressed resource means.
    meant = matched or (storages[0] if len(storages) == 1 else None)
    fix = (
        f"set Address = {meant.vip.ip} (the virtual IP of storage {meant.name})"
        if meant
        else "set Address to the virtual IP of the storage daemon this resource names"
    )
    if matched is None and place.kind == OTHER:
        out.add(
            "storage-address-unknown",
            WARNING,
            res_type,
            res,
            "Address",
            address,
            f"{address} is not the virtual IP of any storage daemon of the site "
            f"({', '.join(s.name for s in storages)}) and no site storage is named {name!r}: "
            "if this storage daemon is part of the cluster, the director and the clients lose "
            "it on every failover",
            fix + " (or ignore this if the storage daemon is outside the cluster)",
        )
        return
    out.add(
        "storage-address-not-vip",
        ERROR,
        res_type,
        res,
        "Address",
        address,
        "the director gives this address to the file daemons and connects to it itself: "
        + _why_not_vip(place, "storage daemon", _vip_text(vips)),
        fix,
    )


def _client_resource(out: _Out, facts: Facts, res: Mapping[str, Any]) -> None:
    address = res.get("Address")
    if address is None:
        return
    name = str(res.get("Name", ""))
    matched = next((f for f in facts.filedaemons if f.name == name), None)
    if matched is not None:
        place = facts.place(str(address), [matched.vip.ip])
        if place.kind != OWN_VIP:
            out.add(
                "client-address-not-vip",
                ERROR,
                "Client",
                res,
                "Address",
                address,
                f"client {name} is the site's floating file daemon {matched.name}: "
                + _why_not_vip(place, "file daemon", _vip_text([matched.vip.ip])),
                f"set Address = {matched.vip.ip}",
            )
        return
    if facts.place(str(address), []).kind == LOOPBACK:
        out.add(
            "client-address-loopback",
            WARNING,
            "Client",
            res,
            "Address",
            address,
            "the director moves between nodes, so a loopback address backs up whichever node "
            "the director runs on, silently switching machines after a failover",
            "give each node's file daemon a Client resource with that node's own address "
            "(or a floating file daemon's virtual IP)",
        )


def _catalogs(
    out: _Out, facts: Facts, catalogs: tuple[Mapping[str, Any], ...], director: Director | None
) -> None:
    managed = director.catalog if director is not None else None
    target: Mapping[str, Any] | None = None
    if managed is not None and catalogs:
        wanted = dict(managed.params).get("catalog")
        target = next((c for c in catalogs if c.get("Name") == wanted), None) if wanted else None
        if target is None and not wanted:
            target = catalogs[0]
    colocated = bool(director and director.with_catalog and managed is not None)
    for res in catalogs:
        value = res.get("Address")
        socket_path = res.get("DbSocket")
        directive = "DB Socket" if socket_path and not value else "DB Address"
        shown = value if value is not None else socket_path
        where = str(value) if value is not None else str(socket_path or "/")
        if res is target and managed is not None:
            vip = managed.vip.ip
            place = facts.place(where, [vip])
            if place.kind == OWN_VIP or (place.kind == SOCKET and colocated):
                continue
            if place.kind in (LOOPBACK, SOCKET) and colocated:
                out.add(
                    "catalog-address-local",
                    WARNING,
                    "Catalog",
                    res,
                    directive,
                    shown,
                    f"this reaches catalog {managed.name} only while the director runs on the "
                    "same node as the database (with_catalog = true); the catalog's monitor and "
                    "any other director use its virtual IP",
                    f"set DB Address = {vip}",
                )
                continue
            out.add(
                "catalog-address-not-vip",
                ERROR,
                "Catalog",
                res,
                directive,
                shown,
                f"catalog {managed.name} moves between nodes with its virtual IP {vip}: "
                + _why_not_vip(place, "database", _vip_text([vip])),
                f"set DB Address = {vip}",
            )
            continue
        place = facts.place(where, [])
        if not facts.directors:
            # Whether the director runs beside this database is the site's to say: without a
            # director in the site, loopback is right in that one case only.
            if place.kind == LOOPBACK:
                out.add(
                    "catalog-address-local",
                    WARNING,
                    "Catalog",
                    res,
                    directive,
                    shown,
                    "a loopback address reaches the database server of whichever node the "
                    "director runs on: right only while the director runs beside its catalog "
                    "(with_catalog = true in the site), no catalog or another one after a "
                    "failover otherwise",
                    "set DB Address to the catalog's virtual IP (or a database server outside "
                    "the cluster); beside its catalog, the director may use the local socket "
                    "(no DB Address)",
                )
            continue
        if place.kind in (LOOPBACK, SOCKET):
            out.add(
                "catalog-address-local",
                ERROR,
                "Catalog",
                res,
                directive,
                shown,
                "the director moves between nodes but this points at the database server of "
                "whichever node it runs on: after a failover it finds no catalog, or another "
                "one" + ("" if shown is not None else " (no DB Address: the local socket is used)"),
                "put the catalog in the site ([director.catalog]) and set DB Address to its "
                "virtual IP, or point DB Address at a database server outside the cluster",
            )
        elif place.kind == NODE:
            out.add(
                "catalog-address-node",
                ERROR,
                "Catalog",
                res,
                directive,
                shown,
                _why_not_vip(place, "database", "a virtual IP")
                + "; a database that stays on one node is lost to the director when that "
                "node fails",
                "make the catalog a cluster resource with a virtual IP ([director.catalog]) "
                "and set DB Address to it",
            )


def _backup_job(out: _Out, facts: Facts, res: Mapping[str, Any]) -> None:
    failover = facts.failover_time
    if res.get("RescheduleOnError") is not True:
        out.add(
            "reschedule-on-error-missing",
            WARNING,
            "Job",
            res,
            "Reschedule On Error",
            res.get("RescheduleOnError"),
            "a backup writing to a storage daemon whose node fails ends in error and is never "
            "run again: Bacula does not reconnect, and only rescheduling brings it back without "
            "a hand",
            "set Reschedule On Error = yes, Reschedule Interval = 60 (longer than a failover) "
            "and Reschedule Times = 3",
        )
    else:
        raw = res.get("RescheduleInterval")
        interval = _seconds(raw)
        if interval is None:
            interval = DEFAULT_RESCHEDULE_INTERVAL
        if interval > MAX_RESCHEDULE_INTERVAL:
            out.add(
                "reschedule-interval-long",
                WARNING,
                "Job",
                res,
                "Reschedule Interval",
                raw,
                f"the job is retried only {interval} s after a failover that takes seconds"
                + (" (Bacula's default is 30 minutes)" if raw is None else "")
                + ": the backup window shrinks by that much for nothing",
                f"set Reschedule Interval = {max(60, 2 * failover)} seconds (a little longer "
                "than a failover)",
            )
        elif interval < failover:
            out.add(
                "reschedule-interval-short",
                WARNING,
                "Job",
                res,
                "Reschedule Interval",
                raw,
                f"{interval} s is shorter than the failover time ({failover} s, --failover-time): "
                "the retry can hit a storage daemon that is still moving and use up an attempt",
                f"set Reschedule Interval = {max(60, 2 * failover)} seconds",
            )
        times = res.get("RescheduleTimes")
        if not _seconds(times):
            out.add(
                "reschedule-times-unlimited",
                WARNING,
                "Job",
                res,
                "Reschedule Times",
                times,
                "0 (the default) retries without limit: a job that fails for a reason a "
                "failover does not cure (a client that is gone, a full disk) is run again "
                "and again, holding its slot",
                "set Reschedule Times = 3",
            )
    if res.get("SpoolAttributes") is False and res.get("SpoolData") is not True:
        out.add(
            "spool-attributes-off",
            WARNING,
            "Job",
            res,
            "Spool Attributes",
            False,
            "without spooled attributes the storage daemon cannot end an interrupted job as "
            "Incomplete, so a planned move (stop jobid=N) or a lost connection cannot be "
            "resumed: the whole backup runs again",
            "set Spool Attributes = yes (Bacula 9.6's default)",
        )


# -- storage daemon and file daemon --------------------------------------------------------------


def _storage_config(parsed: Parsed, facts: Facts, out: _Out) -> None:
    storages = facts.storages
    res_all = parsed.resources
    own = res_all.all("Storage")
    matched = None
    if parsed.component is not None:
        matched = next((s for s in storages if s.name == parsed.component), None)
    elif len(storages) == 1:
        matched = storages[0]
    elif own:
        name, address = str(own[0].get("Name", "")), str(own[0].get("SdAddress", ""))
        matched = next((s for s in storages if s.name == name or s.vip.ip == address), None)
    vips = [matched.vip.ip] if matched else [s.vip.ip for s in storages]
    for res in own:
        _bind_check(
            out,
            facts,
            "Storage",
            res,
            "SdAddress",
            "SDAddress",
            "sd-address-not-vip",
            "storage daemon",
            vips,
        )
        _heartbeat(out, "Storage", res, "from the storage daemon to the director or a client")
        _directories(out, facts, "Storage", res, {matched.name} if matched else None)
    if matched is None or matched.disk is None:
        return
    for res in res_all.all("Device"):
        archive = res.get("ArchiveDevice")
        if archive is None or not str(archive).startswith("/") or str(archive).startswith("/dev/"):
            continue
        if not _under(str(archive), matched.disk.directory):
            out.add(
                "archive-device-not-on-disk",
                ERROR,
                "Device",
                res,
                "Archive Device",
                archive,
                f"the volumes are not on storage {matched.name}'s disk "
                f"({matched.disk.directory}), so they stay behind on a failover: the storage "
                "daemon on the other node cannot read or append to them",
                f"set Archive Device to a directory below {matched.disk.directory}",
            )


def _filedaemon_config(parsed: Parsed, facts: Facts, out: _Out) -> None:
    daemons = facts.filedaemons
    res_all = parsed.resources
    own = res_all.all("FileDaemon") or res_all.all("Client")
    matched = None
    if parsed.component is not None:
        matched = next((f for f in daemons if f.name == parsed.component), None)
    elif own:
        name, address = str(own[0].get("Name", "")), str(own[0].get("FdAddress", ""))
        matched = next((f for f in daemons if f.name == name or f.vip.ip == address), None)
    for res in own:
        if matched is not None:
            # A floating file daemon must follow its VIP; any other (a node's own, or one
            # outside the cluster) binds what it likes but loopback (below).
            for key, directive, code in (
                ("FdAddress", "FDAddress", "fd-address-not-vip"),
                ("FdSourceAddress", "FDSourceAddress", "fd-source-address-not-vip"),
            ):
                _bind_check(
                    out,
                    facts,
                    "FileDaemon",
                    res,
                    key,
                    directive,
                    code,
                    "file daemon",
                    [matched.vip.ip],
                )
            _directories(out, facts, "FileDaemon", res, {matched.name})
        elif (bound := res.get("FdAddress")) is not None and (
            facts.place(str(bound), []).kind == LOOPBACK
        ):
            out.add(
                "fd-address-loopback",
                WARNING,
                "FileDaemon",
                res,
                "FDAddress",
                bound,
                "bound to loopback, this file daemon answers only a director on its own node: "
                "the director moves between nodes, so after a failover its backups fail",
                "remove FDAddress to listen on every address (or bind the node's own address)",
            )
        _heartbeat(out, "FileDaemon", res, "from the file daemon to the storage daemon or director")
