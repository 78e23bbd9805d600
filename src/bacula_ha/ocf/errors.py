"""Errors carrying an OCF status and a reason: agents raise them, only the runner exits."""

from __future__ import annotations

from .status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import ClassVar


class OCFError(Exception):
    """An action's failure: `status` is what the agent exits with, `reason` its exit reason."""

    status: ClassVar[OCFStatus] = OCFStatus.ERR_GENERIC

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class GenericError(OCFError):
    """Something that may work after recovery, later or on another node."""

    status = OCFStatus.ERR_GENERIC


class ArgsError(OCFError):
    """A parameter is invalid on this host (e.g. a path that does not exist here)."""

    status = OCFStatus.ERR_ARGS


class UnimplementedError(OCFError):
    """The action is not implemented by this agent."""

    status = OCFStatus.ERR_UNIMPLEMENTED


class InsufficientPrivilegeError(OCFError):
    """The agent lacks a privilege it needs."""

    status = OCFStatus.ERR_PERM


class NotInstalledError(OCFError):
    """A binary or file the agent needs is missing on this node."""

    status = OCFStatus.ERR_INSTALLED


class NotConfiguredError(OCFError):
    """The configuration can never work anywhere: Pacemaker stops the resource cluster-wide."""

    status = OCFStatus.ERR_CONFIGURED


class NotRunningError(OCFError):
    """The service is cleanly stopped (a monitor's answer, never a stop's)."""

    status = OCFStatus.NOT_RUNNING


class Degraded(OCFError):
    """Running, but not fully healthy: Pacemaker counts it as success and shows it as degraded."""

    status = OCFStatus.DEGRADED
