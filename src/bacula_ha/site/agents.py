"""What the site reader checks agent parameters against: our agents' meta-data, and two tables.

The `ocf:bacula:*` agents' parameter names and value rules come from the agents' own meta-data
(`bacula_ha.agents.registry`), never from a second copy: that lookup, imported inside the
function so that only a run that reads a site pays for loading the agents, is the site package's
one import beyond `bacula_ha.ocf`. ocf:pacemaker:ping and fence_heuristics_ping are not ours:
their parameter names are listed here.
"""

from __future__ import annotations

from functools import cache

from bacula_ha.ocf.metadata import MetaData

from .errors import AgentUnavailableError

# ocf:pacemaker:ping's parameters (Pacemaker 2.1.5): the site's connectivity.params are checked
# against them, a typo there would silently leave the agent's default in place.
PING_PARAMETERS = frozenset(
    {
        "pidfile",
        "dampen",
        "name",
        "multiplier",
        "host_list",
        "attempts",
        "timeout",
        "options",
        "failure_score",
        "use_fping",
        "debug",
    }
)
# fence_heuristics_ping (fence-agents 4.12), `-o metadata`: its own options and the common ones
# of every fence agent; Pacemaker's pcmk_* device parameters are accepted besides.
HEURISTICS_PARAMETERS = frozenset(
    {
        "action",
        "method",
        "ping_count",
        "ping_good_count",
        "ping_interval",
        "ping_maxfail",
        "ping_targets",
        "ping_timeout",
        "quiet",
        "verbose",
        "verbose_level",
        "debug_file",
        "plug_separator",
        "delay",
        "disable_timeout",
        "login_timeout",
        "power_timeout",
        "power_wait",
        "shell_timeout",
        "stonith_status_sleep",
        "retry_on",
    }
)


@cache
def metadata(agent: str) -> MetaData:
    """The meta-data of our agent `agent`, from the agent registry."""
    from bacula_ha.agents import registry

    try:
        return registry.metadata(agent)
    except KeyError:
        raise AgentUnavailableError(
            f"agent {agent} is not available in this installation"
        ) from None


@cache
def parameters(agent: str) -> frozenset[str]:
    """The parameter names our agent `agent` declares."""
    return frozenset(p.name for p in metadata(agent).parameters)


def value_problem(agent: str, name: str, value: str) -> str | None:
    """What is wrong with `value` for parameter `name` of our agent `agent`, by the rules its
    meta-data declares (type, bounds, choices, absolute path, the parameter's own rule): the
    very check the agent's runner makes (`ocf.params.check`), so a value generate lets into the
    CIB is never the agent's 6 on the cluster. None when fine or `name` is not declared."""
    from bacula_ha.ocf import params
    from bacula_ha.ocf.errors import NotConfiguredError

    declared = {p.name: p for p in metadata(agent).parameters}
    if name not in declared:
        return None
    try:
        params.check(declared[name], value)
    except NotConfiguredError as exc:
        if declared[name].is_secret:
            return "is not a valid value (not shown: the parameter is secret)"
        # "parameter job_wait='abc' is not an integer": the field already names it.
        return exc.reason.removeprefix("parameter ")
    return None
