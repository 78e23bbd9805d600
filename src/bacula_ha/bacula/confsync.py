"""Push the Bacula configuration from this node to its peers: checked, atomic, with backups.

One sync, per peer and in parallel: ask the peer for the state of its trees (one ssh
round trip, multiplexed over a persistent connection); when neither the source nor the
peer changed since the last push, that is all. Otherwise rsync each tree into a stage beside
the live one (unchanged files hard-linked from it, so only changed files travel), then swap
stage and live in one rename; the old tree becomes a timestamped backup. What the peer side
does lives in `confsync_remote`, which is sent to the peer as program text.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from ..ocf.command import CommandTimeout, Completed, run
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError, NotInstalledError
from . import confsync_remote as remote

SSH = "/usr/bin/ssh"
RSYNC = "/usr/bin/rsync"
REMOTE_PYTHON = "/usr/bin/python3"
CRM_NODE = "/usr/sbin/crm_node"
CRM_ATTRIBUTE = "/usr/sbin/crm_attribute"
SBIN = "/usr/sbin"
DEFAULT_PATHS = ("/etc/bacula",)
# Editor droppings: never pushed, never counted as a change.
DEFAULT_EXCLUDES = (".*.swp", ".*.swx", "*~", ".#*", "#*#")
STATE_PREFIX = "bacula-confsync-"
STATE_SUBDIR = "bacula-ha"
ATTRIBUTE = "bacula-confsync-last-good"
# A node attribute costs a round trip to the cluster: refreshed at most this often when
# nothing else changes (the status file always holds the exact time).
ATTRIBUTE_REFRESH = 300.0
CHECK_MODES = ("full", "parse", "none")


class Log(Protocol):
    def debug(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...
    def warning(self, message: str) -> None: ...
    def error(self, message: str) -> None: ...


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
    """Everything a sync needs; built by the agent from its parameters."""

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

    def items(self, peer: Peer) -> list[dict[str, Any]]:
        return [
            {"path": self.remote_path(peer, p), "excludes": list(self.excludes)} for p in self.paths
        ]

    def ssh_argv(self) -> list[str]:
        """ssh and its options, without the destination."""
        argv = [SSH, "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}"]
        # A peer that vanishes mid-transfer is noticed by ssh itself, not only by our timer.
        argv += ["-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=3"]
        if self.ssh_config:
            argv += ["-F", self.ssh_config]
        if self.identity:
            argv += ["-i", self.identity, "-o", "IdentitiesOnly=yes"]
        if self.user:
            argv += ["-l", self.user]
        if self.mux_dir:
            # One authenticated connection per peer, kept between monitors: a key exchange
            # costs ~0.2 s here, a multiplexed session ~0.01 s.
            argv += [
                "-o",
                "ControlMaster=auto",
                "-o",
                f"ControlPath={self.mux_dir}/%C",
                "-o",
                f"ControlPersist={self.mux_persist}",
            ]
        for option in self.ssh_options:
            argv += ["-o", option]
        return argv


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


# --- state ----------------------------------------------------------------------------------


def state_path(rsctmp: str, instance: str) -> str:
    """Where an instance keeps its state: present from start to stop (like ocf.state)."""
    safe = instance.replace("/", "_")
    return os.path.join(rsctmp, STATE_SUBDIR, f"{STATE_PREFIX}{safe}.json")


def load_state(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def save_state(path: str, state: Mapping[str, Any]) -> None:
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
        json.dump(state, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


class Lock:
    """An exclusive flock beside the state file: one sync per instance at a time."""

    def __init__(self, path: str) -> None:
        self.path = path + ".lock"
        self.fd = -1

    def acquire(self, deadline: Deadline) -> bool:
        import fcntl

        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if deadline.expired():
                    os.close(self.fd)
                    self.fd = -1
                    return False
                time.sleep(0.05)

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)  # closing drops the flock
            self.fd = -1


def active_states(rsctmp: str) -> list[str]:
    """State files of the confsync instances active on this node."""
    directory = os.path.join(rsctmp, STATE_SUBDIR)
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return sorted(
        os.path.join(directory, n)
        for n in names
        if n.startswith(STATE_PREFIX) and n.endswith(".json")
    )


# --- the source tree -----------------------------------------------------------------------


_DAEMONS = (
    ("bacula-dir.conf", "bdirjson", "bacula-dir"),
    ("bacula-sd.conf", "bsdjson", "bacula-sd"),
    ("bacula-fd.conf", "bfdjson", "bacula-fd"),
)
def check_source(
    paths: Sequence[str], mode: str, timeout: float, deadline: Deadline, log: Log
) -> list[str]:
    """Test every daemon configuration found at the top of a synced tree.

    Returns notes (e.g. catalog unreachable); raises ConfigCheckFailed when a test fails.
    The *json tools parse with Bacula's own parser and resolve references but never open
    the catalog; `bacula-dir -t` adds the daemon's own checks and opens it, and its retries
    against a dead database take 30 s, so it is bounded and a catalog failure is only a note.
    """
    from . import configtest as ct

    notes: list[str] = []
    if mode == "none":
        return notes
    for path in paths:
        for conf_name, parser, daemon in _DAEMONS:
            conf = os.path.join(path, conf_name)
            if not os.path.isfile(conf):
                continue
            parsed = ct.parse(f"{SBIN}/{parser}", conf, deadline, timeout)
            if parsed.outcome == ct.NOT_INSTALLED:
                log.debug(f"{parser} not installed: {conf} not parsed")
            elif not parsed.accepted:
                raise ConfigCheckFailed(f"{conf_name}: {parsed.reason}")
            if mode != "full":
                continue
            tested = ct.test([f"{SBIN}/{daemon}", "-t", "-c", conf], conf, deadline, timeout)
            if tested.accepted:
                continue
            if tested.outcome == ct.NOT_INSTALLED:
                log.debug(f"{daemon} not installed: {conf} not tested")
            elif daemon == "bacula-dir" and tested.outcome == ct.CATALOG_UNREACHABLE:
                notes.append("catalog unreachable during bacula-dir -t (not a config error)")
            elif daemon == "bacula-dir" and tested.outcome == ct.TIMED_OUT and parsed.accepted:
                notes.append(f"{daemon} -t did not finish in {timeout:.0f}s (catalog?)")
            else:
                raise ConfigCheckFailed(f"{daemon} -t: {tested.reason}")
    return notes


# --- talking to a peer ---------------------------------------------------------------------


_BOOT = "import sys;exec(compile(sys.stdin.read(),'confsync-remote','exec'))"
_HELPER_SOURCE: list[str] = []


def _helper_program(request: Mapping[str, Any]) -> bytes:
    if not _HELPER_SOURCE:
        with open(remote.__file__, encoding="utf-8") as handle:
            _HELPER_SOURCE.append(handle.read())
    literal = json.dumps(json.dumps(request))
    call = f"\nimport json as _j\nraise SystemExit(main(_j.loads({literal})))\n"
    return (_HELPER_SOURCE[0] + call).encode("utf-8")


def _ssh_failure(done: Completed) -> str:
    """ssh's or the helper's first lines of complaint (noise dropped), for an exit reason."""
    lines: list[str] = []
    for raw in done.stderr.splitlines():
        line = " ".join(raw.split())
        if line and line not in lines:
            lines.append(line)
    return (" ".join(lines[:2]) or f"exit status {done.returncode}")[:160]


def call_helper(
    cfg: SyncConfig, peer: Peer, request: Mapping[str, Any], deadline: Deadline, timeout: float
) -> dict[str, Any]:
    """Run one confsync_remote request on `peer`; its answer, or SyncError."""
    command = f"exec {REMOTE_PYTHON} -I -S -c {shlex.quote(_BOOT)}"
    try:
        with _watchdog(cfg, peer, deadline, timeout):
            done = run(
                [*cfg.ssh_argv(), peer.address, command],
                deadline=deadline,
                timeout=timeout,
                input=_helper_program(request),
            )
    except CommandTimeout:
        raise SyncError(f"no answer within {deadline.bound(timeout):.0f}s") from None
    if not done.ok:
        raise SyncError(_ssh_failure(done))
    try:
        answer = json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise SyncError(f"bad answer from peer helper: {done.stdout[-120:]!r}") from None
    if not answer.get("ok"):
        raise SyncError(str(answer.get("error", "peer helper failed"))[:160])
    return dict(answer["paths"])


def _rsync(
    cfg: SyncConfig, peer: Peer, src: str, dest: str, link_dest: str | None, deadline: Deadline
) -> None:
    is_dir = os.path.isdir(src) and not os.path.islink(src)
    argv = [RSYNC, "-a", "-A", "-X", "--delete", f"--timeout={cfg.io_timeout}"]
    argv += [*cfg.rsync_options, *(f"--exclude={p}" for p in cfg.excludes)]
    if link_dest and is_dir:
        # Unchanged files become hard links to the live tree: nothing travels for them.
        argv.append(f"--link-dest={link_dest}")
    argv += ["-e", " ".join(shlex.quote(a) for a in cfg.ssh_argv())]
    argv += [src + "/" if is_dir else src, f"{peer.address}:{dest}" + ("/" if is_dir else "")]
    _transfer(cfg, peer, argv, deadline)


def _rsync_names(
    cfg: SyncConfig, peer: Peer, src: str, stage: str, change: Changes, deadline: Deadline
) -> None:
    """Send only the changed names into a stage the peer built from its live tree."""
    names = [n for n in change.changed if n not in change.gone]
    if not names:
        return  # only removals: the stage already lacks them
    argv = [RSYNC, "-a", "-A", "-X", f"--timeout={cfg.io_timeout}", "--from0", "--files-from=-"]
    argv += cfg.rsync_options
    argv += ["-e", " ".join(shlex.quote(a) for a in cfg.ssh_argv())]
    argv += [src + "/", f"{peer.address}:{stage}/"]
    listing = b"".join(os.fsencode(n) + b"\0" for n in names)
    _transfer(cfg, peer, argv, deadline, listing)


def _transfer(
    cfg: SyncConfig, peer: Peer, argv: list[str], deadline: Deadline, listing: bytes | None = None
) -> None:
    """Run one rsync into a peer's stage under the watchdog; SyncError when it fails."""
    try:
        with _watchdog(cfg, peer, deadline, None):
            done = run(argv, deadline=deadline, input=listing)
    except CommandTimeout:
        raise SyncError(
            "transfer did not finish in time (stage left, live tree untouched)"
        ) from None
    if not done.ok:
        raise SyncError(f"rsync failed: {_ssh_failure(done)}")


