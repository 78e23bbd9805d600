"""The site model: its names' rules and defaults, and the frozen dataclasses of a valid site."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from .locate import LineMap

Pairs = tuple[tuple[str, str], ...]

# A CIB id is an XML NCName; we allow its ASCII subset. Node and data-centre names follow the
# same rule, which also keeps them safe inside comments and crm syntax, where ids cannot be quoted.
ID_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PARAM_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# Linux refuses "/", ":" and blanks in interface names; a leading "-" would read as an option.
NIC_RE = re.compile(r"^[A-Za-z0-9_.@][A-Za-z0-9_.@-]{0,14}$")
FENCE_AGENT_RE = re.compile(r"^fence_[A-Za-z0-9_]+$")
EXTRA_RE = re.compile(
    r"^(?:(?:lsb|systemd|service):[A-Za-z0-9_.@-]+|ocf:[A-Za-z0-9_-]+:[A-Za-z0-9_.-]+)$"
)
DURATION_RE = re.compile(r"^(\d+)\s*(s|sec|m|min|h|hr)?$")
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID = 64  # long ids are legal but unreadable in crm_mon; keep generated ones short
# Failure policy defaults (docs/site-schema.md says why): a first failure restarts in place, the
# third within the failure timeout moves the component to its standby; failures expire after
# 10 minutes, so a node that failed once is usable again and crm_mon forgets the failed action.
# The alert agent as `bacula-ha install` and the Debian package install it.
DEFAULT_ALERT_PATH = "/usr/lib/ocf/lib/bacula/bacula-ha-alert"
# The catalog's pg_ctl for ocf:heartbeat:pgsql whose start waits (bacula_ha.pgwait).
PG_CTL_WAIT_PATH = "/usr/lib/ocf/lib/bacula/pg_ctl-wait"
ALERT_SELECT = ("nodes", "fencing", "resources", "attributes")
# A recipient of the alert agent: a file (absolute path) or syslog, optionally with a facility.
RECIPIENT_RE = re.compile(r"^(/[A-Za-z0-9_./+-]+|syslog(:[a-z0-9]+)?)$")
DEFAULT_MIGRATION_THRESHOLD = 3
DEFAULT_FAILURE_TIMEOUT = 600
REMOTE_PORT = 3121  # pacemaker_remoted's default port

# Operation names the site may override; which ones a resource has depends on its agent.
OP_NAMES = frozenset(
    {
        "start",
        "stop",
        "monitor",
        "deep_monitor",
        "promote",
        "demote",
        "notify",
        "monitor_promoted",
        "monitor_unpromoted",
    }
)
# Which resource kinds each component may override operations for.
OP_KINDS = {
    "director": ("vip", "director", "confsync", "extra"),
    "catalog": ("vip", "filesystem", "drbd", "database", "catalog"),
    "storage": ("vip", "filesystem", "drbd", "storage", "extra"),
    "filedaemon": ("vip", "filesystem", "drbd", "filedaemon", "extra"),
}
SITE_OP_KINDS = frozenset(k for kinds in OP_KINDS.values() for k in kinds) | {
    "fence",
    "remote",
    "connectivity",
}
MONITOR_DEPTH_RE = re.compile(r"^monitor_[0-9]{1,3}$")
DATABASE_AGENTS = {"postgresql": ("pgsql", "pgsqlms"), "mysql": ("mysql",)}
# A ping target given by name: RFC 1123 labels (no "-" first, so never an option of ping).
HOST_RE = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
DEFAULT_MULTIPLIER = 1000
DEFAULT_DAMPEN = 5  # seconds: ocf:pacemaker:ping's own default
# ocf:pacemaker:ping parameters the generator sets itself (the rules test the attribute `pingd`).
PING_OWN = {
    "host_list": "set connectivity.targets (or dc_targets) instead",
    "multiplier": "set connectivity.multiplier instead",
    "dampen": "set connectivity.dampen instead",
    "name": "the attribute is always pingd: the generated location rules test it",
    # Pacemaker Explained's pattern leaves the monitor succeeding when targets are lost: a
    # failing instance is restarted, then banned after migration-threshold, and its stop
    # deletes the attribute, so the node would look unconnected long after the network is back.
    "failure_score": "a lost target must lower pingd, not fail the resource "
    "(a failed ping instance is banned and its stop deletes pingd)",
}
# fence_heuristics_ping parameters that must be integers (the agent int()s them; anything else
# makes every fencing attempt fail).
HEURISTICS_INTEGERS = ("ping_count", "ping_good_count", "ping_interval", "ping_timeout")
# The generator's fence_heuristics_ping timing: two probes a second apart, one answer is enough,
# one second to wait for it: the check takes at most (2 - 1) * 1 + 1 = 2 s (the agent's defaults,
# 10 probes of which 8 must answer, take 11 s before every fencing).
HEURISTICS_DEFAULTS = {"ping_count": 2, "ping_good_count": 1, "ping_interval": 1, "ping_timeout": 1}
# The quorum device's heuristics ping the site's targets one after the other, each waiting up to
# this long for its answer (ms); corosync-qdevice's own default would be half the device timeout.
QDEVICE_PING_MS = 1000
QDEVICE_DEFAULT_SYNC_TIMEOUT = 30000  # ms, corosync-qdevice(8)
QDEVICE_ALGORITHMS = ("ffsplit", "lms")
QDEVICE_HEURISTICS = ("off", "on", "sync")
EXEC_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,32}$")
# `[bacula] prefix`: the characters a path may hold in every place the generator writes it
# (bacula-confsync's `paths` is a space-separated list, so no blanks).
PREFIX_RE = re.compile(r"^/[A-Za-z0-9_./+-]+$")


@dataclass(frozen=True)
class OpOverride:
    """Site-chosen interval / timeout (seconds) / depth of one operation."""

    interval: int | None = None
    timeout: int | None = None
    depth: int | None = None


Ops = tuple[tuple[str, str, OpOverride], ...]  # (resource kind, operation name, override)


@dataclass(frozen=True)
class Fence:
    """A fence device that can power off one node."""

    agent: str
    params: Pairs


@dataclass(frozen=True)
class Node:
    """A cluster node: a full member, or a pacemaker_remote node (`remote`)."""

    name: str
    dc: str | None
    address: str | None
    fence: Fence | None
    remote: bool = False
    port: int | None = None  # pacemaker_remote's port (remote nodes only)
    reconnect_interval: int | None = None  # seconds (remote nodes only)


@dataclass(frozen=True)
class Failure:
    """How a component reacts to repeated failures; None: not set here (inherit)."""

    migration_threshold: int | None = None  # 0: never move because of failures
    failure_timeout: int | None = None  # seconds; 0: failures never expire


@dataclass(frozen=True)
class Alerts:
    """The `[alerts]` section: the Bacula-aware alert agent and who hears from it."""

    path: str
    recipients: tuple[str, ...]
    select: tuple[str, ...]
    command: str | None = None
    command_timeout: int | None = None  # seconds
    timeout: int | None = None  # seconds: Pacemaker's own limit on one run of the agent


@dataclass(frozen=True)
class Connectivity:
    """The `[connectivity]` section: ping targets on the clients' network, per site or per DC."""

    targets: tuple[str, ...]  # site-wide; empty when every data centre has its own
    dc_targets: tuple[tuple[str, tuple[str, ...]], ...]  # (data centre, its targets)
    multiplier: int = DEFAULT_MULTIPLIER
    dampen: int = DEFAULT_DAMPEN  # seconds
    fence_heuristics: bool = True
    params: Pairs = ()  # extra ocf:pacemaker:ping parameters
    heuristics_params: Pairs = ()  # extra fence_heuristics_ping parameters
    ops: Ops = ()

    def targets_of(self, dc: str | None) -> tuple[str, ...]:
        """The targets a node of this data centre pings (its DC's own, else the site's)."""
        return dict(self.dc_targets).get(dc or "", self.targets)


