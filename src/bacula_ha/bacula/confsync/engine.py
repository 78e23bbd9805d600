"""One sync: check the source, then bring every peer up to date, in parallel.

Per peer: ask for the state of its trees (one ssh round trip over a persistent connection);
when neither the source nor the peer changed since the last push, that is all. Otherwise
rsync each tree into a stage beside the live one (unchanged files hard-linked from it, so
only changed files travel), then swap stage and live in one rename; the old tree becomes a
timestamped backup. What the peer side does lives in remote.py.
"""

from __future__ import annotations

import os
import threading
import time

from . import cluster, remote, transport
from .model import Changes, ConfigCheckFailed, PeerResult, SyncError, SyncReport, replace
from .sourcetest import check_source

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

    from ...ocf.deadline import Deadline
    from .model import Log, Peer, SyncConfig


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

    parallel(work, cfg.peers)
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
        cluster.update_attributes(cfg, peers_state, deadline, log)
    return SyncReport(results=tuple(results), notes=tuple(notes))


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
        scan = transport.call_helper(cfg, peer, {"op": "scan", "items": items}, deadline, 30)
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
            count = state["drift_count"]
            drift_count += count if isinstance(count, int) else 0
        result = PeerResult(peer.name, ok=True, drift=tuple(drift), drift_count=drift_count)
        for p in cfg.paths:
            if p not in todo:
                paths_known[p] = {"pushed": sources[p], "digest": scan[remote_of[p]]["digest"]}
        if todo:
            full = [p for p in todo if not (scan[remote_of[p]].get("prepared") and changes.get(p))]
            if full:
                # The whole tree goes through rsync: a stage built ahead must go first.
                clear = [i for i, p in zip(items, cfg.paths, strict=True) if p in full]
                transport.call_helper(cfg, peer, {"op": "clear", "items": clear}, deadline, 60)
            for p in todo:
                rp = remote_of[p]
                change = changes.get(p)
                if p not in full and change is not None:
                    transport.rsync_names(cfg, peer, p, remote.stage_path(rp), change, deadline)
                else:
                    live = rp if scan[rp]["digest"] != remote.ABSENT else None
                    transport.rsync_tree(cfg, peer, p, remote.stage_path(rp), live, deadline)
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
            request = {"op": "swap", "items": swap_items, "keep": cfg.backups}
            swapped = transport.call_helper(cfg, peer, request, deadline, 60)
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


def parallel(work: Callable[[Peer], None], peers: Sequence[Peer]) -> None:
    """Run `work` for every peer at once (each is mostly waiting on ssh and rsync)."""
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