@contextlib.contextmanager
def _watchdog(
    cfg: SyncConfig, peer: Peer, deadline: Deadline, timeout: float | None
) -> Iterator[None]:
    """Close the peer's shared connection if a command over it outlives its bound.

    A multiplexed ssh client hands its pipes to the master connection: killing the client
    at the deadline is not enough, the pipes stay open (and the runner waiting on them)
    until the master goes. A peer that froze behind a live connection would otherwise hold
    the action until ssh's keep-alives give up.
    """
    if not cfg.mux_dir:
        yield
        return
    delay = deadline.bound(timeout) + 0.3
    timer = threading.Timer(delay, close_connection, args=(cfg, peer, Deadline.after(5)))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def close_connection(cfg: SyncConfig, peer: Peer, deadline: Deadline) -> None:
    """End the multiplexed connection to `peer`, if one is open."""
    if not cfg.mux_dir:
        return
    try:
        run([*cfg.ssh_argv(), "-O", "exit", peer.address], deadline=deadline, timeout=3)
    except GenericError:
        pass


# --- one sync -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Changes:
    """What changed in one source tree since the tree recorded at the last push."""

    base: str  # digest of the recorded tree
    changed: tuple[str, ...]  # names added, changed or removed
    gone: tuple[str, ...]  # names removed