@dataclass(frozen=True)
class QuorumDevice:
    """The `[quorum_device]` section: corosync-qdevice's arbiter (corosync.conf, not the CIB)."""

    host: str
    algorithm: str = "ffsplit"
    port: int | None = None
    tie_breaker: str | None = None  # lowest | highest | a node id
    timeout: int | None = None  # ms
    sync_timeout: int | None = None  # ms
    heuristics: str = "off"  # off | on | sync
    # More heuristics besides the ping of connectivity.targets: (name, absolute command).
    execs: Pairs = ()


@dataclass(frozen=True)
class Vip:
    """A virtual IP (ocf:heartbeat:IPaddr2)."""

    ip: str
    cidr_netmask: int | None
    nic: str | None
    params: Pairs


@dataclass(frozen=True)
class Disk:
    """The filesystem a component keeps its data on: DRBD-replicated or a shared disk."""

    kind: str  # "drbd" | "shared"
    device: str
    fstype: str
    directory: str
    options: str | None
    drbd_resource: str | None
    params: Pairs


@dataclass(frozen=True)
class Extra:
    """A further resource appended to a component's group (e.g. `lsb:httpd`)."""

    spec: str
    params: Pairs


@dataclass(frozen=True)
class Database:
    """The catalog's database server."""

    agent: str  # pgsql | pgsqlms | mysql
    replicated: bool
    params: Pairs
    # pgsql on a disk: its start waits for PostgreSQL through bacula-ha's pg_ctl-wait.
    wait_start: bool = True


