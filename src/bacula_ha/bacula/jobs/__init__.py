"""Jobs across a failover: the package's public face, for the director agent, status and tests."""

# Which module answers which question:
#   policy     the director's parameters for jobs: declared (meta-data), parsed once into a Policy
#   ledger     the record in the catalog (bacula_ha_rerun, bacula_ha_alive), its SQL per server
#   bringback  a start's two phases: record what was interrupted, then bring each back once
#   catchup    scheduled runs an outage made Bacula skip, run late once
# The agent's own side (when each runs, within which share of its deadline) is in
# agents/director_jobs.py.

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .bringback import adopted, bring_back, queued_job_id, record_interrupted, restart_command
    from .catchup import SCHEDULER_GRACE, catch_up, missed_runs
    from .ledger import (
        ALIVE_TABLE,
        CLEANED_AT_START,
        FINAL,
        TABLE,
        CatalogError,
        Entry,
        Job,
        Ledger,
        create_alive,
        ledger_for,
        sql,
    )
    from .policy import (
        MODES,
        PARAMETERS,
        TYPE_NAMES,
        Policy,
        decide,
        parse_policy,
        policy_from,
        type_letters,
    )

# Loaded on first use (PEP 562): the director agent needs only `policy` on every action, and
# a probe must not pay for the ledger's SQL or the phases of a start it never runs.
_MODULES = {
    "bringback": (
        "adopted",
        "bring_back",
        "queued_job_id",
        "record_interrupted",
        "restart_command",
    ),
    "catchup": ("SCHEDULER_GRACE", "catch_up", "missed_runs"),
    "ledger": (
        "ALIVE_TABLE",
        "CLEANED_AT_START",
        "FINAL",
        "TABLE",
        "CatalogError",
        "Entry",
        "Job",
        "Ledger",
        "create_alive",
        "ledger_for",
        "sql",
    ),
    "policy": (
        "MODES",
        "PARAMETERS",
        "TYPE_NAMES",
        "Policy",
        "decide",
        "parse_policy",
        "policy_from",
        "type_letters",
    ),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}
__all__ = [
    "ALIVE_TABLE",
    "CLEANED_AT_START",
    "FINAL",
    "MODES",
    "PARAMETERS",
    "SCHEDULER_GRACE",
    "TABLE",
    "TYPE_NAMES",
    "CatalogError",
    "Entry",
    "Job",
    "Ledger",
    "Policy",
    "adopted",
    "bring_back",
    "catch_up",
    "create_alive",
    "decide",
    "ledger_for",
    "missed_runs",
    "parse_policy",
    "policy_from",
    "queued_job_id",
    "record_interrupted",
    "restart_command",
    "sql",
    "type_letters",
]


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import sys

    __import__(f"{__name__}.{module}")
    return getattr(sys.modules[f"{__name__}.{module}"], name)
