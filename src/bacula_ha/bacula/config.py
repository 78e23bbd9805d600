"""A Bacula daemon's configuration, read with Bacula's own parser (bdirjson, bsdjson, bfdjson)."""

from __future__ import annotations

from collections.abc import Mapping

from ..ocf.deadline import Deadline
from ..ocf.errors import NotConfiguredError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Any
else:
    from ..ocf.record import dataclass


# Bacula's parser prints every password in clear text: nothing read here is ever logged,
# and the raw output never leaves this module.


@dataclass(frozen=True)
class Resources:
    """The parsed configuration: resources by type, each a mapping of directive to value."""

    path: str
    by_type: Mapping[str, tuple[Mapping[str, Any], ...]]

    def all(self, kind: str) -> tuple[Mapping[str, Any], ...]:
        return self.by_type.get(kind, ())

    def first(self, kind: str) -> Mapping[str, Any]:
        found = self.all(kind)
        if not found:
            raise NotConfiguredError(f"{self.path} has no {kind} resource")
        return found[0]


def json_tool_for(binary: str, tool: str) -> str:
    """bdirjson & co. live beside the daemon; fall back to Debian's location."""
    from .layout import tool_beside

    return tool_beside(binary, tool)


def load(tool: str, config: str, deadline: Deadline, timeout: float = 10.0) -> Resources:
    """Parse `config` with `tool`. A file Bacula rejects is NotConfiguredError (6), one that is
    absent here NotInstalledError (5), a parser that does not finish GenericError (1)."""
    from .configtest import parse

    verdict = parse(tool, config, deadline, timeout)
    if not verdict.accepted:
        raise verdict.error(config)
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for entry in verdict.entries:
        for kind, body in entry.items():
            if isinstance(body, dict):
                by_type.setdefault(kind, []).append(body)
    return Resources(config, {k: tuple(v) for k, v in by_type.items()})
