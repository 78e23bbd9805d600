"""An instance here: the OCF library's state file and lock, saved parameters, locked syncs."""

from __future__ import annotations

import os

from ...ocf import state as ocf_state
from ...ocf.errors import GenericError, NotRunningError
from .model import SyncError, config_from_json, config_to_json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from dataclasses import dataclass
    from typing import Any

    from ...ocf.deadline import Deadline
    from .model import Log, SyncConfig, SyncReport
else:
    from ...ocf.record import dataclass

AGENT = "bacula-confsync"
Lock = ocf_state.Lock


def state_path(rsctmp: str, instance: str) -> str:
    """Where an instance keeps its state: present from start to stop."""
    return ocf_state.state_path(rsctmp, AGENT, instance)


def load_state(path: str) -> dict[str, Any] | None:
    return ocf_state.StateFile.at(path).read()


def save_state(path: str, state: dict[str, Any]) -> None:
    ocf_state.StateFile.at(path).write(state)


def active_states(rsctmp: str) -> list[str]:
    """State files of the instances active on this node."""
    _adopt_json_states(rsctmp)
    return ocf_state.existing(rsctmp, AGENT)


def _adopt_json_states(rsctmp: str) -> None:
    """Convert the JSON state files of an instance started before an upgrade: without this,
    its next monitor would find it stopped and Pacemaker would recover it."""
    directory = os.path.join(rsctmp, "bacula-ha")
    try:
        old = [n for n in os.listdir(directory) if n.startswith(f"{AGENT}-")]
    except OSError:
        return
    for name in old:
        if not name.endswith(".json"):
            continue
        import json

        legacy = os.path.join(directory, name)
        try:
            with open(legacy, encoding="utf-8") as handle:
                data = json.load(handle)
            if isinstance(data, dict):
                save_state(legacy[: -len(".json")] + ".state", data)
            os.unlink(legacy)
        except (OSError, ValueError):
            continue


@dataclass(frozen=True)
class Instance:
    """A confsync resource on this node: its configuration and its state file."""

    config: SyncConfig
    path: str  # the state file: present while the resource runs on this node

    @property
    def active(self) -> bool:
        return os.path.exists(self.path)


def instance(rsctmp: str, name: str, config: SyncConfig) -> Instance:
    """The instance `name` with the configuration parsed from its parameters."""
    _adopt_json_states(rsctmp)
    return Instance(config, state_path(rsctmp, name))


def saved_instance(rsctmp: str, name: str = "") -> Instance:
    """The instance active on this node with the parameters it saved at start (for admin
    commands); `name` picks one when several are."""
    _adopt_json_states(rsctmp)
    candidates = [state_path(rsctmp, name)] if name else ocf_state.existing(rsctmp, AGENT)
    candidates = [c for c in candidates if os.path.exists(c)]
    if len(candidates) != 1:
        where = "several instances are" if candidates else "no instance is"
        raise NotRunningError(f"{AGENT}: {where} active on this node")
    saved = load_state(candidates[0]) or {}
    if "config" not in saved:
        raise GenericError(f"{candidates[0]} holds no saved parameters")
    return Instance(config_from_json(saved["config"]), candidates[0])


def status(inst: Instance) -> dict[str, Any] | None:
    """What the state file says (None: not active here)."""
    return load_state(inst.path)


def begin(inst: Instance, started: float) -> list[tuple[str, int, str]]:
    """Mark the instance active (its parameters saved for admin commands and the director),
    and make this node's trees fit to be a source.

    A node that received pushes holds its live files as hard links shared with its backups:
    each gets a copy of its own (remote.unshare). Returns, per path, how many files were
    copied and what went wrong ("" when nothing did).
    """
    from . import remote

    os.makedirs(os.path.dirname(inst.path), mode=0o700, exist_ok=True)
    if inst.config.mux_dir:
        os.makedirs(inst.config.mux_dir, mode=0o700, exist_ok=True)
    existing = load_state(inst.path) or {}
    existing["config"] = config_to_json(inst.config)
    existing.setdefault("started", started)
    save_state(inst.path, existing)
    done: list[tuple[str, int, str]] = []
    for path in inst.config.paths:
        try:
            done.append((path, remote.unshare(path), ""))
        except OSError as exc:
            done.append((path, 0, str(exc)))
    return done


