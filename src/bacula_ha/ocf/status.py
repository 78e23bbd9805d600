"""OCF exit codes, as defined by the OCF resource agent API 1.1 and read by Pacemaker."""

from __future__ import annotations

from enum import IntEnum, unique


@unique
class OCFStatus(IntEnum):
    """Exit codes of an OCF agent (source of truth: OCF-spec ra/1.1/resource-agent-api.md)."""

    SUCCESS = 0
    ERR_GENERIC = 1  # soft: Pacemaker recovers in place
    ERR_ARGS = 2  # hard: "invalid on this host", banned from this node
    ERR_UNIMPLEMENTED = 3
    ERR_PERM = 4
    ERR_INSTALLED = 5  # hard on this node
    ERR_CONFIGURED = (
        6  # fatal: stopped cluster-wide, so only for configurations that can never work
    )
    NOT_RUNNING = 7
    RUNNING_PROMOTED = 8
    FAILED_PROMOTED = 9
    DEGRADED = 190  # success, shown as degraded
    DEGRADED_PROMOTED = 191
