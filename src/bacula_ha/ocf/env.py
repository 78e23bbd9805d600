"""The OCF environment of one action, read once into a typed, frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from .deadline import Deadline
from .errors import ArgsError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from .record import dataclass

_PARAM_PREFIX = "OCF_RESKEY_"
_META_PREFIX = "OCF_RESKEY_CRM_meta_"
DEFAULT_EXIT_REASON_PREFIX = "ocf-exit-reason:"
# Pacemaker always passes a timeout; a tool or an admin by hand may not.
DEFAULT_TIMEOUT_MS = 20_000
# Bounds of the numbers Pacemaker passes: a week is longer than any sane action timeout or
# interval, and keeps every deadline computation finite.
MAX_MS = 7 * 86400 * 1000
MAX_LEVEL = 1000


@dataclass(frozen=True)
class Environment:
    """What Pacemaker (or ocf-tester, or an admin) handed to this invocation."""

    action: str
    params: Mapping[str, str]
    meta: Mapping[str, str]
    instance: str
    interval_ms: int
    timeout_ms: int
    depth: int  # the OCF_CHECK_LEVEL this agent will honour (see `effective_depth`)
    deadline: Deadline
    rsctmp: str
    exit_reason_prefix: str
    # What was malformed and replaced by its default (only when parsed leniently, for stop).
    problems: tuple[str, ...] = ()
    # What follows the action on the command line (an admin action's operands).
    args: tuple[str, ...] = ()

    @property
    def is_probe(self) -> bool:
        """A probe is a monitor without an interval: Pacemaker leaves the interval unset or 0."""
        return self.action == "monitor" and self.interval_ms == 0

    def param(self, name: str, default: str = "") -> str:
        """A parameter's value; unset and empty both mean the default, as in ocf-shellfuncs."""
        value = self.params.get(name, "")
        return value if value != "" else default

    @classmethod
    def from_mapping(
        cls,
        argv: Sequence[str],
        environ: Mapping[str, str],
        *,
        depths: Sequence[int] = (0,),
        default_timeout_ms: int = DEFAULT_TIMEOUT_MS,
        lenient: bool = False,
    ) -> Environment:
        """Parse argv and an environment mapping.

        A malformed or out-of-range number raises ArgsError, or, when `lenient` (a stop, which
        must not fail over a bad timeout), falls back to its default and is listed in
        `problems`.
        """
        action = argv[1] if len(argv) > 1 else environ.get("__OCF_ACTION", "")
        params: dict[str, str] = {}
        meta: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith(_META_PREFIX):
                meta[key[len(_META_PREFIX) :]] = value
            elif key.startswith(_PARAM_PREFIX) and not key.startswith("OCF_RESKEY_CRM_"):
                params[key[len(_PARAM_PREFIX) :]] = value
        problems: list[str] = []

        def number(name: str, raw: str, default: int, high: int) -> int:
            # ASCII digits only: int() also reads '٣٠' as 30, and '²' passes isdigit().
            if raw == "":
                return default
            if raw.isascii() and raw.isdigit() and int(raw) <= high:
                return int(raw)
            problem = f"{name}={raw[:24]!r} is not a whole number from 0 to {high}"
            if not lenient:
                raise ArgsError(problem)
            problems.append(problem)
            return default

        timeout_ms = number("CRM_meta_timeout", meta.get("timeout", ""), default_timeout_ms, MAX_MS)
        interval_ms = number("CRM_meta_interval", meta.get("interval", ""), 0, MAX_MS)
        if action != "monitor":
            interval_ms = 0
        level = number("OCF_CHECK_LEVEL", environ.get("OCF_CHECK_LEVEL", ""), 0, MAX_LEVEL)
        instance = environ.get("OCF_RESOURCE_INSTANCE", "") or "default"
        rsctmp = environ.get("HA_RSCTMP", "") or "/run/resource-agents"
        return cls(
            action=action,
            params=params,
            meta=meta,
            instance=instance,
            interval_ms=interval_ms,
            timeout_ms=timeout_ms,
            depth=effective_depth(level, depths),
            deadline=Deadline.after(timeout_ms / 1000.0),
            rsctmp=rsctmp,
            exit_reason_prefix=environ.get("OCF_EXIT_REASON_PREFIX", "")
            or DEFAULT_EXIT_REASON_PREFIX,
            problems=tuple(problems),
            args=tuple(argv[2:]),
        )

    @classmethod
    def current(cls, depths: Sequence[int] = (0,)) -> Environment:
        import sys

        return cls.from_mapping(sys.argv, os.environ, depths=depths)


def effective_depth(requested: int, supported: Sequence[int]) -> int:
    """The deepest supported level not above the requested one (OCF: fall back to a lower one)."""
    candidates = [level for level in supported if level <= requested]
    return max(candidates) if candidates else min(supported, default=0)