def source_changes(path: str, entries: remote.Entries) -> Changes | None:
    """Changes since this node's manifest of `path` (written after each push), if any."""
    base = remote.read_manifest(path)
    digest = remote.read_manifest_digest(path)
    if base is None or digest is None:
        return None
    changed = remote.diff(base, entries)
    return Changes(digest, tuple(changed), tuple(n for n in changed if n not in entries))


def _sync_peer(
    cfg: SyncConfig,
    peer: Peer,
    sources: Mapping[str, str],
    changes: Mapping[str, Changes | None],
    known: Mapping[str, Any],
    deadline: Deadline,
) -> tuple[PeerResult, dict[str, Any]]:
    """Sync one peer; returns the result and the peer's new state record."""
    started = time.monotonic()
    record = dict(known)
    record["last_attempt"] = time.time()
    paths_known: dict[str, Any] = dict(record.get("paths", {}))
    remote_of = {p: cfg.remote_path(peer, p) for p in cfg.paths}
    try:
        items = cfg.items(peer)
        for item, p in zip(items, cfg.paths, strict=True):
            change = changes.get(p)
            last = paths_known.get(p, {})
            if change and last.get("pushed") == change.base and last.get("digest"):
                # The peer got `change.base` from us: if it still holds exactly that, it can
                # build the stage from its live tree in the same round trip as the scan.
                item["prepare"] = {
                    "expect": last["digest"],
                    "skip": list(change.changed),
                    "gone": list(change.gone),
                }
        scan = call_helper(cfg, peer, {"op": "scan", "items": items}, deadline, 30)
        todo = [
            p
            for p in cfg.paths
            if paths_known.get(p, {}).get("pushed") != sources[p]
            or paths_known.get(p, {}).get("digest") != scan[remote_of[p]]["digest"]
        ]
        drift: list[str] = []
        drift_count = 0
        first = False
        for p in cfg.paths:
            state = scan[remote_of[p]]
            if state["recorded"] is None and state["digest"] != remote.ABSENT:
                first = True
            drift += [p if n == "." else f"{p}/{n}" for n in state["drift"]]
            drift_count += int(state["drift_count"])
        result = PeerResult(peer.name, ok=True, drift=tuple(drift), drift_count=drift_count)
        for p in cfg.paths:
            if p not in todo:
                paths_known[p] = {"pushed": sources[p], "digest": scan[remote_of[p]]["digest"]}
        if todo:
            full = [p for p in todo if not (scan[remote_of[p]].get("prepared") and changes.get(p))]
            if full:
                # The whole tree goes through rsync: a stage built ahead must go first.
                clear = [i for i, p in zip(items, cfg.paths, strict=True) if p in full]
                call_helper(cfg, peer, {"op": "clear", "items": clear}, deadline, 60)
            for p in todo:
                rp = remote_of[p]
                change = changes.get(p)
                if p not in full and change is not None:
                    _rsync_names(cfg, peer, p, remote.stage_path(rp), change, deadline)
                else:
                    live = rp if scan[rp]["digest"] != remote.ABSENT else None
                    _rsync(cfg, peer, p, remote.stage_path(rp), live, deadline)
            swap_items = []
            for item, p in zip(items, cfg.paths, strict=True):
                if p not in todo:
                    continue
                item.pop("prepare", None)
                change = changes.get(p)
                if scan[remote_of[p]].get("prepared") and change is not None:
                    # The peer re-reads only these names to record the new tree.
                    item["changed"] = [n for n in change.changed if n not in change.gone]
                swap_items.append(item)
            swapped = call_helper(
                cfg, peer, {"op": "swap", "items": swap_items, "keep": cfg.backups}, deadline, 60
            )
            for p in todo:
                paths_known[p] = {"pushed": sources[p], "digest": swapped[remote_of[p]]["digest"]}
            stamps = tuple(s["backup"] for s in swapped.values() if s.get("backup"))
            result = replace(result, pushed=True, first=first, backups=stamps)
            if drift_count:
                record["drift"] = {"at": time.time(), "files": drift, "count": drift_count}
                record["drift_backups"] = list(stamps)
        record["paths"] = paths_known
        record["last_good"] = time.time()
        record["error"] = ""
        return replace(result, seconds=time.monotonic() - started), record
    except SyncError as exc:
        record["error"] = exc.reason
        return (
            PeerResult(peer.name, ok=False, error=exc.reason, seconds=time.monotonic() - started),
            record,
        )


