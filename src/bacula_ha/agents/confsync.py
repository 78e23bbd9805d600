"""bacula-confsync: keep the Bacula configuration of every node equal to the active node's."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..bacula import confsync as cs
from ..bacula import confsync_remote as remote
from ..ocf import params
from ..ocf.agent import Agent, Handler
from ..ocf.deadline import Deadline
from ..ocf.env import Environment
from ..ocf.errors import (
    ArgsError,
    Degraded,
    GenericError,
    NotConfiguredError,
    NotInstalledError,
    NotRunningError,
)
from ..ocf.log import Logger
from ..ocf.metadata import Action, MetaData, Parameter
from ..ocf.status import OCFStatus

AGENT_NAME = "bacula-confsync"
# Admin actions (not called by Pacemaker): with no OCF_RESKEY_* they use the parameters
# saved by the instance active on this node.
ADMIN_ACTIONS = ("sync", "status", "backups", "rollback")
# An admin's command has no Pacemaker timeout: the runner's 20 s default is too short for a
# rollback of a large tree, so without an explicit CRM_meta_timeout these get this bound.
ADMIN_TIMEOUT = 600.0
# A sync never takes the stop's last seconds: the state file must still be removed.
STOP_RESERVE = 3.0
STOP_PUSH_BOUND = 45.0

_METADATA = MetaData(
    name=AGENT_NAME,
    version="0.1.0",
    shortdesc="Pushes the Bacula configuration from the active node to the other nodes",
    longdesc=(
        "Colocate with bacula-dir (it runs only where the director runs). At start, at every "
        "monitor (the monitor interval is the sync period) and right after a reload of the "
        "director, it pushes `paths` to every other node with rsync over ssh (BatchMode, a "
        "connect timeout, one multiplexed connection per peer). Only changed files travel; "
        "owners, modes, ACLs and xattrs are kept. Before a push the tree must pass Bacula's "
        "own test (bdirjson/bsdjson/bfdjson and bacula-dir/sd/fd -t for the daemons whose "
        "configuration is in the tree; a catalog that cannot be opened is not a configuration "
        "error). A peer receives into a stage and swaps it in with one rename: it never holds "
        "a half-copied tree; the previous tree becomes a timestamped backup (at most `backups` "
        "of them) in .bacula-ha-confsync beside the path. A peer edited since the last sync "
        "(drift) is logged with the changed names; its version is kept as a backup. An "
        "unreachable peer makes the monitor return degraded (190) naming it, never a failure; "
        "the time of each peer's last good sync is in the status file (`bacula-confsync "
        "status`) and, in a cluster, the peer's transient node attribute "
        f"{cs.ATTRIBUTE} (crm_mon -A). A probe never touches the network. Admin actions, run "
        "by hand on the active node: sync, status, backups, rollback [STAMP] [--local] "
        "(documented in docs/confsync.md)."
    ),
    parameters=(
        Parameter(
            "paths",
            "Paths to keep in sync",
            "Absolute paths (directories or files), separated by spaces.",
            default=" ".join(cs.DEFAULT_PATHS),
        ),
        Parameter(
            "targets",
            "Peers",
            "Nodes to push to, separated by spaces or commas, each NAME or NAME=ADDRESS (the "
            "address ssh connects to; default: the name). The local node is skipped, so every "
            "node can share one list. Empty: every cluster node but this one (crm_node -l).",
            default="",
        ),
        Parameter(
            "user",
            "ssh user",
            "User to log in as on the peers (it must be able to write the paths and set "
            "their owners: root). Empty: ssh's own choice (ssh_config User, else root).",
            default="",
        ),
        Parameter(
            "identity",
            "ssh identity file",
            "Private key for ssh (-i); empty: ssh's defaults.",
            default="",
        ),
        Parameter(
            "ssh_config",
            "ssh client configuration",
            "An ssh_config file (-F) for host aliases, ports, known_hosts; empty: ssh's own.",
            default="",
        ),
        Parameter(
            "ssh_options",
            "Extra ssh options",
            "ssh -o options, separated by spaces, each Key=Value.",
            default="",
        ),
        Parameter(
            "connect_timeout",
            "ssh connect timeout",
            "Seconds ssh may take to connect and authenticate.",
            content_type="integer",
            default="5",
        ),
        Parameter(
            "io_timeout",
            "rsync I/O timeout",
            "rsync --timeout: seconds without data before a transfer is given up.",
            content_type="integer",
            default="30",
        ),
        Parameter(
            "backups",
            "Backups kept",
            "How many previous trees each node keeps.",
            content_type="integer",
            default="5",
        ),
        Parameter(
            "config_check",
            "Configuration test before a push",
            "full: the *json parsers and the daemons' own -t; parse: the parsers only (never "
            "opens the catalog); none: no test.",
            default="full",
            choices=cs.CHECK_MODES,
        ),
        Parameter(
            "check_timeout",
            "Bound of each configuration test",
            "Seconds; bacula-dir -t retries an unreachable catalog for 30 s.",
            content_type="integer",
            default="15",
        ),
        Parameter(
            "exclude",
            "Names never pushed",
            "rsync-style patterns for base names, separated by spaces (editor files).",
            default=" ".join(cs.DEFAULT_EXCLUDES),
        ),
        Parameter(
            "rsync_options",
            "Extra rsync options",
            "Long rsync options, separated by spaces (e.g. --bwlimit=2000).",
            default="",
        ),
        Parameter(
            "node_attribute",
            "Publish node attributes",
            f"In a cluster, set each peer's transient attribute {cs.ATTRIBUTE}.",
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
    ),
    actions=(
        Action("start", timeout=120),
        Action("stop", timeout=120),
        Action("monitor", timeout=120, interval=60, depth=0),
        Action("validate-all", timeout=30),
        Action("meta-data", timeout=5),
    ),
)


@dataclass(frozen=True)
class Config:
    """The parsed parameters: the engine's configuration and where this instance keeps state."""

    sync: cs.SyncConfig
    state: str  # the state file: present while the resource runs on this node
    params: Mapping[str, str]


