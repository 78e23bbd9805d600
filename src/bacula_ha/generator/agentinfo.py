"""What the generator knows of agents: ours from their meta-data, third-party ones from a table.

Parameter names, defaults and operation timeouts of the `ocf:bacula:*` agents come from the agents'
own meta-data (`bacula_ha.site.agents`, from the agent registry), never from a second copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from bacula_ha.ocf.metadata import MetaData

from ..site import agents

BACULA_AGENTS = ("bacula-dir", "bacula-sd", "bacula-fd", "bacula-catalog", "bacula-confsync")


@dataclass(frozen=True)
class OpDefault:
    """A default operation: name, interval and timeout in seconds, role, depth (OCF_CHECK_LEVEL)."""

    name: str
    interval: int
    timeout: int
    role: str | None = None
    depth: int | None = None


@dataclass(frozen=True)
class AgentInfo:
    """An agent as the generator uses it."""

    spec: str  # class:provider:type
    parameters: frozenset[str] | None  # None: free-form (the agent is not ours to check)
    required: frozenset[str]
    ops: tuple[OpDefault, ...]


def _from_metadata(meta: MetaData) -> AgentInfo:
    ops: list[OpDefault] = []
    for name in ("start", "stop"):
        action = meta.action(name)
        ops.append(OpDefault(name, 0, action.timeout if action else 60))
    monitors = sorted(
        (a for a in meta.actions if a.name == "monitor" and a.interval),
        key=lambda a: (a.depth or 0, a.interval or 0),
    )
    # Every monitor the agent advertises, each on its own interval: the shallowest (the frequent
    # one) is "monitor", the deepest "deep_monitor", any in between "monitor_<depth>".
    for index, m in enumerate(monitors):
        if index == 0:
            name = "monitor"
        elif index == len(monitors) - 1:
            name = "deep_monitor"
        else:
            name = f"monitor_{m.depth or 0}"
        ops.append(OpDefault(name, m.interval or 30, m.timeout, None, m.depth or None))
    if not monitors:
        ops.append(OpDefault("monitor", 30, 30))
    return AgentInfo(
        spec=f"ocf:bacula:{meta.name}",
        parameters=frozenset(p.name for p in meta.parameters),
        required=frozenset(p.name for p in meta.parameters if p.required),
        ops=tuple(ops),
    )


def _third_party(spec: str, *ops: OpDefault) -> AgentInfo:
    return AgentInfo(spec=spec, parameters=None, required=frozenset(), ops=ops)


_START_STOP = (OpDefault("start", 0, 60), OpDefault("stop", 0, 60))

# Third-party agents: not ours, so their parameters are passed through unchecked here (pcs checks
# them against the installed agent). Timeouts follow the agents' own recommendations.
_THIRD_PARTY: dict[str, AgentInfo] = {
    "vip": _third_party(
        "ocf:heartbeat:IPaddr2",
        OpDefault("start", 0, 20),
        OpDefault("stop", 0, 20),
        OpDefault("monitor", 10, 20),
    ),
    "filesystem": _third_party(
        "ocf:heartbeat:Filesystem",
        *_START_STOP,
        OpDefault("monitor", 20, 40),
    ),
    "drbd": _third_party(
        "ocf:linbit:drbd",
        OpDefault("start", 0, 240),
        OpDefault("stop", 0, 100),
        OpDefault("promote", 0, 90),
        OpDefault("demote", 0, 90),
        OpDefault("notify", 0, 90),
        OpDefault("monitor_promoted", 29, 20, "Promoted"),
        OpDefault("monitor_unpromoted", 31, 20, "Unpromoted"),
    ),
    "pgsql": _third_party(
        "ocf:heartbeat:pgsql",
        OpDefault("start", 0, 120),
        OpDefault("stop", 0, 120),
        OpDefault("monitor", 30, 30),
    ),
    "pgsql-replicated": _third_party(
        "ocf:heartbeat:pgsql",
        OpDefault("start", 0, 120),
        OpDefault("stop", 0, 120),
        OpDefault("promote", 0, 120),
        OpDefault("demote", 0, 120),
        OpDefault("notify", 0, 90),
        OpDefault("monitor_promoted", 9, 60, "Promoted"),
        OpDefault("monitor_unpromoted", 10, 60, "Unpromoted"),
    ),
    "pgsqlms": _third_party(
        "ocf:heartbeat:pgsqlms",
        OpDefault("start", 0, 60),
        OpDefault("stop", 0, 60),
        OpDefault("promote", 0, 30),
        OpDefault("demote", 0, 120),
        OpDefault("notify", 0, 60),
        OpDefault("monitor_promoted", 15, 10, "Promoted"),
        OpDefault("monitor_unpromoted", 16, 10, "Unpromoted"),
    ),
    "mysql": _third_party(
        "ocf:heartbeat:mysql",
        OpDefault("start", 0, 120),
        OpDefault("stop", 0, 120),
        OpDefault("monitor", 20, 30),
    ),
    "fence": _third_party("stonith:", OpDefault("monitor", 60, 20)),
    # Pacemaker's own meta-data: start/stop 60s; monitor 30s as the connection's health.
    "remote": _third_party(
        "ocf:pacemaker:remote",
        OpDefault("start", 0, 60),
        OpDefault("stop", 0, 60),
        OpDefault("monitor", 30, 30),
    ),
    "extra": _third_party("", *_START_STOP, OpDefault("monitor", 30, 30)),
    # ocf:pacemaker:ping's meta-data (Pacemaker 2.1.5): start 60s, stop 20s, monitor every 10s
    # with 60s to answer. Its parameters are the site reader's list (site/agents.py).
    "connectivity": AgentInfo(
        spec="ocf:pacemaker:ping",
        parameters=agents.PING_PARAMETERS,
        required=frozenset({"host_list"}),
        ops=(OpDefault("start", 0, 60), OpDefault("stop", 0, 20), OpDefault("monitor", 10, 60)),
    ),
    # fence_heuristics_ping (fence-agents 4.12): its parameters are the site reader's list.
    "heuristics": AgentInfo(
        spec="stonith:fence_heuristics_ping",
        parameters=agents.HEURISTICS_PARAMETERS,
        required=frozenset({"ping_targets"}),
        ops=(OpDefault("monitor", 60, 20),),
    ),
}


def third_party(kind: str) -> AgentInfo:
    """Defaults of a non-Bacula agent kind (vip, filesystem, drbd, pgsql, connectivity, ...)."""
    return _THIRD_PARTY[kind]


@cache
def bacula(agent: str) -> AgentInfo:
    """One of our agents, from its meta-data."""
    return _from_metadata(agents.metadata(agent))