@dataclass(frozen=True)
class Catalog:
    """The catalog of one director: database, its storage or replication, VIP, bacula-catalog."""

    name: str
    backend: str
    preferred: str
    standby: str
    vip: Vip
    disk: Disk | None
    database: Database
    params: Pairs
    ops: Ops
    failure: Failure = Failure()
    # A replicated database's second VIP, on the network the standby replicates over.
    replication_vip: Vip | None = None


@dataclass(frozen=True)
class Confsync:
    """bacula-confsync next to a director."""

    enabled: bool
    params: Pairs


@dataclass(frozen=True)
class Director:
    """A director with its VIP, configuration sync and optional catalog."""

    name: str
    preferred: str
    standby: str
    vip: Vip
    params: Pairs
    with_catalog: bool
    catalog: Catalog | None
    confsync: Confsync
    ops: Ops
    extra: tuple[Extra, ...]
    failure: Failure = Failure()


@dataclass(frozen=True)
class Daemon:
    """A storage daemon or a floating file daemon."""

    kind: str  # "storage" | "filedaemon"
    name: str
    preferred: str
    standby: str
    vip: Vip
    disk: Disk | None
    params: Pairs
    ops: Ops
    extra: tuple[Extra, ...]
    failure: Failure = Failure()


@dataclass(frozen=True)
class Site:
    """A whole validated site."""

    name: str
    stickiness: int
    fence_delay: int
    probe_all_nodes: bool
    properties: Pairs
    nodes: tuple[Node, ...]
    directors: tuple[Director, ...]
    storages: tuple[Daemon, ...]
    filedaemons: tuple[Daemon, ...]
    ops: Ops
    source: str
    text: str = field(default="", repr=False)  # the TOML, to find lines of later problems
    # The values of its secret fields (errors.secret_values): kept out of later problems.
    secrets: tuple[str, ...] = field(default=(), repr=False)
    remotes: tuple[Node, ...] = ()  # pacemaker_remote nodes
    failure: Failure = Failure()  # the site-wide failure policy, defaults applied
    alerts: Alerts | None = None
    connectivity: Connectivity | None = None
    quorum_device: QuorumDevice | None = None
    # `[bacula] prefix`: bacula.org's install under one directory; None: Debian's layout.
    bacula_prefix: str | None = None

    def node(self, name: str) -> Node:
        """A full or remote node by name."""
        return next(n for n in (*self.nodes, *self.remotes) if n.name == name)

    def failure_policy(self, own: Failure) -> Failure:
        """A component's failure policy: its own values over the site's."""
        return Failure(
            self.failure.migration_threshold
            if own.migration_threshold is None
            else own.migration_threshold,
            self.failure.failure_timeout if own.failure_timeout is None else own.failure_timeout,
        )

    def line(self, field_name: str) -> int | None:
        """The line of a field named like `storage[0].ops.storage.monitor`, if known."""
        path: list[str | int] = []
        for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", field_name):
            path.append(int(index) if index else name)
        return LineMap(self.text).line(tuple(path)) if path and self.text else None


def is_ip(text: str) -> bool:
    """Whether `text` is an IPv4 or IPv6 address: the one test the reader and `check` share."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
