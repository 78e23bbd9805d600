"""Agent name -> module: the one list of agents, for the installer and the generator."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..ocf.metadata import MetaData

AGENT_MODULES: dict[str, str] = {
    "bacula-dir": "bacula_ha.agents.director",
    "bacula-sd": "bacula_ha.agents.storage",
    "bacula-fd": "bacula_ha.agents.filedaemon",
    "bacula-catalog": "bacula_ha.agents.catalog",
    "bacula-confsync": "bacula_ha.agents.confsync",
}


def available() -> list[str]:
    """The agents whose module exists in this installation."""
    found = []
    for name, module in AGENT_MODULES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        found.append(name)
    return found


def metadata(name: str) -> MetaData:
    """The meta-data of agent `name`; KeyError for an unknown or not yet built agent."""
    module_name = AGENT_MODULES[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise KeyError(name) from None
    result: MetaData = module.AGENT.metadata
    return result
