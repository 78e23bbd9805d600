"""Parsers of the components (directors, catalogs, storage and file daemons) and of their fields."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from . import agents
from .locate import Path as FieldPath
from .model import (
    DATABASE_AGENTS,
    EXTRA_RE,
    MONITOR_DEPTH_RE,
    NIC_RE,
    OP_KINDS,
    OP_NAMES,
    Catalog,
    Confsync,
    Daemon,
    Database,
    Director,
    Disk,
    Extra,
    Failure,
    OpOverride,
    Ops,
    Pairs,
    Vip,
)
from .reader import Reader


def read_failure(r: Reader, t: dict[str, Any], path: FieldPath) -> Failure:
    """`failure = { migration_threshold = N, failure_timeout = "10min" }`; 0 turns either off."""
    if "failure" not in t:
        return Failure()
    path = (*path, "failure")
    ft = r.table(t["failure"], path, ("migration_threshold", "failure_timeout")) or {}
    threshold = r.integer(ft, "migration_threshold", path, 0, 1000000)
    timeout = None
    if ft.get("failure_timeout") in (0, "0"):
        timeout = 0
    elif "failure_timeout" in ft:
        timeout = r.duration(ft, "failure_timeout", path)
    return Failure(threshold, timeout)


def read_vip(r: Reader, t: dict[str, Any], path: FieldPath, key: str = "vip") -> Vip | None:
    if key not in t:
        return None
    path = (*path, key)
    vt = r.table(t[key], path, ("ip", "cidr_netmask", "nic", "params"), ("ip",))
    if vt is None:
        return None
    ip = r.string(vt, "ip", path)
    netmask = r.integer(vt, "cidr_netmask", path, 0, 128)
    nic = r.string(vt, "nic", path, pattern=NIC_RE, what="a network interface name")
    params = r.params(vt, "params", path)
    for key in ("ip", "cidr_netmask", "nic"):
        if any(k == key for k, _ in params):
            r.problem((*path, "params", key), f"set {path[-1]}.{key} instead")
    if ip is None:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        r.problem((*path, "ip"), f"{ip!r} is not an IP address")
        return None
    if netmask is not None and netmask > address.max_prefixlen:
        r.problem((*path, "cidr_netmask"), f"{netmask} is too long for {ip}")
    if address.is_unspecified or address.is_multicast:
        r.problem((*path, "ip"), f"{ip} cannot be a virtual IP")
    return Vip(str(address), netmask, nic, params)


def read_disk(r: Reader, t: dict[str, Any], path: FieldPath) -> Disk | None:
    if "disk" not in t:
        return None
    path = (*path, "disk")
    known = ("type", "device", "fstype", "directory", "options", "drbd_resource", "params")
    dt = r.table(t["disk"], path, known, ("type", "device", "fstype", "directory"))
    if dt is None:
        return None
    kind = r.string(dt, "type", path)
    if kind is not None and kind not in ("drbd", "shared"):
        r.problem((*path, "type"), f"{kind!r} is not one of: drbd, shared")
        kind = None
    device = r.string(dt, "device", path)
    fstype = r.string(
        dt, "fstype", path, pattern=re.compile(r"^[a-z0-9_.]+$"), what="a filesystem type"
    )
    directory = r.string(dt, "directory", path)
    if directory is not None and not directory.startswith("/"):
        r.problem((*path, "directory"), f"{directory!r} is not an absolute path")
    options = r.string(dt, "options", path)
    drbd_resource = r.ident(dt, "drbd_resource", path)
    if kind == "drbd" and "drbd_resource" not in dt:
        r.problem((*path, "drbd_resource"), "is required for a DRBD disk")
    if kind == "shared" and "drbd_resource" in dt:
        r.problem((*path, "drbd_resource"), 'is only for type = "drbd"')
    params = r.params(dt, "params", path)
    for key, _ in params:
        if key in ("device", "fstype", "directory", "options", "drbd_resource"):
            r.problem((*path, "params", key), f"set disk.{key} instead")
    if None in (kind, device, fstype, directory):
        return None
    assert kind and device and fstype and directory
    return Disk(kind, device, fstype, directory, options, drbd_resource, params)


def read_ops(r: Reader, t: dict[str, Any], path: FieldPath, kinds: Iterable[str]) -> Ops:
    if "ops" not in t:
        return ()
    path = (*path, "ops")
    allowed = tuple(kinds)
    table = r.table(t["ops"], path, allowed)
    out: list[tuple[str, str, OpOverride]] = []
    for kind, ops in (table or {}).items():
        if kind not in allowed:
            continue
        ops_table = r.table(ops, (*path, kind), OP_NAMES | _depth_keys(ops)) or {}
        for op, spec in ops_table.items():
            if op not in OP_NAMES and not MONITOR_DEPTH_RE.match(op):
                continue
            where = (*path, kind, op)
            st = r.table(spec, where, ("interval", "timeout", "depth"))
            if st is None:
                continue
            if "interval" in st and op in ("start", "stop", "promote", "demote", "notify"):
                r.problem((*where, "interval"), f"{op} is not a recurring operation")
            depth = r.integer(st, "depth", where, 0, 100)
            if depth is not None and op not in ("monitor", "deep_monitor"):
                r.problem((*where, "depth"), "only monitors have a depth")
            out.append(
                (
                    kind,
                    op,
                    OpOverride(
                        r.duration(st, "interval", where), r.duration(st, "timeout", where), depth
                    ),
                )
            )
    return tuple(out)


def _depth_keys(ops: object) -> frozenset[str]:
    """The `monitor_<depth>` keys present (the middle monitors of an agent with three depths)."""
    if not isinstance(ops, dict):
        return frozenset()
    return frozenset(k for k in ops if MONITOR_DEPTH_RE.match(k))


def read_extra(r: Reader, t: dict[str, Any], path: FieldPath) -> tuple[Extra, ...]:
    out: list[Extra] = []
    for index, item in enumerate(r.array(t, "extra", path)):
        where: FieldPath = (*path, "extra", index)
        et = r.table(item, where, ("agent", "params"), ("agent",))
        if et is None:
            continue
        spec = r.string(
            et,
            "agent",
            where,
            pattern=EXTRA_RE,
            what="an agent like lsb:NAME, systemd:NAME or ocf:PROVIDER:TYPE",
        )
        params = r.params(et, "params", where)
        if spec is not None:
            out.append(Extra(spec, params))
    return tuple(out)


def _bacula_params(r: Reader, t: dict[str, Any], path: FieldPath, agent: str) -> Pairs:
    params = r.params(t, "params", path)
    known = agents.parameters(agent)
    for key, value in params:
        if key not in known:
            r.problem(
                (*path, "params", key),
                f"{agent} has no parameter {key!r} (it has: {', '.join(sorted(known))})",
            )
        elif (problem := agents.value_problem(agent, key, value)) is not None:
            # The agent's own rules, before the CIB: not its 6 on the cluster.
            r.problem((*path, "params", key), problem)
    return params


def _component_head(
    r: Reader, t: dict[str, Any], path: FieldPath, kind: str, extra_keys: tuple[str, ...]
) -> tuple[str | None, str | None, str | None, Vip | None, Ops]:
    keys = ("name", "preferred", "standby", "vip", "params", "ops", "failure", *extra_keys)
    r.table(t, path, keys, ("name", "preferred", "standby", "vip"))
    name = r.ident(t, "name", path)
    preferred = r.ident(t, "preferred", path)
    standby = r.ident(t, "standby", path)
    vip = read_vip(r, t, path)
    ops = read_ops(r, t, path, OP_KINDS[kind])
    return name, preferred, standby, vip, ops


def read_director(
    r: Reader, t: dict[str, Any], path: FieldPath, confsync_default: dict[str, Any]
) -> Director | None:
    name, preferred, standby, vip, ops = _component_head(
        r, t, path, "director", ("with_catalog", "catalog", "confsync", "extra")
    )
    params = _bacula_params(r, t, path, "bacula-dir")
    with_catalog = r.boolean(t, "with_catalog", path, True)
    extra = read_extra(r, t, path)
    failure = read_failure(r, t, path)
    # The site-wide [confsync] is the default; a director's own confsync table adds to it.
    cs_path = (*path, "confsync")
    own = r.table(t.get("confsync", {}), cs_path, ("enabled", "params")) or {}
    enabled = r.boolean(
        own, "enabled", cs_path, r.boolean(confsync_default, "enabled", ("confsync",), True)
    )
    merged = dict(_bacula_params(r, confsync_default, ("confsync",), "bacula-confsync"))
    merged.update(_bacula_params(r, own, cs_path, "bacula-confsync"))
    catalog = None
    if "catalog" in t:
        catalog = read_catalog(r, t["catalog"], (*path, "catalog"), name, preferred, standby)
    if None in (name, preferred, standby, vip):
        return None
    assert name and preferred and standby and vip
    return Director(
        name,
        preferred,
        standby,
        vip,
        params,
        with_catalog,
        catalog,
        Confsync(enabled, tuple(merged.items())),
        ops,
        extra,
        failure,
    )


def read_catalog(
    r: Reader,
    raw: object,
    path: FieldPath,
    director: str | None,
    preferred: str | None,
    standby: str | None,
) -> Catalog | None:
    keys = (
        "name",
        "preferred",
        "standby",
        "vip",
        "params",
        "ops",
        "failure",
        "backend",
        "disk",
        "database",
        "replication_vip",
    )
    t = r.table(raw, path, keys, ("vip", "backend", "database"))
    if t is None:
        return None
    name = r.ident(t, "name", path) if "name" in t else (f"{director}-cat" if director else None)
    preferred = r.ident(t, "preferred", path) if "preferred" in t else preferred
    standby = r.ident(t, "standby", path) if "standby" in t else standby
    vip = read_vip(r, t, path)
    ops = read_ops(r, t, path, OP_KINDS["catalog"])
    params = _bacula_params(r, t, path, "bacula-catalog")
    backend = r.string(t, "backend", path)
    if backend is not None and backend not in DATABASE_AGENTS:
        r.problem((*path, "backend"), f"{backend!r} is not one of: postgresql, mysql")
        backend = None
    if backend == "mysql" and "sync_standby_names" in dict(params):
        # The agent's own rule across two parameters (it says 6 on the cluster otherwise).
        r.problem((*path, "params", "sync_standby_names"), "is for the postgresql backend only")
    disk = read_disk(r, t, path)
    failure = read_failure(r, t, path)
    database = None
    dpath = (*path, "database")
    db_keys = ("agent", "replicated", "params", "wait_start")
    dt = r.table(t.get("database", {}), dpath, db_keys, ("agent",))
    if dt is not None and backend is not None:
        agent = r.string(dt, "agent", dpath)
        if agent is not None and agent not in DATABASE_AGENTS[backend]:
            choices = ", ".join(DATABASE_AGENTS[backend])
            r.problem(
                (*dpath, "agent"), f"{agent!r} does not serve {backend} (use one of: {choices})"
            )
            agent = None
        replicated = r.boolean(dt, "replicated", dpath, agent == "pgsqlms")
        db_params = r.params(dt, "params", dpath)
        if agent == "pgsqlms" and not replicated:
            r.problem((*dpath, "replicated"), "pgsqlms always manages a replicated PostgreSQL")
        if agent == "mysql" and replicated:
            r.problem((*dpath, "replicated"), "replication is supported for PostgreSQL only")
        if agent == "pgsql" and replicated and "rep_mode" not in dict(db_params):
            r.problem(
                (*dpath, "params", "rep_mode"), "a replicated pgsql needs rep_mode (sync or async)"
            )
        if replicated and disk is not None:
            r.problem(
                (*path, "disk"), "a replicated catalog keeps its data on local disks: remove disk"
            )
        if not replicated and "disk" not in t:
            r.problem(
                (*path, "disk"),
                "is required unless the database is replicated "
                "(a drbd or shared disk for the database files)",
            )
        wait_start = r.boolean(dt, "wait_start", dpath, True)
        if "wait_start" in dt and (agent != "pgsql" or replicated):
            r.problem((*dpath, "wait_start"), "is for a pgsql database on a disk only")
        if agent is not None:
            database = Database(agent, replicated, db_params, wait_start)
    replication_vip = None
    if "replication_vip" in t:
        if database is not None and not database.replicated:
            r.problem(
                (*path, "replication_vip"), "only a replicated database has a replication VIP"
            )
        replication_vip = read_vip(r, t, path, "replication_vip")
    if None in (name, preferred, standby, vip, backend, database):
        return None
    assert name and preferred and standby and vip and backend and database
    return Catalog(
        name,
        backend,
        preferred,
        standby,
        vip,
        disk,
        database,
        params,
        ops,
        failure,
        replication_vip,
    )


def read_daemon(r: Reader, t: dict[str, Any], path: FieldPath, kind: str) -> Daemon | None:
    name, preferred, standby, vip, ops = _component_head(r, t, path, kind, ("disk", "extra"))
    params = _bacula_params(r, t, path, "bacula-sd" if kind == "storage" else "bacula-fd")
    disk = read_disk(r, t, path)
    extra = read_extra(r, t, path)
    failure = read_failure(r, t, path)
    if None in (name, preferred, standby, vip):
        return None
    assert name and preferred and standby and vip
    return Daemon(kind, name, preferred, standby, vip, disk, params, ops, extra, failure)