def forget(inst_path: str, mux_dir: str) -> None:
    """The instance is no longer active here: its state, lock and ssh sockets go."""
    import shutil

    for path in (inst_path, inst_path + ".lock"):
        try:
            os.unlink(path)
        except OSError:
            pass  # absent, or HA_RSCTMP is no directory: nothing of ours is there
    if mux_dir:
        shutil.rmtree(mux_dir, ignore_errors=True)


def sync_instance(
    inst: Instance, deadline: Deadline, log: Log, *, require_running: bool = True
) -> SyncReport | None:
    """One sync under the instance lock; None when another sync held it until the end (or,
    with `require_running`, when the instance was stopped meanwhile)."""
    from .engine import sync

    for directory in (os.path.dirname(inst.path), inst.config.mux_dir):
        try:
            if directory:
                os.makedirs(directory, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise GenericError(f"cannot keep state in {directory}: {exc.strerror}") from None
    lock = Lock(inst.path)
    if not lock.acquire(deadline.sooner(max(1.0, deadline.remaining() / 2))):
        log.info("another sync of this instance is running; this one is skipped")
        return None
    try:
        state = load_state(inst.path)
        if state is None and require_running:
            return None  # stopped meanwhile
        state = state or {}
        try:
            report = sync(inst.config, deadline, log, state)
        except SyncError as exc:
            raise GenericError(exc.reason) from None
        if os.path.exists(inst.path):
            save_state(inst.path, state)
        return report
    finally:
        lock.release()


def rollback_instance(
    inst: Instance, deadline: Deadline, log: Log, stamp: str | None, source_peer: str | None
) -> tuple[str, SyncReport]:
    """A rollback from a peer's backup under the instance lock: (origin, the push's report)."""
    from .rollback import rollback

    lock = Lock(inst.path)
    if not lock.acquire(deadline.sooner(30)):
        raise GenericError("a sync is running; try again")
    try:
        state = load_state(inst.path) or {}
        try:
            origin, report = rollback(inst.config, deadline, log, state, stamp, source_peer)
        except SyncError as exc:
            raise GenericError(f"rollback: {exc.reason}") from None
        if os.path.exists(inst.path):
            save_state(inst.path, state)
    finally:
        lock.release()
    return origin, report


def rollback_here(inst: Instance, stamp: str | None) -> Mapping[str, Any]:
    """This node's own backup back in place, no network, no lock needed: by path, what was
    restored."""
    from .rollback import rollback_local

    try:
        return rollback_local(inst.config, stamp)
    except SyncError as exc:
        raise GenericError(f"rollback: {exc.reason}") from None


def request_sync(
    deadline: Deadline, *, rsctmp: str | None = None, log: Log | None = None
) -> list[SyncReport]:
    """Push now, with the saved parameters of every confsync instance active on this node.

    For the bacula-dir agent's reload: `request_sync(env.deadline)`. Returns one report per
    active instance (none when no confsync runs here). Waits for a sync already under way
    (within the deadline) rather than starting a second one beside it.
    """
    from .engine import sync

    if log is None:
        from ...ocf.log import Logger

        log = Logger.from_environ(AGENT, os.environ)
    rsctmp = rsctmp or os.environ.get("HA_RSCTMP", "") or "/run/resource-agents"
    reports: list[SyncReport] = []
    for path in active_states(rsctmp):
        state = load_state(path)
        if not state or "config" not in state:
            continue
        cfg = config_from_json(state["config"])
        lock = Lock(path)
        if not lock.acquire(deadline):
            log.warning(f"{os.path.basename(path)}: a sync is still running; not waiting")
            continue
        try:
            state = load_state(path) or state
            report = sync(cfg, deadline, log, state)
            if os.path.exists(path):  # a stop may have removed it meanwhile
                save_state(path, state)
        finally:
            lock.release()
        reports.append(report)
    return reports
