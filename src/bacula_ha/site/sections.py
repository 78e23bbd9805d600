"""Parsers of the site's nodes and of its optional sections: alerts, connectivity, quorum device."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from .agents import HEURISTICS_PARAMETERS, PING_PARAMETERS
from .components import read_ops
from .locate import Path as FieldPath
from .model import (
    ALERT_SELECT,
    DEFAULT_ALERT_PATH,
    DEFAULT_DAMPEN,
    DEFAULT_MULTIPLIER,
    EXEC_NAME_RE,
    FENCE_AGENT_RE,
    HEURISTICS_DEFAULTS,
    HEURISTICS_INTEGERS,
    HOST_RE,
    PING_OWN,
    QDEVICE_ALGORITHMS,
    QDEVICE_DEFAULT_SYNC_TIMEOUT,
    QDEVICE_HEURISTICS,
    QDEVICE_PING_MS,
    RECIPIENT_RE,
    Alerts,
    Connectivity,
    Fence,
    Node,
    Pairs,
    QuorumDevice,
    is_ip,
)
from .reader import Reader, kind_of


def read_node(r: Reader, t: dict[str, Any], path: FieldPath, strict: bool = True) -> Node | None:
    if strict:
        r.table(t, path, ("name", "dc", "address", "fence"), ("name", "fence"))
    name = r.ident(t, "name", path)
    dc = r.ident(t, "dc", path)
    address = r.string(t, "address", path)
    if address is not None and not is_ip(address):
        r.problem((*path, "address"), f"{address!r} is not an IP address")
    fence = None
    if "fence" in t:
        fpath = (*path, "fence")
        ft = r.table(t["fence"], fpath, ("agent", "params"), ("agent",))
        if ft is not None:
            agent = r.string(
                ft, "agent", fpath, pattern=FENCE_AGENT_RE, what="a fence agent name (fence_...)"
            )
            params = r.params(ft, "params", fpath)
            if agent is not None:
                fence = Fence(agent, params)
    if name is None:
        return None
    return Node(name, dc, address, fence)


def read_remote(r: Reader, t: dict[str, Any], path: FieldPath) -> Node | None:
    """A pacemaker_remote node: fenced like a full node, reached at address:port."""
    keys = ("name", "dc", "address", "port", "reconnect_interval", "fence")
    r.table(t, path, keys, ("name", "fence"))
    common = {k: v for k, v in t.items() if k in ("name", "dc", "address", "fence")}
    node = read_node(r, common, path, strict=False)
    port = r.integer(t, "port", path, 1, 65535)
    reconnect = r.duration(t, "reconnect_interval", path)
    if node is None:
        return None
    return Node(node.name, node.dc, node.address, node.fence, True, port, reconnect)


def read_alerts(r: Reader, raw: object) -> Alerts | None:
    path: FieldPath = ("alerts",)
    keys = ("path", "recipients", "select", "command", "command_timeout", "timeout")
    t = r.table(raw, path, keys) or {}
    if not isinstance(raw, dict):
        return None
    absolute = re.compile(r"^/[A-Za-z0-9_./+-]+$")
    agent = r.string(t, "path", path, pattern=absolute, what="an absolute path")
    command = r.string(t, "command", path, pattern=absolute, what="an absolute path")
    recipients: list[str] = []
    for i, value in enumerate(r.array(t, "recipients", path)):
        where = (*path, "recipients", i)
        if not isinstance(value, str) or not RECIPIENT_RE.match(value):
            r.problem(
                where, f"{value!r} is not a file (absolute path), 'syslog' or 'syslog:FACILITY'"
            )
        elif value in recipients:
            r.problem(where, f"{value!r} is listed twice")
        else:
            recipients.append(value)
    select: list[str] = []
    for i, value in enumerate(r.array(t, "select", path)):
        if value not in ALERT_SELECT:
            r.problem((*path, "select", i), f"{value!r} is not one of {', '.join(ALERT_SELECT)}")
        elif value not in select:
            select.append(value)
    command_timeout = r.duration(t, "command_timeout", path)
    if command_timeout is not None and command_timeout > 25:
        r.problem((*path, "command_timeout"), "must be at most 25s (alerts are short-lived)")
    return Alerts(
        path=agent or DEFAULT_ALERT_PATH,
        recipients=tuple(recipients) or ("syslog",),
        select=tuple(select) or ALERT_SELECT[:3],
        command=command,
        command_timeout=command_timeout,
        timeout=r.duration(t, "timeout", path),
    )


def read_connectivity(r: Reader, raw: object, nodes: list[Node]) -> Connectivity | None:
    path: FieldPath = ("connectivity",)
    keys = (
        "targets",
        "dc_targets",
        "multiplier",
        "dampen",
        "fence_heuristics",
        "params",
        "heuristics_params",
        "ops",
    )
    t = r.table(raw, path, keys)
    if t is None:
        return None
    targets = _targets(r, t, "targets", path) if "targets" in t else ()
    dcs = {n.dc for n in nodes if n.dc}
    dc_targets: list[tuple[str, tuple[str, ...]]] = []
    dpath = (*path, "dc_targets")
    raw_dc = t.get("dc_targets", {})
    if not isinstance(raw_dc, dict):
        r.problem(dpath, f"must be a table of data centre = [targets], not {kind_of(raw_dc)}")
        raw_dc = {}
    for dc in raw_dc:
        if dc not in dcs:
            names = ", ".join(sorted(dcs)) or "none"
            r.problem((*dpath, dc), f"no node is in data centre {dc!r} (the nodes' dc: {names})")
        else:
            dc_targets.append((dc, _targets(r, raw_dc, dc, dpath)))
    if "targets" not in t and "dc_targets" not in t:
        r.problem((*path, "targets"), "is required (or dc_targets for every data centre)")
    elif "targets" not in t:
        own = {dc for dc, _ in dc_targets}
        for node in nodes:
            if node.dc not in own:
                whose = "has no data centre" if node.dc is None else f"is in {node.dc}"
                r.problem(
                    (*path, "targets"),
                    f"is required: node {node.name} {whose}, which dc_targets does not list",
                )
                break
    multiplier = r.integer(t, "multiplier", path, 1, 100000)
    dampen = r.duration(t, "dampen", path)
    fence_heuristics = r.boolean(t, "fence_heuristics", path, True)
    params = r.params(t, "params", path)
    known = PING_PARAMETERS
    for key, value in params:
        at = (*path, "params", key)
        if key in PING_OWN:
            r.problem(at, PING_OWN[key])
        elif key not in known:
            r.problem(at, f"ocf:pacemaker:ping has no parameter {key!r}")
        elif key in ("attempts", "timeout") and not _whole(value, 1):
            r.problem(at, f"{value!r} is not a whole number of at least 1")
    heuristics_params = r.params(t, "heuristics_params", path)
    _heuristics_params(r, heuristics_params, path, fence_heuristics, targets, dc_targets)
    ops = read_ops(r, t, path, ("connectivity",))
    return Connectivity(
        targets=targets,
        dc_targets=tuple(dc_targets),
        multiplier=DEFAULT_MULTIPLIER if multiplier is None else multiplier,
        dampen=DEFAULT_DAMPEN if dampen is None else dampen,
        fence_heuristics=fence_heuristics,
        params=params,
        heuristics_params=heuristics_params,
        ops=ops,
    )


def _targets(r: Reader, t: dict[str, Any], key: str, path: FieldPath) -> tuple[str, ...]:
    """A non-empty list of ping targets: IP addresses (normalised) or host names."""
    where = (*path, key)
    if not isinstance(t[key], list):
        r.problem(where, f"must be an array of addresses or host names, not {kind_of(t[key])}")
        return ()
    if not t[key]:
        r.problem(where, "must list at least one target")
    out: list[str] = []
    for index, value in enumerate(t[key]):
        target = _target(r, value, (*where, index))
        if target is not None and target in out:
            r.problem((*where, index), f"{target} is listed twice")
        elif target is not None:
            out.append(target)
    versions = {ipaddress.ip_address(x).version for x in out if is_ip(x)}
    if len(versions) > 1:
        # ocf:pacemaker:ping refuses such a list (OCF_ERR_CONFIGURED) when fping is installed.
        r.problem(where, "mixes IPv4 and IPv6 addresses (ocf:pacemaker:ping with fping refuses it)")
    return tuple(out)


def _target(r: Reader, value: object, where: FieldPath) -> str | None:
    if not isinstance(value, str):
        r.problem(where, f"must be a string, not {kind_of(value)}")
        return None
    if not r.clean(where, value):
        return None
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        if not HOST_RE.match(value) or value.replace(".", "").isdigit():
            r.problem(where, f"{value!r} is not an IP address or a host name")
            return None
        return value.lower()
    if address.is_loopback or address.is_unspecified or address.is_multicast:
        r.problem(
            where,
            f"{value} cannot be a ping target: it says nothing about the clients' network",
        )
        return None
    return str(address)


def _heuristics_params(
    r: Reader,
    params: Pairs,
    path: FieldPath,
    enabled: bool,
    targets: tuple[str, ...],
    dc_targets: list[tuple[str, tuple[str, ...]]],
) -> None:
    """fence_heuristics_ping's extra parameters: known names, integers where the agent wants."""
    known = HEURISTICS_PARAMETERS
    values = dict(params)
    for key, value in params:
        where = (*path, "heuristics_params", key)
        if not enabled:
            r.problem(where, "has no effect: fence_heuristics is false")
        elif key == "ping_targets":
            r.problem(where, "set connectivity.targets (or dc_targets) instead")
        elif key == "pcmk_host_list":
            r.problem(where, "the generator lists every fenced node: the device fences for all")
        elif key not in known and not key.startswith("pcmk_"):
            r.problem(where, f"fence_heuristics_ping has no parameter {key!r}")
        elif key in HEURISTICS_INTEGERS and not _whole(value, 1):
            r.problem(where, f"{value!r} is not a whole number of at least 1")
        elif key == "ping_maxfail" and not _whole(value, 0):
            r.problem(where, f"{value!r} is not a whole number")
    if not enabled:
        return
    count = values.get("ping_count", str(HEURISTICS_DEFAULTS["ping_count"]))
    good = values.get("ping_good_count", str(HEURISTICS_DEFAULTS["ping_good_count"]))
    if _whole(count, 1) and _whole(good, 1) and int(good) > int(count):
        r.problem(
            (*path, "heuristics_params", "ping_good_count"),
            f"{good} is more than ping_count ({count}): the check could never pass",
        )
    maxfail = values.get("ping_maxfail")
    lists = [x for x in (targets, *(own for _, own in dc_targets)) if x]
    if maxfail is not None and _whole(maxfail, 0) and lists:
        fewest = min(len(x) for x in lists)
        if int(maxfail) >= fewest:
            r.problem(
                (*path, "heuristics_params", "ping_maxfail"),
                f"{maxfail} lets the check pass with all {fewest} targets unreachable",
            )


