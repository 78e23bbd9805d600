"""Per-instance state under HA_RSCTMP (a tmpfs emptied at boot), written atomically."""

from __future__ import annotations

import os

from .env import Environment

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class StateFile:
    """A small JSON document owned by one resource instance on this node (mode 0600)."""

    def __init__(self, env: Environment, agent: str) -> None:
        safe = env.instance.replace("/", "_")
        self.path = os.path.join(env.rsctmp, "bacula-ha", f"{agent}-{safe}.json")

    def read(self) -> dict[str, Any] | None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            return None
        import json  # only when there is something to parse: a probe after boot finds nothing

        try:
            data = json.loads(text)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def write(self, data: dict[str, Any]) -> None:
        import json

        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, self.path)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