def sync(
    cfg: SyncConfig,
    deadline: Deadline,
    log: Log,
    state: dict[str, Any] | None = None,
) -> SyncReport:
    """Check the source, then bring every peer up to date. `state` is updated in place."""
    state = state if state is not None else {}
    entries = {p: remote.walk(p, list(cfg.excludes)) for p in cfg.paths}
    missing = [p for p, e in entries.items() if e is None]
    if missing:
        raise SyncError(f"source {missing[0]} does not exist")
    sources = {p: remote.digest(e) for p, e in entries.items()}

    notes: list[str] = []
    checked = state.get("checked", {})
    failed = state.get("check_failed", {})
    if failed.get("digests") == sources:
        # Tested already and still the same tree: the answer has not changed either.
        return SyncReport(check_failed=str(failed.get("reason", "")))
    if any(checked.get(p) != d for p, d in sources.items()):
        try:
            notes += check_source(cfg.paths, cfg.check, cfg.check_timeout, deadline, log)
        except ConfigCheckFailed as exc:
            log.warning(f"configuration test failed, nothing pushed: {exc.reason}")
            state["check_failed"] = {"at": time.time(), "reason": exc.reason, "digests": sources}
            return SyncReport(check_failed=exc.reason)
        state["checked"] = dict(sources)
    state.pop("check_failed", None)
    for note in notes:
        log.warning(note)

    peers_state: dict[str, Any] = state.setdefault("peers", {})
    outcomes: dict[str, tuple[PeerResult, dict[str, Any]]] = {}

    # Changes since the last push: only worth reading the recorded manifest when the
    # source is not that tree any more.
    changes: dict[str, Changes | None] = {}
    for p, e in entries.items():
        recorded = remote.read_manifest_digest(p)
        changes[p] = None
        if recorded is not None and recorded != sources[p] and os.path.isdir(p):
            changes[p] = source_changes(p, e or {})

    def work(peer: Peer) -> None:
        known = peers_state.get(peer.name, {})
        try:
            outcomes[peer.name] = _sync_peer(cfg, peer, sources, changes, known, deadline)
        except Exception as exc:  # one peer's surprise must not cost the others their sync
            error = f"internal error: {type(exc).__name__}: {exc}"[:160]
            log.error(f"peer {peer.name}: {error}")
            outcomes[peer.name] = (PeerResult(peer.name, ok=False, error=error), dict(known))

    _parallel(work, cfg.peers)
    results: list[PeerResult] = []
    for peer in cfg.peers:
        result, record = outcomes[peer.name]
        peers_state[peer.name] = record
        results.append(result)
        _log_result(result, log)
    if any(r.pushed for r in results):
        # The source's own manifest: when this node becomes a target after a failover,
        # edits made here after this push show up as drift instead of vanishing silently.
        for p, e in entries.items():
            if remote.read_manifest_digest(p) != sources[p]:
                remote.write_manifest(p, e)
    if cfg.local_node:
        _update_attributes(cfg, peers_state, deadline, log)
    return SyncReport(results=tuple(results), notes=tuple(notes))


