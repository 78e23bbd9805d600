"""pg_ctl for ocf:heartbeat:pgsql whose start waits for PostgreSQL instead of polling it.

ocf:heartbeat:pgsql starts PostgreSQL with `pg_ctl -W start` (no wait) and then asks it
once a second whether it accepts connections: after a failover the database is ready after
its crash recovery, a few hundred milliseconds, and the agent notices up to a second later.
The generator names this program as the agent's `pgctl` (when the site names `pgctl` and
`psql` in one directory): it runs the `pg_ctl` beside the agent's `psql` with the same
arguments, except that a start waits (`-w`, bounded by the operation's timeout), so the
agent's first check finds the database up. Every other command passes through unchanged.
Installed by `bacula-ha install` into OCF_ROOT/lib/bacula/; standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

NAME = "pg_ctl-wait"
# What a start may wait at most when Pacemaker gives no timeout (pg_ctl's own default).
_DEFAULT_WAIT_S = 60


def real_pg_ctl(env: Mapping[str, str]) -> str | None:
    """The pg_ctl beside the agent's psql (OCF_RESKEY_psql survives the agent's `su`)."""
    psql = env.get("OCF_RESKEY_psql", "")
    if not os.path.isabs(psql):
        return None
    found = os.path.join(os.path.dirname(psql), "pg_ctl")
    return found if os.access(found, os.X_OK) else None


def arguments(args: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """pg_ctl's arguments: a start waits, as long as the start operation may take."""
    if not args or args[-1] != "start":
        return list(args)
    try:
        wait = max(1, int(env.get("OCF_RESKEY_CRM_meta_timeout", "")) // 1000)
    except ValueError:
        wait = _DEFAULT_WAIT_S
    return ["-t", str(wait), *("-w" if a == "-W" else a for a in args)]


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    env = os.environ if env is None else env
    real = real_pg_ctl(env)
    if real is None:
        psql = env.get("OCF_RESKEY_psql") or "unset"
        sys.stderr.write(f"{NAME}: no pg_ctl beside the agent's psql ({psql})\n")
        return 127
    os.execv(real, [real, *arguments(args, env)])
    return 126  # not reached: execv replaces this process or raises
