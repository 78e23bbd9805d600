"""Synchronous replication of a PostgreSQL catalog: wait for a standby only while one can answer.

With `synchronous_standby_names` set, a commit returns only once a standby has flushed it, so
a promoted standby holds every write the director was told succeeded. PostgreSQL keeps
waiting when no standby is left, and PAF never changes the setting: after a failover the
new primary, alone, would block the director's first write (its start updates the catalog)
until the old node is repaired. So bacula-catalog reconciles the setting on the primary:

- it differs from `wanted` and a named standby streams from a node of this node's cluster
  partition: set it back to `wanted`;
- it is `wanted` and every named standby node is out of the partition *and* known down to
  Pacemaker (fenced, or left cleanly: crm_mon shows it offline and not unclean): set it to ''
  and commits go on alone.

pg_stat_replication is no witness of a crashed standby: its walsender looks "streaming"
until wal_sender_timeout (60 s) notices the silent peer. Cluster membership and fencing
are. A standby node still in the partition, or lost but not yet fenced (it might be alive on
the other side of a partition, and might be promoted there), keeps commits waiting: it must
not miss a write. See docs/replicated-catalog.md.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from ..ocf.command import CommandTimeout, run
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError
from . import catalog as cat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..ocf.log import Log


CRM_NODE = "/usr/sbin/crm_node"
CRM_MON = "/usr/sbin/crm_mon"
RESTORED = "restored"
RELAXED = "relaxed"

_STATE_SQL = (
    "SELECT 'recovery=' || pg_is_in_recovery();\n"
    "SELECT 'sync_names=' || current_setting('synchronous_standby_names');\n"
    "SELECT 'streaming=' || coalesce(string_agg(application_name, ','), '')"
    " FROM pg_stat_replication WHERE state = 'streaming';\n"
)


def standby_names(wanted: str) -> tuple[str, ...] | None:
    """The node names in a synchronous_standby_names value; None for '*' (any standby).

    Accepts the three forms PostgreSQL does: `a, b`, `FIRST n (a, b)`, `ANY n (a, b)`.
    """
    text = wanted.strip()
    if "(" in text and text.endswith(")"):
        text = text[text.index("(") + 1 : -1]
    names = tuple(n.strip().strip('"') for n in text.split(","))
    if "*" in names:
        return None
    return tuple(n for n in names if n)


def valid(wanted: str) -> bool:
    """A value this module can quote and act on (checked by the agent's validate)."""
    if not wanted or not wanted.isprintable() or "'" in wanted or "\\" in wanted:
        return False
    names = standby_names(wanted)
    return names is None or bool(names)


def partition_members(deadline: Deadline, log: Log | None = None) -> set[str] | None:
    """The nodes of this node's cluster partition (crm_node -p); None if it cannot tell."""
    try:
        done = run([CRM_NODE, "-p"], deadline=deadline, timeout=5, log=log)
    except (CommandTimeout, OSError):
        return None
    if not done.ok:
        return None
    return set(done.stdout.split())


def known_down(deadline: Deadline, log: Log | None = None) -> tuple[set[str], set[str]] | None:
    """(nodes Pacemaker knows are down: offline and clean, all cluster nodes); None if unknown."""
    import xml.etree.ElementTree as ET

    try:
        done = run([CRM_MON, "-1", "--output-as=xml"], deadline=deadline, timeout=10, log=log)
        root = ET.fromstring(done.stdout) if done.ok else None
    except (CommandTimeout, OSError, ET.ParseError):
        return None
    if root is None:
        return None
    down, every = set(), set()
    for node in root.iterfind("nodes/node"):
        name = node.get("name", "")
        every.add(name)
        if node.get("online") == "false" and node.get("unclean") == "false":
            down.add(name)
    return down, every


def reconcile(
    client: str,
    settings: cat.CatalogSettings,
    wanted: str,
    options: cat.CheckOptions,
    *,
    deadline: Deadline,
    this_node: str,
    log: Log | None = None,
) -> str | None:
    """Make synchronous_standby_names fit the standbys there are; say what changed, if anything.

    Runs on the primary only (a server in recovery is left alone: its health check fails
    anyway). `wanted` has been checked with valid().
    """
    state = _query(client, settings, options, _STATE_SQL, deadline, log)
    if state.get("recovery") in ("t", "true") or "streaming" not in state:
        return None
    current = state.get("sync_names", "")
    named = standby_names(wanted)
    if current != wanted:
        streaming = {n for n in state["streaming"].split(",") if n} - {this_node}
        if named is not None:
            streaming &= set(named)
        if not streaming:
            return None
        members = partition_members(deadline, log)
        # Without a cluster to ask, waiting for a standby that streams is the safe side.
        if members is None or streaming & members:
            _set(client, settings, options, wanted, deadline, log)
            return RESTORED
        return None
    members = partition_members(deadline, log)
    if members is None:
        return None  # cannot tell whether a standby may come back: keep waiting
    if named is not None and (set(named) - {this_node}) & members:
        return None
    if named is None and members - {this_node}:
        return None
    found = known_down(deadline, log)
    if found is None:
        return None
    down, every = found
    # Nodes the cluster does not know are no standby it could promote.
    standbys = (set(named) & every if named is not None else every) - {this_node}
    if not standbys <= down:
        return None  # lost but not fenced yet: it may live on, and be promoted, elsewhere
    _set(client, settings, options, "", deadline, log)
    return RELAXED


def _set(
    client: str,
    settings: cat.CatalogSettings,
    options: cat.CheckOptions,
    value: str,
    deadline: Deadline,
    log: Log | None,
) -> None:
    # ALTER SYSTEM cannot run in a transaction block: psql's autocommit runs it alone. The
    # role needs (PostgreSQL 15) ALTER SYSTEM on this parameter and EXECUTE on pg_reload_conf.
    sql = (
        f"ALTER SYSTEM SET synchronous_standby_names = '{value}';\n"
        "SELECT 'reloaded=' || pg_reload_conf();\n"
    )
    found = _query(client, settings, options, sql, deadline, log)
    if found.get("reloaded") not in ("t", "true"):
        raise GenericError(
            f"cannot set synchronous_standby_names on catalog {settings.where()}"
            f" ({found.get('error', 'no answer')})"
        )


def _query(
    client: str,
    settings: cat.CatalogSettings,
    options: cat.CheckOptions,
    sql: str,
    deadline: Deadline,
    log: Log | None,
) -> dict[str, str]:
    done = cat.run_client(
        cat.POSTGRESQL,
        client,
        settings,
        options,
        sql,
        deadline=deadline,
        timeout=options.connect_timeout + options.query_timeout + 2,
        log=log,
        late="did not answer the replication query in time",
    )
    found = cat.parse_answer(done.stdout)
    if not done.ok:
        found["error"] = cat.client_error(done.stderr, settings.password) or "failed"
    return found


def node_name(meta: Mapping[str, str]) -> str:
    """This node's cluster name: what Pacemaker passes (meta on_node), else the host name."""
    return meta.get("on_node") or os.uname().nodename
