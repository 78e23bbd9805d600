"""A Bacula daemon's configuration, read with Bacula's own parser (bdirjson, bsdjson, bfdjson)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError, NotConfiguredError, NotInstalledError

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
    beside = os.path.join(os.path.dirname(binary) or "/usr/sbin", tool)
    return beside if os.access(beside, os.X_OK) else os.path.join("/usr/sbin", tool)


def load(tool: str, config: str, deadline: Deadline, timeout: float = 10.0) -> Resources:
    """Parse `config` with `tool`. A file Bacula rejects is NotConfiguredError (6)."""
    import json

    from ..ocf.command import run

    if not os.path.isfile(config):
        raise NotInstalledError(f"configuration {config} does not exist on this node")
    result = run([tool, "-c", config], deadline=deadline, timeout=timeout)
    if not result.ok:
        raise NotConfiguredError(f"{config}: {config_error(result.stdout + result.stderr)}")
    try:
        entries: Sequence[Mapping[str, Any]] = json.loads(result.stdout)
    except ValueError:
        raise GenericError(f"{os.path.basename(tool)} printed no JSON for {config}") from None
    by_type: dict[str, list[Mapping[str, Any]]] = {}
    for entry in entries:
        for kind, body in entry.items():
            by_type.setdefault(kind, []).append(body)
    return Resources(config, {k: tuple(v) for k, v in by_type.items()})


def config_error(output: str) -> str:
    """The useful line of a Bacula configuration error (its parser prints several)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for marker in ("Config error:", "ERR=", "Could not", "Cannot", "Error"):
        for line in lines:
            if marker in line:
                return line[line.find(marker) :]
    return lines[-1] if lines else "rejected by Bacula's parser"
