"""The bacula-confsync parameters: declared once (for the meta-data), parsed, checked here."""

from __future__ import annotations

import os

from ...ocf import params
from ...ocf.errors import ArgsError, NotConfiguredError, NotInstalledError
from ...ocf.metadata import Parameter
from . import cluster, remote
from .model import CHECK_MODES, DEFAULT_EXCLUDES, DEFAULT_PATHS, Peer, SyncConfig
from .transport import RSYNC, SSH

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ...ocf.deadline import Deadline


def parse_targets(value: str) -> list[Peer]:
    peers: list[Peer] = []
    for word in value.replace(",", " ").split():
        name, _, address = word.partition("=")
        if not name or (_ and not address) or name.startswith("-") or address.startswith("-"):
            raise NotConfiguredError(f"targets: {word!r} is not NAME or NAME=ADDRESS")
        peers.append(Peer(name, address or name))
    names = [p.name for p in peers]
    if len(set(names)) != len(names):
        raise NotConfiguredError("targets: a node is listed twice")
    return peers


def parse_paths(value: str) -> tuple[str, ...]:
    paths = [params.absolute_path("paths", p).rstrip("/") for p in value.split()]
    if not paths:
        raise NotConfiguredError("paths is empty")
    for p in paths:
        if p in ("", "/") or "/." in p or "//" in p:
            raise NotConfiguredError(f"paths: {p!r} cannot be synced")
        for q in paths:
            if p != q and (q + "/").startswith(p + "/"):
                raise NotConfiguredError(f"paths: {q} is inside {p}")
    if len(set(paths)) != len(paths):
        raise NotConfiguredError("paths: a path is listed twice")
    return tuple(paths)


def _ssh_options(value: str) -> tuple[str, ...]:
    options = tuple(value.split())
    for option in options:
        if "=" not in option or option.startswith("-"):
            raise NotConfiguredError(f"ssh_options: {option!r} is not Key=Value")
    return options


def _rsync_options(value: str) -> tuple[str, ...]:
    options = tuple(value.split())
    for option in options:
        if not option.startswith("--"):
            raise NotConfiguredError(f"rsync_options: {option!r} is not a --long option")
    return options


def _excludes(value: str) -> tuple[str, ...]:
    excludes = tuple(value.split())
    if any("/" in e for e in excludes):
        raise NotConfiguredError("exclude: patterns match base names and hold no '/'")
    return excludes


def _user(value: str) -> str:
    if value.startswith("-") or any(c.isspace() for c in value):
        raise NotConfiguredError(f"user={value!r} is not a user name")
    return value


# Each value rule is declared here once: the runner and `bacula-ha generate` check it
# (ocf.params.check), parse() then only reads.
PARAMETERS = (
    Parameter(
        "paths",
        "Paths to keep in sync",
        "Absolute paths (directories or files), separated by spaces.",
        default=" ".join(DEFAULT_PATHS),
        rule=parse_paths,
    ),
    Parameter(
        "targets",
        "Peers",
        "Nodes to push to, separated by spaces or commas, each NAME or NAME=ADDRESS (the "
        "address ssh connects to; default: the name). The local node is skipped, so every "
        "node can share one list. Empty: every cluster node but this one (crm_node -l).",
        default="",
        rule=parse_targets,
    ),
    Parameter(
        "user",
        "ssh user",
        "User to log in as on the peers (it must be able to write the paths and set "
        "their owners: root). Empty: ssh's own choice (ssh_config User, else root).",
        default="",
        rule=_user,
    ),
    Parameter(
        "identity",
        "ssh identity file",
        "Private key for ssh (-i); empty: ssh's defaults.",
        default="",
        absolute=True,
    ),
    Parameter(
        "ssh_config",
        "ssh client configuration",
        "An ssh_config file (-F) for host aliases, ports, known_hosts; empty: ssh's own.",
        default="",
        absolute=True,
    ),
    Parameter(
        "ssh_options",
        "Extra ssh options",
        "ssh -o options, separated by spaces, each Key=Value.",
        default="",
        rule=_ssh_options,
    ),
    Parameter(
        "connect_timeout",
        "ssh connect timeout",
        "Seconds ssh may take to connect and authenticate.",
        content_type="integer",
        default="5",
        low=1,
    ),
    Parameter(
        "io_timeout",
        "rsync I/O timeout",
        "rsync --timeout: seconds without data before a transfer is given up.",
        content_type="integer",
        default="30",
        low=1,
    ),
    Parameter(
        "backups",
        "Backups kept",
        "How many previous trees each node keeps.",
        content_type="integer",
        default="5",
        low=1,
    ),
    Parameter(
        "config_check",
        "Configuration test before a push",
        "full: the *json parsers and the daemons' own -t; parse: the parsers only (never "
        "opens the catalog); none: no test.",
        default="full",
        choices=CHECK_MODES,
    ),
    Parameter(
        "check_timeout",
        "Bound of each configuration test",
        "Seconds; bacula-dir -t retries an unreachable catalog for 30 s.",
        content_type="integer",
        default="15",
        low=1,
    ),
    Parameter(
        "exclude",
        "Names never pushed",
        "rsync-style patterns for base names, separated by spaces (editor files).",
        default=" ".join(DEFAULT_EXCLUDES),
        rule=_excludes,
    ),
    Parameter(
        "rsync_options",
        "Extra rsync options",
        "Long rsync options, separated by spaces (e.g. --bwlimit=2000).",
        default="",
        rule=_rsync_options,
    ),
    Parameter(
        "node_attribute",
        "Publish node attributes",
        f"In a cluster, set each peer's transient attribute {cluster.ATTRIBUTE}.",
        content_type="boolean",
        default="true",
    ),
    Parameter(
        "peer_root",
        "Prefix on the peers",
        "Prepended to every path on a peer; %n is the peer's name. For test set-ups "
        "where peers share one file system; leave empty on real nodes.",
        default="",
    ),
)
_DEFAULTS = {p.name: p.default or "" for p in PARAMETERS}
_BY_NAME = {p.name: p for p in PARAMETERS}