def _parallel(work: Callable[[Peer], None], peers: Sequence[Peer]) -> None:
    if len(peers) == 1:
        work(peers[0])
        return
    threads = [threading.Thread(target=work, args=(p,), daemon=True) for p in peers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _log_result(result: PeerResult, log: Log) -> None:
    if not result.ok:
        log.warning(f"peer {result.peer}: not synced: {result.error}")
        return
    if result.drift_count:
        names = ", ".join(result.drift[:10])
        more = f" and {result.drift_count - 10} more" if result.drift_count > 10 else ""
        log.warning(
            f"peer {result.peer}: its configuration changed since the last sync ({names}{more});"
            f" that version is kept as backup {', '.join(result.backups) or '(none)'}"
        )
    if result.first and result.backups:
        log.info(f"peer {result.peer}: first sync; its previous tree is backup {result.backups[0]}")
    if result.pushed:
        log.info(f"peer {result.peer}: configuration pushed in {result.seconds:.2f}s")
    else:
        log.debug(f"peer {result.peer}: in sync ({result.seconds:.2f}s)")


# --- cluster --------------------------------------------------------------------------------


def cluster_nodes(deadline: Deadline) -> tuple[str, list[str]] | None:
    """(local node, all nodes) from Pacemaker, or None when no cluster runs here."""
    try:
        local = run([CRM_NODE, "-n"], deadline=deadline, timeout=5)
        listed = run([CRM_NODE, "-l"], deadline=deadline, timeout=5)
    except (NotInstalledError, CommandTimeout):
        return None
    if not (local.ok and listed.ok):
        return None
    # `crm_node -l` prints "ID NAME STATE" per known node.
    nodes = [f[1] for f in (ln.split() for ln in listed.stdout.splitlines()) if len(f) >= 2]
    return local.stdout.strip(), nodes


def _update_attributes(
    cfg: SyncConfig, peers_state: dict[str, Any], deadline: Deadline, log: Log
) -> None:
    """Publish each peer's last good sync as its transient node attribute (crm_mon -A)."""
    for peer in cfg.peers:
        record = peers_state.get(peer.name, {})
        good = record.get("last_good")
        if not good or good - record.get("attribute_at", 0) < ATTRIBUTE_REFRESH:
            continue
        value = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(good))
        try:
            done = run(
                [CRM_ATTRIBUTE, "-N", peer.name, "-n", ATTRIBUTE, "-l", "reboot", "-v", value],
                deadline=deadline,
                timeout=5,
            )
        except (NotInstalledError, CommandTimeout):
            continue
        if done.ok:
            record["attribute_at"] = good
        else:
            log.debug(f"crm_attribute for {peer.name}: {done.output_tail()}")