def _words(value: str) -> list[str]:
    return value.replace(",", " ").split()


def _integer(name: str, value: str, minimum: int) -> int:
    return params.integer(name, value, low=minimum)


def parse_targets(value: str) -> list[cs.Peer]:
    peers: list[cs.Peer] = []
    for word in _words(value):
        name, _, address = word.partition("=")
        if not name or (_ and not address) or name.startswith("-") or address.startswith("-"):
            raise NotConfiguredError(f"targets: {word!r} is not NAME or NAME=ADDRESS")
        peers.append(cs.Peer(name, address or name))
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


def _mux_dir(rsctmp: str, instance: str) -> str:
    """A private directory for this instance's ssh control sockets.

    A socket path must fit in 108 bytes, and ssh adds "/%C" (41) plus a temporary suffix
    (17) while it creates one: HA_RSCTMP paths are too long, so the directory is named by a
    hash of (HA_RSCTMP, instance) under /run (a tmpfs, like HA_RSCTMP), else /tmp.
    """
    import hashlib

    tag = hashlib.sha1(f"{rsctmp}\0{instance}".encode()).hexdigest()[:12]
    base = "/run" if os.access("/run", os.W_OK) else "/tmp"
    return f"{base}/bacula-confsync-{tag}"


class ConfsyncAgent(Agent[Config]):
    """The bacula-confsync agent."""

    metadata = _METADATA

    def configure(self, env: Environment, log: Logger) -> Config:
        given = dict(env.params)
        state = cs.state_path(env.rsctmp, env.instance)
        if env.action in ADMIN_ACTIONS and not given:
            return self._saved(env)
        defaults = self.metadata.defaults()
        p = {k: given.get(k, "") or defaults.get(k, "") for k in {*defaults, *given}}
        paths = parse_paths(p["paths"])
        check = p["config_check"]
        if check not in cs.CHECK_MODES:
            raise NotConfiguredError(f"config_check={check!r}: use full, parse or none")
        for name in ("identity", "ssh_config"):
            if p[name]:
                params.absolute_path(name, p[name])
        ssh_options = tuple(p["ssh_options"].split())
        for option in ssh_options:
            if "=" not in option or option.startswith("-"):
                raise NotConfiguredError(f"ssh_options: {option!r} is not Key=Value")
        rsync_options = tuple(p["rsync_options"].split())
        for option in rsync_options:
            if not option.startswith("--"):
                raise NotConfiguredError(f"rsync_options: {option!r} is not a --long option")
        excludes = tuple(p["exclude"].split())
        if any("/" in e for e in excludes):
            raise NotConfiguredError("exclude: patterns match base names and hold no '/'")
        user = p["user"]
        if user.startswith("-") or any(c.isspace() for c in user):
            raise NotConfiguredError(f"user={user!r} is not a user name")
        peers, local = _resolve_targets(p["targets"], env.deadline)
        cfg = cs.SyncConfig(
            paths=paths,
            peers=tuple(peers),
            user=user,
            identity=p["identity"],
            ssh_config=p["ssh_config"],
            ssh_options=ssh_options,
            connect_timeout=_integer("connect_timeout", p["connect_timeout"], 1),
            io_timeout=_integer("io_timeout", p["io_timeout"], 1),
            peer_root=p["peer_root"],
            backups=_integer("backups", p["backups"], 1),
            excludes=excludes,
            check=check,
            check_timeout=float(_integer("check_timeout", p["check_timeout"], 1)),
            mux_dir=_mux_dir(env.rsctmp, env.instance),
            local_node=local if params.boolean("node_attribute", p["node_attribute"]) else "",
            rsync_options=rsync_options,
        )
        return Config(cfg, state, given)

    def _saved(self, env: Environment) -> Config:
        return saved_config(env.rsctmp, "" if env.instance == "default" else env.instance)

    def validate(self, config: Config, env: Environment, log: Logger) -> None:
        for binary in (cs.RSYNC, cs.SSH):
            if not os.access(binary, os.X_OK):
                raise NotInstalledError(f"{binary} is not installed")
        cfg = config.sync
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

    def validate_all(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        return None

    # --- the OCF actions --------------------------------------------------------------------

    def start(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        os.makedirs(os.path.dirname(config.state), mode=0o700, exist_ok=True)
        os.makedirs(config.sync.mux_dir, mode=0o700, exist_ok=True)
        existing = cs.load_state(config.state) or {}
        existing["config"] = cs.config_to_json(config.sync)
        existing.setdefault("started", _now())
        cs.save_state(config.state, existing)
        # This node is the source from now on: its live files must not share inodes with
        # the backups it kept as a peer, or the admins' in-place edits would change those.
        for path in config.sync.paths:
            try:
                copied = remote.unshare(path)
            except OSError as exc:
                log.warning(f"{path}: could not separate the live files from the backups: {exc}")
                continue
            if copied:
                log.info(f"{path}: {copied} file(s) no longer share their inode with a backup")
        # Running from here on: a failed first push is the monitor's business, never a
        # failed start (the resource is colocated with the director).
        report = self.locked_sync(config, env.deadline, log)
        if report is not None and report.degraded:
            log.warning(f"started, but: {report.reason()}")
        return None

    def stop(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        if os.path.exists(config.state):
            # Best effort: a frozen peer must not hold the stop for its whole timeout.
            last = Deadline(min(env.deadline.at - STOP_RESERVE, _monotonic() + STOP_PUSH_BOUND))
            if not last.expired():
                try:
                    report = self.locked_sync(config, last, log)
                    if report is not None and report.degraded:
                        log.warning(f"last push before stop incomplete: {report.reason()}")
                except GenericError as exc:
                    log.warning(f"last push before stop failed: {exc.reason}")
        closing = env.deadline.sooner(2.0)
        for peer in config.sync.peers:
            cs.close_connection(config.sync, peer, closing)
        _remove_state(config.state, config.sync.mux_dir)
        return None

    def stop_unconfigured(self, env: Environment, log: Logger, reason: str) -> OCFStatus | None:
        # Nothing runs between syncs: forgetting the instance is all a stop must do.
        _remove_state(cs.state_path(env.rsctmp, env.instance), _mux_dir(env.rsctmp, env.instance))
        return None

    def monitor(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        if not os.path.exists(config.state):
            return OCFStatus.NOT_RUNNING
        if env.is_probe:
            return OCFStatus.SUCCESS  # a probe never touches the network
        report = self.locked_sync(config, env.deadline, log)
        if report is not None and report.degraded:
            raise Degraded(report.reason())
        return None

    # --- admin actions ----------------------------------------------------------------------

    def extra_actions(self) -> dict[str, Handler[Config]]:
        return {
            "sync": self.sync_now,
            "status": self.status,
            "backups": self.list_backups,
            "rollback": self.rollback,
        }

    def sync_now(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        """Push now (like a monitor), even when the resource is not running here."""
        report = self.locked_sync(config, _admin_deadline(env), log, require_running=False)
        if report is not None:
            sys.stdout.write(format_report(report))
            if report.degraded:
                raise Degraded(report.reason())
        return None

    def status(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        state = cs.load_state(config.state)
        if state is None:
            sys.stdout.write("bacula-confsync: not active on this node\n")
            return OCFStatus.NOT_RUNNING
        sys.stdout.write(format_status(state, config.sync))
        return None

    def list_backups(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        listing = cs.list_backups(config.sync, _admin_deadline(env))
        sys.stdout.write(format_backups(listing))
        return None

    def rollback(self, config: Config, env: Environment, log: Logger) -> OCFStatus | None:
        """rollback [STAMP] [--local] [--from PEER]: see docs/confsync.md."""
        args = sys.argv[2:]
        local = "--local" in args
        source_peer = None
        if "--from" in args:
            i = args.index("--from")
            if i + 1 >= len(args):
                raise ArgsError("rollback --from needs a peer name")
            source_peer = args[i + 1]
            args = args[:i] + args[i + 2 :]
        stamps = [a for a in args if not a.startswith("--")]
        output, report = do_rollback(
            config, _admin_deadline(env), log, stamps[0] if stamps else None, local, source_peer
        )
        sys.stdout.write(output)
        if report is not None and report.degraded:
            raise Degraded(report.reason())
        return None

    # --- shared -----------------------------------------------------------------------------

    def locked_sync(
        self, config: Config, deadline: Deadline, log: Logger, *, require_running: bool = True
    ) -> cs.SyncReport | None:
        """One sync under the instance lock; None when another sync held it until the end."""
        os.makedirs(os.path.dirname(config.state), mode=0o700, exist_ok=True)
        if config.sync.mux_dir:
            os.makedirs(config.sync.mux_dir, mode=0o700, exist_ok=True)
        lock = cs.Lock(config.state)
        if not lock.acquire(deadline.sooner(max(1.0, deadline.remaining() / 2))):
            log.info("another sync of this instance is running; this one is skipped")
            return None
        try:
            state = cs.load_state(config.state)
            if state is None and require_running:
                return None  # stopped meanwhile
            state = state or {}
            try:
                report = cs.sync(config.sync, deadline, log, state)
            except cs.SyncError as exc:
                raise GenericError(exc.reason) from None
            if os.path.exists(config.state):
                cs.save_state(config.state, state)
            return report
        finally:
            lock.release()


def do_rollback(
    config: Config,
    deadline: Deadline,
    log: Logger,
    stamp: str | None,
    local: bool,
    source_peer: str | None,
) -> tuple[str, cs.SyncReport | None]:
    """The rollback of the agent's action and of `bacula-ha confsync rollback`.

    Returns what to print and the report of the push that followed (None for --local).
    """
    try:
        if local:
            out = cs.rollback_local(config.sync, stamp)
            text = "".join(f"{p}: restored backup {i['restored']} here\n" for p, i in out.items())
            return text, None
        os.makedirs(os.path.dirname(config.state), mode=0o700, exist_ok=True)
        lock = cs.Lock(config.state)
        if not lock.acquire(deadline.sooner(30)):
            raise GenericError("a sync is running; try again")
        try:
            state = cs.load_state(config.state) or {}
            origin, report = cs.rollback(config.sync, deadline, log, state, stamp, source_peer)
            if os.path.exists(config.state):
                cs.save_state(config.state, state)
        finally:
            lock.release()
    except cs.SyncError as exc:
        raise GenericError(f"rollback: {exc.reason}") from None
    return f"restored {origin} on this node\n" + format_report(report), report


def saved_config(rsctmp: str, instance: str = "") -> Config:
    """The parameters saved by the instance active on this node (for admin commands)."""
    candidates = [cs.state_path(rsctmp, instance)] if instance else cs.active_states(rsctmp)
    candidates = [c for c in candidates if os.path.exists(c)]
    if len(candidates) != 1:
        where = "several instances are" if candidates else "no instance is"
        raise NotRunningError(f"bacula-confsync: {where} active on this node")
    saved = cs.load_state(candidates[0]) or {}
    if "config" not in saved:
        raise GenericError(f"{candidates[0]} holds no saved parameters")
    return Config(cs.config_from_json(saved["config"]), candidates[0], {})


def _resolve_targets(value: str, deadline: Deadline) -> tuple[list[cs.Peer], str]:
    """The peers to push to, and the local node's name when in a cluster ("" otherwise)."""
    listed = parse_targets(value)
    cluster = cs.cluster_nodes(deadline)
    if cluster is None:
        if not listed:
            raise ArgsError("targets is empty and no cluster answers crm_node -l here")
        me = os.uname().nodename
        return [p for p in listed if p.name != me], ""
    local, nodes = cluster
    if not listed:
        return [cs.Peer(n, n) for n in nodes if n != local], local
    strangers = [p.name for p in listed if p.name not in nodes]
    if strangers:
        raise NotConfiguredError(f"targets: {', '.join(strangers)} not a cluster node")
    return [p for p in listed if p.name != local], local


def _admin_deadline(env: Environment) -> Deadline:
    return env.deadline if "timeout" in env.meta else Deadline.after(ADMIN_TIMEOUT)


def _remove_state(state: str, mux_dir: str) -> None:
    import contextlib
    import shutil

    for path in (state, state + ".lock"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
    if mux_dir:
        shutil.rmtree(mux_dir, ignore_errors=True)


def _monotonic() -> float:
    import time

    return time.monotonic()


def _now() -> float:
    import time

    return time.time()


def _when(stamp: Any) -> str:
    import time

    if not stamp:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(float(stamp)))


def format_report(report: cs.SyncReport) -> str:
    lines = []
    if report.check_failed:
        lines.append(f"not pushed: {report.check_failed}")
    for note in report.notes:
        lines.append(f"note: {note}")
    for r in report.results:
        if not r.ok:
            lines.append(f"{r.peer}: FAILED: {r.error}")
            continue
        what = "pushed" if r.pushed else "in sync"
        extra = f"; drift kept as backup {', '.join(r.backups)}" if r.drift_count else ""
        lines.append(f"{r.peer}: {what} ({r.seconds:.2f}s){extra}")
    return "\n".join(lines) + "\n" if lines else "no peers\n"


def format_status(state: Mapping[str, Any], cfg: cs.SyncConfig) -> str:
    lines = [f"paths: {' '.join(cfg.paths)}", f"active since: {_when(state.get('started'))}"]
    failed = state.get("check_failed")
    if failed:
        lines.append(f"NOT PUSHING since {_when(failed.get('at'))}: {failed.get('reason')}")
    peers = state.get("peers", {})
    for peer in cfg.peers:
        record = peers.get(peer.name, {})
        line = f"{peer.name}: last good sync {_when(record.get('last_good'))}"
        if record.get("error"):
            line += f"; failing since last attempt {_when(record.get('last_attempt'))}: "
            line += record["error"]
        lines.append(line)
        drift = record.get("drift")
        if drift:
            names = ", ".join(drift.get("files", [])[:5])
            lines.append(
                f"  drift at {_when(drift.get('at'))}: {drift.get('count')} name(s) ({names}); "
                f"kept as backup {', '.join(record.get('drift_backups', []))}"
            )
    return "\n".join(lines) + "\n"


def format_backups(listing: cs.Backups) -> str:
    lines = []
    for path, stamps in listing.local.items():
        lines.append(f"this node: {path}: {' '.join(stamps) or '(none)'}")
    for peer, value in listing.peers.items():
        if isinstance(value, str):
            lines.append(f"{peer}: {value}")
            continue
        for path, stamps in value.items():
            lines.append(f"{peer}: {path}: {' '.join(stamps) or '(none)'}")
    return "\n".join(lines) + "\n"


AGENT = ConfsyncAgent()
