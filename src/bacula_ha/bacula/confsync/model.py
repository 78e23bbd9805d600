"""The records of config sync: its configuration, peers, per-peer results, reports, errors."""

from __future__ import annotations

from ...ocf.errors import GenericError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from dataclasses import dataclass
    from dataclasses import replace as replace
    from typing import Any, TypeVar

    from ...ocf.log import Log as Log

    R = TypeVar("R")

else:
    from ...ocf.record import dataclass

    def replace(record, /, **changes):
        """`dataclasses.replace` for the agents' frozen records (see ocf/record.py)."""
        values = {name: getattr(record, name) for name in record.__match_args__}
        values.update(changes)
        return type(record)(**values)


DEFAULT_PATHS = ("/etc/bacula",)
# Editor droppings: never pushed, never counted as a change.
DEFAULT_EXCLUDES = (".*.swp", ".*.swx", "*~", ".#*", "#*#")
CHECK_MODES = ("full", "parse", "none")


class SyncError(GenericError):
    """A sync step failed for one peer (unreachable, refused, interrupted)."""


class ConfigCheckFailed(GenericError):
    """The source tree fails Bacula's own configuration test: it is not pushed."""


@dataclass(frozen=True)
class Peer:
    """A target node: its cluster name and what ssh connects to (a name, an address, an alias)."""

    name: str
    address: str


@dataclass(frozen=True)
class SyncConfig:
    """Everything a sync needs; built from the agent's parameters (settings.py)."""

    paths: tuple[str, ...]
    peers: tuple[Peer, ...]
    user: str = ""  # "" = ssh's choice (ssh_config, else the agent's user)
    identity: str = ""
    ssh_config: str = ""
    ssh_options: tuple[str, ...] = ()
    connect_timeout: int = 5
    io_timeout: int = 30
    peer_root: str = ""  # prefix of every path on a peer; "%n" is the peer's name (tests, lab)
    backups: int = 5
    excludes: tuple[str, ...] = DEFAULT_EXCLUDES
    check: str = "full"
    check_timeout: float = 15.0
    mux_dir: str = ""  # where ssh control sockets live; "" disables multiplexing
    mux_persist: int = 300
    local_node: str = ""  # set when in a cluster: node attributes are then written
    rsync_options: tuple[str, ...] = ()  # e.g. --bwlimit=...

    def remote_path(self, peer: Peer, path: str) -> str:
        root = self.peer_root.replace("%n", peer.name).rstrip("/")
        return root + path if root else path

    def items(self, peer: Peer | None = None) -> list[dict[str, Any]]:
        """The paths as the helper program takes them (`peer` None: this node's own paths)."""
        return [
            {
                "path": self.remote_path(peer, p) if peer else p,
                "excludes": list(self.excludes),
            }
            for p in self.paths
        ]


@dataclass(frozen=True)
class PeerResult:
    """What one sync did for one peer."""

    peer: str
    ok: bool
    pushed: bool = False
    error: str = ""
    drift: tuple[str, ...] = ()
    drift_count: int = 0
    first: bool = False  # the peer had never been synced: no baseline for drift
    backups: tuple[str, ...] = ()
    seconds: float = 0.0


@dataclass(frozen=True)
class SyncReport:
    """The outcome of one sync over every peer."""

    results: tuple[PeerResult, ...] = ()
    check_failed: str = ""  # why the source was not pushed, when its test failed
    notes: tuple[str, ...] = ()

    @property
    def degraded(self) -> bool:
        return bool(self.check_failed) or any(not r.ok for r in self.results)

    def reason(self) -> str:
        """A short exit reason naming what is wrong (empty when nothing is)."""
        if self.check_failed:
            return f"not pushed: {self.check_failed}"
        failed = [r for r in self.results if not r.ok]
        if not failed:
            return ""
        first = failed[0]
        more = f" (+{len(failed) - 1} more)" if len(failed) > 1 else ""
        return f"peer {first.peer}: {first.error}{more}"


@dataclass(frozen=True)
class Changes:
    """What changed in one source tree since the tree recorded at the last push."""

    base: str  # digest of the recorded tree
    changed: tuple[str, ...]  # names added, changed or removed
    gone: tuple[str, ...]  # names removed


@dataclass(frozen=True)
class Backups:
    """The backups each peer (and this node) holds, by path; a string says why a peer did not
    answer."""

    local: Mapping[str, list[str]]
    peers: Mapping[str, Mapping[str, list[str]] | str]


def config_to_json(cfg: SyncConfig) -> dict[str, Any]:
    """The configuration as plain data, for the state file (what admin commands and the
    director's reload sync with)."""
    data: dict[str, Any] = {k: getattr(cfg, k) for k in cfg.__match_args__}
    data["peers"] = [[p.name, p.address] for p in cfg.peers]
    return data


def config_from_json(data: Mapping[str, Any]) -> SyncConfig:
    fields = SyncConfig.__match_args__
    values = {k: v for k, v in data.items() if k in fields}
    values["peers"] = tuple(Peer(n, a) for n, a in values["peers"])
    for key in ("paths", "ssh_options", "excludes", "rsync_options"):
        if key in values:
            values[key] = tuple(values[key])
    return SyncConfig(**values)