# --- rollback and listings ----------------------------------------------------------------


@dataclass(frozen=True)
class Backups:
    """The backups each peer (and this node) holds, by path."""

    local: Mapping[str, list[str]]
    peers: Mapping[str, Mapping[str, list[str]] | str] = field(default_factory=dict)


def list_backups(cfg: SyncConfig, deadline: Deadline) -> Backups:
    local_items = [{"path": p, "excludes": list(cfg.excludes)} for p in cfg.paths]
    peers: dict[str, Mapping[str, list[str]] | str] = {}

    def work(peer: Peer) -> None:
        try:
            answer = call_helper(
                cfg, peer, {"op": "backups", "items": cfg.items(peer)}, deadline, 30
            )
            peers[peer.name] = {p: answer[cfg.remote_path(peer, p)] for p in cfg.paths}
        except SyncError as exc:
            peers[peer.name] = f"unreachable: {exc.reason}"

    _parallel(work, cfg.peers)
    return Backups(local=remote.backups(local_items), peers=peers)


def rollback_local(cfg: SyncConfig, stamp: str | None) -> dict[str, Any]:
    """Put this node's own backup `stamp` (default: newest) back in place; no network."""
    items = [{"path": p, "excludes": list(cfg.excludes)} for p in cfg.paths]
    try:
        return remote.restore(items, stamp, cfg.backups)
    except OSError as exc:
        raise SyncError(str(exc)) from None
    finally:
        _restore_signals()
        remote.empty_trash_now(items)


