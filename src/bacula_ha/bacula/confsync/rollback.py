"""Undoing a push: the backups held everywhere, a rollback from a peer's backup, a local one."""

from __future__ import annotations

import os

from . import remote, transport
from .engine import parallel, sync
from .model import Backups, SyncError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from ...ocf.deadline import Deadline
    from .model import Log, Peer, SyncConfig, SyncReport


def list_backups(cfg: SyncConfig, deadline: Deadline) -> Backups:
    """The backups of every path, here and on every peer (in parallel)."""
    peers: dict[str, Mapping[str, list[str]] | str] = {}

    def work(peer: Peer) -> None:
        try:
            answer = transport.call_helper(
                cfg, peer, {"op": "backups", "items": cfg.items(peer)}, deadline, 30
            )
            peers[peer.name] = {p: answer[cfg.remote_path(peer, p)] for p in cfg.paths}
        except SyncError as exc:
            peers[peer.name] = f"unreachable: {exc.reason}"

    parallel(work, cfg.peers)
    return Backups(local=remote.backups(cfg.items()), peers=peers)


def rollback_local(cfg: SyncConfig, stamp: str | None) -> dict[str, Any]:
    """Put this node's own backup `stamp` (default: newest) back in place; no network."""
    items = cfg.items()
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
            listing = transport.call_helper(
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
                backup = os.path.join(remote.backups_dir(cfg.remote_path(peer, p)), chosen[p])
                stage = remote.stage_path(p)
                os.makedirs(os.path.dirname(stage), mode=0o700, exist_ok=True)
                transport.pull(cfg, peer, backup, stage, p, deadline)
            items = cfg.items()
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
    """remote.swap/restore ignore termination signals (a peer must finish a swap); here, in
    the admin's own process, they must work again afterwards."""
    import signal

    for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
