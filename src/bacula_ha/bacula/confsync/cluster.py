"""What config sync asks of Pacemaker: the nodes; each peer's last good sync as an attribute."""

from __future__ import annotations

import time

from ...ocf.command import CommandTimeout, run
from ...ocf.errors import NotInstalledError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ...ocf.deadline import Deadline
    from .model import Log, SyncConfig

CRM_NODE = "/usr/sbin/crm_node"
CRM_ATTRIBUTE = "/usr/sbin/crm_attribute"
ATTRIBUTE = "bacula-confsync-last-good"
# A node attribute costs a round trip to the cluster: refreshed at most this often when
# nothing else changes (the state file always holds the exact time).
ATTRIBUTE_REFRESH = 300.0


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


def update_attributes(
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
