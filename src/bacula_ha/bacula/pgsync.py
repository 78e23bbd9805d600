"""Synchronous replication of a PostgreSQL catalog: wait for a standby only while one can answer.

With `synchronous_standby_names` set, a commit returns only once a standby has flushed it, so
a promoted standby holds every write the director was told succeeded. PostgreSQL keeps
waiting when no standby is left, and PAF never changes the setting: after a failover the
new primary, alone, would block the director's first write (its start updates the catalog)
until the old node is repaired. So bacula-catalog reconciles the setting on the primary:

- a standby streams and the setting differs from `wanted`: set it back to `wanted`;
- no standby streams and none of the nodes named in `wanted` is a member of this node's
  cluster partition (it was fenced, or left): set it to '' and commits go on alone.

A named standby node that is still a member but does not stream (its PostgreSQL restarting,
a broken replication link) keeps commits waiting: it might be promoted later, and must not
miss a write. See docs/replicated-catalog.md.
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
    from typing import Protocol

    class _Log(Protocol):
        def debug(self, message: str) -> None: ...
        def info(self, message: str) -> None: ...
        def warning(self, message: str) -> None: ...


CRM_NODE = "/usr/sbin/crm_node"
RESTORED = "restored"
RELAXED = "relaxed"

_STATE_SQL = (
    "SELECT 'recovery=' || pg_is_in_recovery();\n"
    "SELECT 'sync_names=' || current_setting('synchronous_standby_names');\n"
    "SELECT 'streaming=' || count(*) FROM pg_stat_replication WHERE state = 'streaming';\n"
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


def partition_members(deadline: Deadline, log: _Log | None = None) -> set[str] | None:
    """The nodes of this node's cluster partition (crm_node -p); None if it cannot tell."""
    try:
        done = run([CRM_NODE, "-p"], deadline=deadline, timeout=5, log=log)
    except (CommandTimeout, OSError):
        return None
    if not done.ok:
        return None
    return set(done.stdout.split())


def reconcile(
    client: str,
    settings: cat.CatalogSettings,
    wanted: str,
    options: cat.CheckOptions,
    *,
    deadline: Deadline,
    this_node: str,
    log: _Log | None = None,
) -> str | None:
    """Make synchronous_standby_names fit the standbys there are; say what changed, if anything.

    Runs on the primary only (a server in recovery is left alone: its health check fails
    anyway). `wanted` has been checked with valid().
    """
    state = _query(client, settings, options, _STATE_SQL, deadline, log)
    if state.get("recovery") in ("t", "true") or "streaming" not in state:
        return None
    current = state.get("sync_names", "")
    streaming = int(state["streaming"]) if state["streaming"].isdigit() else 0
    if streaming and current != wanted:
        _set(client, settings, options, wanted, deadline, log)
        return RESTORED
    if streaming or not current:
        return None
    members = partition_members(deadline, log)
    if members is None:
        return None  # cannot tell whether a standby may come back: keep waiting
    named = standby_names(wanted)
    peers = (members if named is None else members & set(named)) - {this_node}
    if peers:
        return None
    _set(client, settings, options, "", deadline, log)
    return RELAXED


def _set(
    client: str,
    settings: cat.CatalogSettings,
    options: cat.CheckOptions,
    value: str,
    deadline: Deadline,
    log: _Log | None,
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
    log: _Log | None,
) -> dict[str, str]:
    with cat._password_file(cat.POSTGRESQL, settings.password, options.tmpdir) as passfile:
        argv, env = cat._client_call(cat.POSTGRESQL, client, settings, options, passfile)
        try:
            done = run(
                argv,
                deadline=deadline,
                timeout=options.connect_timeout + options.query_timeout + 2,
                env=env,
                input=sql.encode(),
                secrets=[settings.password],
                log=log,
            )
        except CommandTimeout:
            raise GenericError(
                f"catalog {settings.where()} did not answer the replication query in time"
            ) from None
    found = cat._parse(done.stdout)
    if not done.ok:
        found["error"] = cat._client_error(done.stderr, settings.password) or "failed"
    return found


def node_name(meta: Mapping[str, str]) -> str:
    """This node's cluster name: what Pacemaker passes (meta on_node), else the host name."""
    return meta.get("on_node") or os.uname().nodename
