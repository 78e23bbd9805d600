"""What the admin commands show (status, a sync's report, backups, a rollback), as text."""

from __future__ import annotations

import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from .model import Backups, SyncConfig, SyncReport


def _when(stamp: Any) -> str:
    if not stamp:
        return "never"
    if not isinstance(stamp, int | float) or not 0 <= stamp < 2**40:
        return f"unreadable ({str(stamp)[:20]!r})"  # a damaged state file: say so, go on
    return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(stamp))


def report(report: SyncReport) -> str:
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


def status(state: Mapping[str, Any] | None, cfg: SyncConfig) -> str:
    if state is None:
        return "bacula-confsync: not active on this node\n"
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


def backups(listing: Backups) -> str:
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


def rollback(origin: str, pushed: SyncReport) -> str:
    return f"restored {origin} on this node\n" + report(pushed)


def rollback_here(restored: Mapping[str, Any]) -> str:
    return "".join(f"{p}: restored backup {i['restored']} here\n" for p, i in restored.items())