def _whole(value: str, low: int) -> bool:
    return value.isdigit() and int(value) >= low


def read_quorum_device(
    r: Reader, raw: object, connectivity: Connectivity | None
) -> QuorumDevice | None:
    path: FieldPath = ("quorum_device",)
    keys = (
        "host",
        "algorithm",
        "port",
        "tie_breaker",
        "timeout",
        "sync_timeout",
        "heuristics",
        "heuristics_exec",
    )
    t = r.table(raw, path, keys, ("host",))
    if t is None:
        return None
    host = None
    if "host" in t:
        host = _target(r, t["host"], (*path, "host"))
    algorithm = r.string(t, "algorithm", path) or "ffsplit"
    if algorithm not in QDEVICE_ALGORITHMS:
        r.problem((*path, "algorithm"), f"{algorithm!r} is not one of: ffsplit, lms")
    port = r.integer(t, "port", path, 1, 65535)
    tie_breaker = None
    if "tie_breaker" in t:
        value = t["tie_breaker"]
        if value in ("lowest", "highest") or (
            isinstance(value, int) and not isinstance(value, bool) and value >= 1
        ):
            tie_breaker = str(value)
        else:
            r.problem((*path, "tie_breaker"), f"{value!r} is not lowest, highest or a node id")
    # corosync-qdevice refuses device timeouts under a second.
    timeout = r.integer(t, "timeout", path, 1000, 600000)
    sync_timeout = r.integer(t, "sync_timeout", path, 1000, 600000)
    site_targets = connectivity.targets if connectivity is not None else ()
    execs = _heuristics_execs(r, t, path)
    default = "sync" if site_targets or execs else "off"
    heuristics = r.string(t, "heuristics", path) or default
    if heuristics not in QDEVICE_HEURISTICS:
        r.problem((*path, "heuristics"), f"{heuristics!r} is not one of: off, on, sync")
    elif heuristics == "off" and execs:
        r.problem((*path, "heuristics_exec"), 'commands that never run with heuristics = "off"')
    elif heuristics != "off" and not site_targets and not execs:
        r.problem(
            (*path, "heuristics"),
            f"{heuristics!r} pings connectivity.targets, which the site does not set "
            '(add them, or heuristics_exec commands, or set heuristics = "off")',
        )
    elif heuristics != "off":
        # The heuristics must answer before corosync stops waiting for the device's vote.
        needed = QDEVICE_PING_MS * (len(site_targets) + 1)
        limit = sync_timeout or QDEVICE_DEFAULT_SYNC_TIMEOUT
        if needed >= limit:
            r.problem(
                (*path, "sync_timeout"),
                f"{limit} ms is too short for heuristics that ping {len(site_targets)} targets "
                f"one after the other ({needed} ms): raise it, or list fewer targets",
            )
    if host is None:
        return None
    return QuorumDevice(
        host, algorithm, port, tie_breaker, timeout, sync_timeout, heuristics, execs
    )


def _heuristics_execs(r: Reader, t: dict[str, Any], path: FieldPath) -> Pairs:
    """`heuristics_exec = { NAME = "/abs/command args" }`: corosync.conf's `exec_NAME` lines.

    corosync-qdevice splits a command like a shell (no expansion) and runs it as root; every
    exec must pass on a node for its heuristics to pass.
    """
    where = (*path, "heuristics_exec")
    if "heuristics_exec" not in t:
        return ()
    raw = t["heuristics_exec"]
    if not isinstance(raw, dict):
        r.problem(where, f"must be a table of name = command, not {kind_of(raw)}")
        return ()
    out: list[tuple[str, str]] = []
    for name, command in raw.items():
        if not EXEC_NAME_RE.match(name) or name == "ping":
            r.problem((*where, name), f"{name!r}: use letters, digits and _ (not ping)")
        elif not isinstance(command, str) or not command.startswith("/"):
            r.problem((*where, name), "must be a command with an absolute path")
        elif r.clean((*where, name), command):
            out.append((name, command))
    return tuple(out)
