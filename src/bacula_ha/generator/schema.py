"""The site description: TOML in, validated frozen dataclasses out, all problems collected first."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from ..ocf.redact import hide
from .agentinfo import bacula, third_party, value_problem
from .errors import Problem, SiteError, secret_values
from .locate import LineMap
from .locate import Path as FieldPath

# The agents' light frozen records at run time (importing dataclasses and decorating two dozen
# classes is a measurable part of a run); mypy checks them as real frozen dataclasses.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass, field
else:
    from bacula_ha.ocf.record import dataclass, field

Pairs = tuple[tuple[str, str], ...]
T = TypeVar("T")

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


def fmt_path(path: FieldPath) -> str:
    """`("director", 0, "vip", "ip")` -> `director[0].vip.ip`."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if ID_RE.match(part) else repr(part))
    return out


class _Reader:
    """Typed access to the raw TOML that records a problem instead of raising."""

    def __init__(self, text: str, raw: dict[str, Any] | None = None) -> None:
        self.text = text
        self._lines: LineMap | None = None
        self.problems: list[Problem] = []
        self.secrets = secret_values(raw)
        self._reported: list[FieldPath] = []

    @property
    def lines(self) -> LineMap:
        # Built on the first problem only: a valid site never needs line numbers.
        if self._lines is None:
            self._lines = LineMap(self.text)
        return self._lines

    def problem(self, path: FieldPath, message: str, covers: Iterable[FieldPath] = ()) -> None:
        # One fault, one report: a field already reported, itself or within it, is not
        # reported again by a later check (a node without a valid fence is not also told
        # that every node needs one).
        if path and any(seen[: len(path)] == path for seen in self._reported):
            return
        self._reported.extend((path, *covers))
        message = hide(message, self.secrets)
        self.problems.append(Problem(fmt_path(path), message, self.lines.line(path)))

    def table(
        self, value: object, path: FieldPath, known: Iterable[str], required: Iterable[str] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(path, f"must be a table, not {_kind(value)}")
            return None
        allowed = set(known)
        for key in value:
            if key not in allowed:
                self.problem((*path, key), f"unknown key (allowed: {', '.join(sorted(allowed))})")
        # Reported on the table, at its header: the user never wrote the missing key's line.
        missing = [key for key in required if key not in value]
        if missing:
            verb = "is" if len(missing) == 1 else "are"
            self.problem(path, f"{_join(missing)} {verb} required", [(*path, k) for k in missing])
        return value

    def string(
        self,
        tbl: dict[str, Any],
        key: str,
        path: FieldPath,
        *,
        pattern: re.Pattern[str] | None = None,
        what: str = "",
    ) -> str | None:
        if key not in tbl:
            return None
        value = tbl[key]
        where = (*path, key)
        if not isinstance(value, str):
            self.problem(where, f"must be a string, not {_kind(value)}")
            return None
        if not self.clean(where, value):
            return None
        if pattern is not None and not pattern.match(value):
            self.problem(where, f"{value!r} is not {what}")
            return None
        return value

    def clean(self, where: FieldPath, value: str) -> bool:
        if not value:
            self.problem(where, "must not be empty")
            return False
        if CONTROL_RE.search(value):
            self.problem(where, f"{value!r} contains a control character (newline, tab, ...)")
            return False
        if not value.isascii():
            # crmsh 4.4 stores non-ASCII text as the literal text of character references
            # ("&#252;" for "ü"), so the two output formats would disagree: refuse it.
            self.problem(
                where, f"{value!r} contains non-ASCII characters (crmsh would mangle them)"
            )
            return False
        return True

    def ident(self, tbl: dict[str, Any], key: str, path: FieldPath) -> str | None:
        value = self.string(tbl, key, path, pattern=ID_RE, what=_ID_WHAT)
        if value is not None and len(value) > MAX_ID:
            self.problem((*path, key), f"is longer than {MAX_ID} characters")
            return None
        return value

    def integer(
        self, tbl: dict[str, Any], key: str, path: FieldPath, low: int, high: int
    ) -> int | None:
        if key not in tbl:
            return None
        value = tbl[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.problem((*path, key), f"must be an integer from {low} to {high}, not {value!r}")
            return None
        return value

    def boolean(self, tbl: dict[str, Any], key: str, path: FieldPath, default: bool) -> bool:
        value = tbl.get(key, default)
        if not isinstance(value, bool):
            self.problem((*path, key), f"must be true or false, not {value!r}")
            return default
        return value

    def duration(self, tbl: dict[str, Any], key: str, path: FieldPath) -> int | None:
        """Seconds, from an integer or a string like "90s", "2min", "1h"."""
        if key not in tbl:
            return None
        value = tbl[key]
        seconds: int | None = None
        if isinstance(value, int) and not isinstance(value, bool):
            seconds = value
        elif isinstance(value, str) and (m := DURATION_RE.match(value.strip())):
            unit = {"m": 60, "min": 60, "h": 3600, "hr": 3600}.get(m.group(2) or "s", 1)
            seconds = int(m.group(1)) * unit
        if seconds is None or not 0 < seconds <= 86400:
            self.problem((*path, key), f"{value!r} is not a duration (seconds, or e.g. '90s')")
            return None
        return seconds

    def params(self, tbl: dict[str, Any], key: str, path: FieldPath) -> Pairs:
        if key not in tbl:
            return ()
        raw = tbl[key]
        where = (*path, key)
        if not isinstance(raw, dict):
            self.problem(where, f"must be a table of name = value, not {_kind(raw)}")
            return ()
        out: list[tuple[str, str]] = []
        for name, value in raw.items():
            if not PARAM_RE.match(name):
                self.problem((*where, name), f"{name!r} is not a parameter name")
                continue
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, int | float):
                text = str(value)
            elif isinstance(value, str):
                if not self.clean((*where, name), value):
                    continue
                text = value
            else:
                self.problem(
                    (*where, name), f"must be a string, number or boolean, not {_kind(value)}"
                )
                continue
            out.append((name, text))
        return tuple(out)

    def array(self, tbl: dict[str, Any], key: str, path: FieldPath) -> list[Any]:
        if key not in tbl:
            return []
        value = tbl[key]
        if not isinstance(value, list):
            self.problem((*path, key), f"must be an array, not {_kind(value)}")
            return []
        return value


def _join(words: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


_ID_WHAT = "a valid name (a letter or _, then letters, digits, _ . -)"


def _kind(value: object) -> str:
    return {dict: "a table", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def load_site(path: str | Path) -> Site:
    """Read and validate a site file; raises SiteError (naming file, line and field) if invalid."""
    from bacula_ha.cliout import InputError, read_text

    source = str(path)
    try:
        text = read_text(path)
    except InputError as exc:
        raise SiteError(source, [Problem("", exc.fault.message, exc.fault.line)]) from None
    return parse_site(text, source)


def parse_site(text: str, source: str = "<site>") -> Site:
    """Validate a site description given as TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise SiteError(
            source, [Problem("", f"not valid TOML: {exc}", int(line.group(1)) if line else None)]
        ) from None
    reader = _Reader(text, raw)
    site = _parse(reader, raw, source)
    if reader.problems or site is None:
        raise SiteError(source, reader.problems)
    return site


def _parse(r: _Reader, raw: dict[str, Any], source: str) -> Site | None:
    r.table(
        raw,
        (),
        (
            "site",
            "node",
            "remote",
            "failure",
            "director",
            "storage",
            "filedaemon",
            "confsync",
            "ops",
            "alerts",
            "connectivity",
            "quorum_device",
            "bacula",
        ),
        ("site", "node"),
    )
    head = (
        r.table(
            raw.get("site", {}),
            ("site",),
            ("name", "stickiness", "fence_delay", "probe_all_nodes", "properties"),
            ("name",),
        )
        or {}
    )
    name = r.ident(head, "name", ("site",))
    stickiness = r.integer(head, "stickiness", ("site",), 0, 1000000)
    fence_delay = r.duration(head, "fence_delay", ("site",))
    properties = r.params(head, "properties", ("site",))
    probe_all_nodes = r.boolean(head, "probe_all_nodes", ("site",), False)
    for prop, _ in properties:
        if prop in ("stonith-enabled",):
            r.problem(("site", "properties", prop), "is set by the generator (always true)")

    nodes = _list(r, raw, "node", _node)
    remotes = _list(r, raw, "remote", _remote)
    site_failure = _failure(r, raw, ())
    site_ops = _ops(r, raw, (), SITE_OP_KINDS) if "ops" in raw else ()
    alerts = _alerts(r, raw["alerts"]) if "alerts" in raw else None
    connectivity = None
    if "connectivity" in raw:
        connectivity = _connectivity(r, raw["connectivity"], [*nodes, *remotes])
    quorum_device = None
    if "quorum_device" in raw:
        quorum_device = _quorum_device(r, raw["quorum_device"], connectivity)
    bacula_prefix = _bacula(r, raw["bacula"]) if "bacula" in raw else None
    confsync_default = r.table(raw.get("confsync", {}), ("confsync",), ("enabled", "params")) or {}
    directors = _list(r, raw, "director", lambda r, t, p: _director(r, t, p, confsync_default))
    storages = _list(r, raw, "storage", lambda r, t, p: _daemon(r, t, p, "storage"))
    filedaemons = _list(r, raw, "filedaemon", lambda r, t, p: _daemon(r, t, p, "filedaemon"))
    if isinstance(raw.get("node"), list) and not raw["node"]:
        r.problem(("node",), "at least one node is required")
    if name is None:
        return None
    site = Site(
        name=name,
        stickiness=200 if stickiness is None else stickiness,
        fence_delay=5 if fence_delay is None else fence_delay,
        probe_all_nodes=probe_all_nodes,
        properties=properties,
        nodes=tuple(nodes),
        directors=tuple(directors),
        storages=tuple(storages),
        filedaemons=tuple(filedaemons),
        ops=site_ops,
        source=source,
        text=r.text,
        secrets=r.secrets,
        remotes=tuple(remotes),
        failure=Failure(
            DEFAULT_MIGRATION_THRESHOLD
            if site_failure.migration_threshold is None
            else site_failure.migration_threshold,
            DEFAULT_FAILURE_TIMEOUT
            if site_failure.failure_timeout is None
            else site_failure.failure_timeout,
        ),
        alerts=alerts,
        connectivity=connectivity,
        quorum_device=quorum_device,
        bacula_prefix=bacula_prefix,
    )
    _cross_check(r, site)
    return site


def prefix_problem(value: str) -> str | None:
    """Why `value` cannot be a Bacula install prefix (bacula.org's /opt/bacula), or None."""
    if not value.startswith("/"):
        return f"{value!r} is not an absolute path"
    if value.strip("/") == "":
        return f"{value!r} cannot be a prefix: bacula-confsync would keep all of /etc in sync"
    if not PREFIX_RE.match(value):
        return f"{value!r} holds a character other than letters, digits and _ . / + -"
    normal = "/" + os.path.normpath(value).lstrip("/")
    if normal != value:
        return f"{value!r} is not normalised (write {normal!r})"
    return None


def _bacula(r: _Reader, raw: object) -> str | None:
    """`[bacula] prefix = "/opt/bacula"`: where bacula.org's packages put everything."""
    path: FieldPath = ("bacula",)
    t = r.table(raw, path, ("prefix",))
    if t is None:
        return None
    prefix = r.string(t, "prefix", path)
    if prefix is None:
        return None
    problem = prefix_problem(prefix)
    if problem is not None:
        r.problem((*path, "prefix"), problem)
        return None
    return prefix


def _list(
    r: _Reader,
    raw: dict[str, Any],
    key: str,
    parse: Callable[[_Reader, dict[str, Any], FieldPath], T | None],
) -> list[T]:
    items = raw.get(key, [])
    if not isinstance(items, list):
        r.problem((key,), f"must be an array of tables ([[{key}]]), not {_kind(items)}")
        return []
    out: list[T] = []
    for index, item in enumerate(items):
        path = (key, index)
        if isinstance(item, dict):
            parsed = parse(r, item, path)
            if parsed is not None:
                out.append(parsed)
        else:
            r.problem(path, f"must be a table, not {_kind(item)}")
    return out


def _node(r: _Reader, t: dict[str, Any], path: FieldPath, strict: bool = True) -> Node | None:
    if strict:
        r.table(t, path, ("name", "dc", "address", "fence"), ("name", "fence"))
    name = r.ident(t, "name", path)
    dc = r.ident(t, "dc", path)
    address = r.string(t, "address", path)
    if address is not None and not _is_ip(address):
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


def _remote(r: _Reader, t: dict[str, Any], path: FieldPath) -> Node | None:
    """A pacemaker_remote node: fenced like a full node, reached at address:port."""
    keys = ("name", "dc", "address", "port", "reconnect_interval", "fence")
    r.table(t, path, keys, ("name", "fence"))
    common = {k: v for k, v in t.items() if k in ("name", "dc", "address", "fence")}
    node = _node(r, common, path, strict=False)
    port = r.integer(t, "port", path, 1, 65535)
    reconnect = r.duration(t, "reconnect_interval", path)
    if node is None:
        return None
    return Node(node.name, node.dc, node.address, node.fence, True, port, reconnect)


def _failure(r: _Reader, t: dict[str, Any], path: FieldPath) -> Failure:
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


def _alerts(r: _Reader, raw: object) -> Alerts | None:
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


def _connectivity(r: _Reader, raw: object, nodes: list[Node]) -> Connectivity | None:
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
        r.problem(dpath, f"must be a table of data centre = [targets], not {_kind(raw_dc)}")
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
    known = third_party("connectivity").parameters or frozenset()
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
    ops = _ops(r, t, path, ("connectivity",))
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


def _targets(r: _Reader, t: dict[str, Any], key: str, path: FieldPath) -> tuple[str, ...]:
    """A non-empty list of ping targets: IP addresses (normalised) or host names."""
    where = (*path, key)
    if not isinstance(t[key], list):
        r.problem(where, f"must be an array of addresses or host names, not {_kind(t[key])}")
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
    versions = {ipaddress.ip_address(x).version for x in out if _is_ip(x)}
    if len(versions) > 1:
        # ocf:pacemaker:ping refuses such a list (OCF_ERR_CONFIGURED) when fping is installed.
        r.problem(where, "mixes IPv4 and IPv6 addresses (ocf:pacemaker:ping with fping refuses it)")
    return tuple(out)


def _target(r: _Reader, value: object, where: FieldPath) -> str | None:
    if not isinstance(value, str):
        r.problem(where, f"must be a string, not {_kind(value)}")
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
    r: _Reader,
    params: Pairs,
    path: FieldPath,
    enabled: bool,
    targets: tuple[str, ...],
    dc_targets: list[tuple[str, tuple[str, ...]]],
) -> None:
    """fence_heuristics_ping's extra parameters: known names, integers where the agent wants."""
    known = third_party("heuristics").parameters or frozenset()
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


def _quorum_device(
    r: _Reader, raw: object, connectivity: Connectivity | None
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


def _heuristics_execs(r: _Reader, t: dict[str, Any], path: FieldPath) -> Pairs:
    """`heuristics_exec = { NAME = "/abs/command args" }`: corosync.conf's `exec_NAME` lines.

    corosync-qdevice splits a command like a shell (no expansion) and runs it as root; every
    exec must pass on a node for its heuristics to pass.
    """
    where = (*path, "heuristics_exec")
    if "heuristics_exec" not in t:
        return ()
    raw = t["heuristics_exec"]
    if not isinstance(raw, dict):
        r.problem(where, f"must be a table of name = command, not {_kind(raw)}")
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


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _vip(r: _Reader, t: dict[str, Any], path: FieldPath, key: str = "vip") -> Vip | None:
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


def _disk(r: _Reader, t: dict[str, Any], path: FieldPath) -> Disk | None:
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


def _ops(r: _Reader, t: dict[str, Any], path: FieldPath, kinds: Iterable[str]) -> Ops:
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


def _extra(r: _Reader, t: dict[str, Any], path: FieldPath) -> tuple[Extra, ...]:
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


def _bacula_params(r: _Reader, t: dict[str, Any], path: FieldPath, agent: str) -> Pairs:
    params = r.params(t, "params", path)
    known = bacula(agent).parameters or frozenset()
    for key, value in params:
        if key not in known:
            r.problem(
                (*path, "params", key),
                f"{agent} has no parameter {key!r} (it has: {', '.join(sorted(known))})",
            )
        elif (problem := value_problem(agent, key, value)) is not None:
            # The agent's own rules, before the CIB: not its 6 on the cluster.
            r.problem((*path, "params", key), problem)
    return params


def _component_head(
    r: _Reader, t: dict[str, Any], path: FieldPath, kind: str, extra_keys: tuple[str, ...]
) -> tuple[str | None, str | None, str | None, Vip | None, Ops]:
    keys = ("name", "preferred", "standby", "vip", "params", "ops", "failure", *extra_keys)
    r.table(t, path, keys, ("name", "preferred", "standby", "vip"))
    name = r.ident(t, "name", path)
    preferred = r.ident(t, "preferred", path)
    standby = r.ident(t, "standby", path)
    vip = _vip(r, t, path)
    ops = _ops(r, t, path, OP_KINDS[kind])
    return name, preferred, standby, vip, ops


def _director(
    r: _Reader, t: dict[str, Any], path: FieldPath, confsync_default: dict[str, Any]
) -> Director | None:
    name, preferred, standby, vip, ops = _component_head(
        r, t, path, "director", ("with_catalog", "catalog", "confsync", "extra")
    )
    params = _bacula_params(r, t, path, "bacula-dir")
    with_catalog = r.boolean(t, "with_catalog", path, True)
    extra = _extra(r, t, path)
    failure = _failure(r, t, path)
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
        catalog = _catalog(r, t["catalog"], (*path, "catalog"), name, preferred, standby)
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


def _catalog(
    r: _Reader,
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
    vip = _vip(r, t, path)
    ops = _ops(r, t, path, OP_KINDS["catalog"])
    params = _bacula_params(r, t, path, "bacula-catalog")
    backend = r.string(t, "backend", path)
    if backend is not None and backend not in DATABASE_AGENTS:
        r.problem((*path, "backend"), f"{backend!r} is not one of: postgresql, mysql")
        backend = None
    if backend == "mysql" and "sync_standby_names" in dict(params):
        # The agent's own rule across two parameters (it says 6 on the cluster otherwise).
        r.problem((*path, "params", "sync_standby_names"), "is for the postgresql backend only")
    disk = _disk(r, t, path)
    failure = _failure(r, t, path)
    database = None
    dpath = (*path, "database")
    dt = r.table(t.get("database", {}), dpath, ("agent", "replicated", "params"), ("agent",))
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
        if agent is not None:
            database = Database(agent, replicated, db_params)
    replication_vip = None
    if "replication_vip" in t:
        if database is not None and not database.replicated:
            r.problem(
                (*path, "replication_vip"), "only a replicated database has a replication VIP"
            )
        replication_vip = _vip(r, t, path, "replication_vip")
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


def _daemon(r: _Reader, t: dict[str, Any], path: FieldPath, kind: str) -> Daemon | None:
    name, preferred, standby, vip, ops = _component_head(r, t, path, kind, ("disk", "extra"))
    params = _bacula_params(r, t, path, "bacula-sd" if kind == "storage" else "bacula-fd")
    disk = _disk(r, t, path)
    extra = _extra(r, t, path)
    failure = _failure(r, t, path)
    if None in (name, preferred, standby, vip):
        return None
    assert name and preferred and standby and vip
    return Daemon(kind, name, preferred, standby, vip, disk, params, ops, extra, failure)


def _cross_check(r: _Reader, site: Site) -> None:
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


def _check_targets(r: _Reader, site: Site, used: dict[str, str]) -> None:
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