def parse(given: Mapping[str, str], rsctmp: str, instance: str, deadline: Deadline) -> SyncConfig:
    """The parameters as a SyncConfig; NotConfiguredError (6) for what can never work,
    ArgsError (2) when no target is known here. Asks Pacemaker for the nodes (crm_node)."""
    params.check_all(PARAMETERS, given)
    p = {**_DEFAULTS, **{k: v for k, v in given.items() if v}}
    paths = parse_paths(p["paths"])
    peers, local = resolve_targets(p["targets"], deadline)
    return SyncConfig(
        paths=paths,
        peers=tuple(peers),
        user=p["user"],
        identity=p["identity"],
        ssh_config=p["ssh_config"],
        ssh_options=_ssh_options(p["ssh_options"]),
        connect_timeout=_integer("connect_timeout", p),
        io_timeout=_integer("io_timeout", p),
        peer_root=p["peer_root"],
        backups=_integer("backups", p),
        excludes=_excludes(p["exclude"]),
        check=p["config_check"],
        check_timeout=float(_integer("check_timeout", p)),
        mux_dir=mux_dir(rsctmp, instance),
        local_node=local if params.boolean("node_attribute", p["node_attribute"]) else "",
        rsync_options=_rsync_options(p["rsync_options"]),
    )


def _integer(name: str, p: Mapping[str, str]) -> int:
    """An integer parameter by the one rule of its meta-data (its default is in `p`)."""
    return params.integer_of(_BY_NAME[name], p[name]) or 0


def resolve_targets(value: str, deadline: Deadline) -> tuple[list[Peer], str]:
    """The peers to push to, and the local node's name when in a cluster ("" otherwise)."""
    listed = parse_targets(value)
    nodes = cluster.cluster_nodes(deadline)
    if nodes is None:
        if not listed:
            raise ArgsError("targets is empty and no cluster answers crm_node -l here")
        me = os.uname().nodename
        return [p for p in listed if p.name != me], ""
    local, members = nodes
    if not listed:
        return [Peer(n, n) for n in members if n != local], local
    strangers = [p.name for p in listed if p.name not in members]
    if strangers:
        raise NotConfiguredError(f"targets: {', '.join(strangers)} not a cluster node")
    return [p for p in listed if p.name != local], local


def mux_dir(rsctmp: str, instance: str) -> str:
    """A private directory for this instance's ssh control sockets.

    A socket path must fit in 108 bytes, and ssh adds "/%C" (41) plus a temporary suffix
    (17) while it creates one: HA_RSCTMP paths are too long, so the directory is named by a
    hash of (HA_RSCTMP, instance) under /run (a tmpfs, like HA_RSCTMP), else /tmp.
    """
    import hashlib

    tag = hashlib.sha1(f"{rsctmp}\0{instance}".encode()).hexdigest()[:12]
    base = "/run" if os.access("/run", os.W_OK) else "/tmp"
    return f"{base}/bacula-confsync-{tag}"


def check_node(cfg: SyncConfig) -> None:
    """What this node must have: rsync and ssh (5), the paths, key and ssh_config (2)."""
    for binary in (RSYNC, SSH):
        if not os.access(binary, os.X_OK):
            raise NotInstalledError(f"{binary} is not installed")
    for path in cfg.paths:
        if not os.path.lexists(path):
            raise ArgsError(f"{path} does not exist on this node")
        try:
            remote.check_swappable(path)
        except ValueError as exc:
            raise ArgsError(str(exc)) from None
    for name, value in (("identity", cfg.identity), ("ssh_config", cfg.ssh_config)):
        if value and not os.access(value, os.R_OK):
            raise ArgsError(f"{name} {value} is missing or unreadable on this node")
