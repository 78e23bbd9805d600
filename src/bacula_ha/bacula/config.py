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


def config_sources(config: str, limit: int = 64) -> list[str] | None:
    """The file and every file it @-includes (recursively), or None when the set cannot be
    known from the text (a wildcard or a `@|command` include)."""
    import re

    found: list[str] = []
    pending = [config]
    while pending:
        path = pending.pop()
        if path in found:
            continue
        if len(found) >= limit:
            return None
        found.append(path)
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return None
        # Bacula's lexer takes `@file` (or `@"file"`) wherever a token may start.
        for match in re.finditer(r'(?:^|[\s;{}=])@("([^"]*)"|(\S+))', text):
            target = match.group(2) if match.group(2) is not None else match.group(3)
            if not target or target.startswith("|") or any(c in target for c in "*?["):
                return None
            if not os.path.isabs(target):
                target = os.path.join(os.path.dirname(config), target)
            pending.append(target)
    return found


def signature(paths: Sequence[str]) -> dict[str, list[int]] | None:
    """What tells a file changed: inode, size and modification time (None: one is missing)."""
    result: dict[str, list[int]] = {}
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        result[path] = [st.st_ino, st.st_size, st.st_mtime_ns]
    return result