def rollback(
    cfg: SyncConfig,
    deadline: Deadline,
    log: Log,
    state: dict[str, Any],
    stamp: str | None = None,
    source_peer: str | None = None,
) -> tuple[str, SyncReport]:
    """Undo the last push everywhere: fetch the previous tree from a peer's backups, put it
    in place here (the current tree becomes a local backup), then push it to every peer.

    Returns (where the tree came from, the push's report).
    """
    candidates = [p for p in cfg.peers if source_peer in (None, p.name)]
    if not candidates:
        raise SyncError(f"{source_peer} is not a target of this resource")
    errors: list[str] = []
    for peer in candidates:
        try:
            listing = call_helper(
                cfg, peer, {"op": "backups", "items": cfg.items(peer)}, deadline, 30
            )
        except SyncError as exc:
            errors.append(f"{peer.name}: {exc.reason}")
            continue
        chosen: dict[str, str] = {}
        for p in cfg.paths:
            stamps = listing[cfg.remote_path(peer, p)]
            pick = stamp or (stamps[-1] if stamps else None)
            if pick is None or pick not in stamps:
                errors.append(f"{peer.name}: no backup {stamp or ''} of {p}".replace("  ", " "))
                break
            chosen[p] = pick
        else:
            for p in cfg.paths:
                rp = cfg.remote_path(peer, p)
                backup = os.path.join(remote.backups_dir(rp), chosen[p])
                stage = remote.stage_path(p)
                os.makedirs(os.path.dirname(stage), mode=0o700, exist_ok=True)
                _pull(cfg, peer, backup, stage, p, deadline)
            items = [{"path": p, "excludes": list(cfg.excludes)} for p in cfg.paths]
            try:
                remote.swap(items, cfg.backups)
            finally:
                _restore_signals()
            remote.empty_trash_now(items)
            origin = f"{peer.name}:{','.join(sorted(set(chosen.values())))}"
            log.info(f"rollback: restored {origin} here; pushing it to every peer")
            # The restored tree is a known good one: it was live before the last push.
            return origin, sync(cfg, deadline, log, state)
    raise SyncError("no backup to roll back to: " + "; ".join(errors))


def _restore_signals() -> None:
    import signal

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _pull(cfg: SyncConfig, peer: Peer, src: str, stage: str, live: str, deadline: Deadline) -> None:
    remote._remove_tree(stage)
    argv = [RSYNC, "-a", "-A", "-X", "--delete", f"--timeout={cfg.io_timeout}"]
    if os.path.isdir(live):
        argv.append(f"--link-dest={live}")
    argv += ["-e", " ".join(shlex.quote(a) for a in cfg.ssh_argv())]
    # A trailing slash copies a directory's content; a file backup is copied as the file.
    argv += (
        [f"{peer.address}:{src}/", stage + "/"]
        if os.path.isdir(live)
        else [
            f"{peer.address}:{src}",
            stage,
        ]
    )
    try:
        done = run(argv, deadline=deadline)
    except CommandTimeout:
        raise SyncError("fetching the backup did not finish in time") from None
    if not done.ok:
        raise SyncError(f"fetching the backup failed: {_ssh_failure(done)}")


# --- the call for other agents --------------------------------------------------------------


def request_sync(
    deadline: Deadline, *, rsctmp: str | None = None, log: Log | None = None
) -> list[SyncReport]:
    """Push now, with the saved parameters of every confsync instance active on this node.

    For the bacula-dir agent's reload: `request_sync(env.deadline)`. Returns one report per
    active instance (none when no confsync runs here). Waits for a sync already under way
    rather than starting a second one beside it.
    """
    from ..ocf.log import Logger

    rsctmp = rsctmp or os.environ.get("HA_RSCTMP", "") or "/run/resource-agents"
    logger: Log = log or Logger.from_environ("bacula-confsync", os.environ)
    reports: list[SyncReport] = []
    for path in active_states(rsctmp):
        state = load_state(path)
        if not state or "config" not in state:
            continue
        cfg = config_from_json(state["config"])
        lock = Lock(path)
        if not lock.acquire(deadline):
            logger.warning(f"{os.path.basename(path)}: a sync is still running; not waiting")
            continue
        try:
            state = load_state(path) or state
            report = sync(cfg, deadline, logger, state)
            if os.path.exists(path):  # a stop may have removed it meanwhile
                save_state(path, state)
        finally:
            lock.release()
        reports.append(report)
    return reports


def config_to_json(cfg: SyncConfig) -> dict[str, Any]:
    data = {k: getattr(cfg, k) for k in cfg.__dataclass_fields__}
    data["peers"] = [[p.name, p.address] for p in cfg.peers]
    return data


def config_from_json(data: Mapping[str, Any]) -> SyncConfig:
    values = {k: v for k, v in data.items() if k in SyncConfig.__dataclass_fields__}
    values["peers"] = tuple(Peer(n, a) for n, a in values["peers"])
    for key in ("paths", "ssh_options", "excludes", "rsync_options"):
        if key in values:
            values[key] = tuple(values[key])
    return SyncConfig(**values)
