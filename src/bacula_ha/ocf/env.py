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
    ) -> Environment:
        """Parse argv and an environment mapping. Raises ArgsError on malformed meta values."""
        action = argv[1] if len(argv) > 1 else environ.get("__OCF_ACTION", "")
        params: dict[str, str] = {}
        meta: dict[str, str] = {}
        for key, value in environ.items():
            if key.startswith(_META_PREFIX):
                meta[key[len(_META_PREFIX) :]] = value
            elif key.startswith(_PARAM_PREFIX) and not key.startswith("OCF_RESKEY_CRM_"):
                params[key[len(_PARAM_PREFIX) :]] = value
        timeout_ms = _milliseconds(meta, "timeout", default_timeout_ms)
        interval_ms = _milliseconds(meta, "interval", 0)
        if action != "monitor":
            interval_ms = 0
        requested = environ.get("OCF_CHECK_LEVEL", "") or "0"
        try:
            level = int(requested)
        except ValueError:
            raise ArgsError(f"OCF_CHECK_LEVEL={requested!r} is not a number") from None
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
        )

    @classmethod
    def current(cls, depths: Sequence[int] = (0,)) -> Environment:
        import sys

        return cls.from_mapping(sys.argv, os.environ, depths=depths)


def effective_depth(requested: int, supported: Sequence[int]) -> int:
    """The deepest supported level not above the requested one (OCF: fall back to a lower one)."""
    candidates = [level for level in supported if level <= requested]
    return max(candidates) if candidates else min(supported, default=0)


def _milliseconds(meta: Mapping[str, str], key: str, default: int) -> int:
    raw = meta.get(key, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ArgsError(f"CRM_meta_{key}={raw!r} is not a number of milliseconds") from None
    if value < 0:
        raise ArgsError(f"CRM_meta_{key}={raw!r} is negative")
    return value
