"""The one runner of every agent: meta-data, validation, dispatch, shared rules, exit reason."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from .agent import Agent, Handler
from .env import DEFAULT_EXIT_REASON_PREFIX, Environment
from .errors import OCFError, UnimplementedError
from .log import Logger, scrub
from .params import check_all
from .status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# Pacemaker keeps only the last exit-reason line and cuts it at this length.
MAX_REASON = 128
_STANDARD = ("start", "stop", "monitor", "validate-all")
# A probe or a stop may find the node without what the resource needs (a binary, a file on
# storage mounted elsewhere): then nothing of ours can be running here.
_ABSENT = (OCFStatus.ERR_INSTALLED, OCFStatus.ERR_ARGS)
_SUCCESSES = (OCFStatus.SUCCESS, OCFStatus.RUNNING_PROMOTED)
_DEGRADED = (OCFStatus.DEGRADED, OCFStatus.DEGRADED_PROMOTED)


def main(
    agent: Agent[Any],
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run one action of `agent` and return its exit code; never raises."""
    argv = sys.argv if argv is None else argv
    environ = os.environ if environ is None else environ
    action = argv[1] if len(argv) > 1 else environ.get("__OCF_ACTION", "")
    name = agent.metadata.name

    # Answered before anything can fail: Pacemaker, pcs and ocf-tester ask as any user, with
    # an empty environment, on nodes where Bacula is not installed.
    if action == "meta-data":
        sys.stdout.write(agent.metadata.render())
        return OCFStatus.SUCCESS
    if action in ("usage", "help", "-h", "--help"):
        sys.stdout.write(usage(agent))
        return OCFStatus.SUCCESS

    # The last line of defence: whatever an agent or a tool it ran put into a message, the
    # values of the resource's secret parameters never reach the log or the exit reason.
    secrets = tuple(
        value
        for p in agent.metadata.parameters
        if p.is_secret and (value := environ.get(f"OCF_RESKEY_{p.name}", ""))
    )
    log = Logger.from_environ(name, environ, secrets)
    prefix = scrub(environ.get("OCF_EXIT_REASON_PREFIX", "") or DEFAULT_EXIT_REASON_PREFIX)
    status, reason = _run(agent, action, argv, environ, log)
    failed = status not in _SUCCESSES and not (
        status == OCFStatus.NOT_RUNNING and action == "monitor"
    )
    if failed and not reason:
        reason = f"{action or 'no action'} failed: {_status_name(status)}"
    reason = " ".join(scrub(reason, secrets).split())[:MAX_REASON]
    if action == "monitor" and status in (OCFStatus.SUCCESS, OCFStatus.NOT_RUNNING):
        level = "debug"
    elif failed:
        level = "warning" if status in _DEGRADED else "error"
    else:
        level = "info"
    log.log(
        level,
        f"{action or '(no action)'}: {_status_name(status)}" + (f": {reason}" if reason else ""),
    )
    if reason and status != OCFStatus.SUCCESS:
        sys.stderr.write(f"{prefix}{reason}\n")
        sys.stderr.flush()
    return int(status)


def _run(
    agent: Agent[Any],
    action: str,
    argv: Sequence[str],
    environ: Mapping[str, str],
    log: Logger,
) -> tuple[int, str]:
    try:
        handler = _handler(agent, action)
        declared = agent.metadata.action(action)
        env = Environment.from_mapping(
            argv,
            environ,
            depths=agent.depths,
            default_timeout_ms=(declared.timeout if declared else 20) * 1000,
            lenient=action == "stop",
        )
    except OCFError as exc:
        return exc.status, exc.reason
    for problem in env.problems:
        log.warning(f"{problem}: using the default")

    try:
        config = None
        try:
            # The rules the meta-data declares (type, bounds, choices, absolute paths, a
            # parameter's own rule) before the agent's own checks: the same words as
            # `bacula-ha generate`, which checks a site's values with them.
            check_all(agent.metadata.parameters, env.params)
            config = agent.configure(env, log)
            agent.validate(config, env, log)
        except OCFError as exc:
            if action == "stop":
                # A stop that fails gets the node fenced: with broken parameters, stop
                # succeeds when the agent can tell that nothing of its own is running.
                log.warning(f"stopping with unusable parameters: {exc.reason}")
                if config is not None:
                    return _result(agent.stop_unvalidated(config, env, log, exc.reason)), ""
                return _result(agent.stop_unconfigured(env, log, exc.reason)), ""
            if env.is_probe and exc.status in _ABSENT:
                log.debug(f"probe: {exc.reason}: not running here")
                return OCFStatus.NOT_RUNNING, ""
            raise
        if action == "validate-all":
            return _result(agent.validate_all(config, env, log)), ""
        status = _result(handler(config, env, log))
    except OCFError as exc:
        status, reason = exc.status, exc.reason
        if action == "stop" and status == OCFStatus.NOT_RUNNING:
            return OCFStatus.SUCCESS, ""
        return status, reason
    except Exception as exc:  # the agent's bug: keep it out of Pacemaker's way, but say so
        import traceback

        for line in traceback.format_exc().splitlines():
            log.error(line)
        if action == "stop":
            # A failed stop gets the node fenced: try the stop that needs nothing parsed.
            try:
                return _result(agent.stop_unconfigured(env, log, f"{type(exc).__name__}")), ""
            except Exception:
                pass
        return OCFStatus.ERR_GENERIC, f"internal error: {type(exc).__name__}: {exc}"
    if action == "stop" and status == OCFStatus.NOT_RUNNING:
        status = OCFStatus.SUCCESS  # stop never returns 7
    return status, ""


def _handler(agent: Agent[Any], action: str) -> Handler[Any]:
    standard: dict[str, Handler[Any]] = {
        "start": agent.start,
        "stop": agent.stop,
        "monitor": agent.monitor,
        "validate-all": agent.validate_all,
    }
    handler = standard.get(action) or agent.extra_actions().get(action)
    if handler is None:
        raise UnimplementedError(f"unknown action {action!r}" if action else "no action given")
    return handler


def _result(value: OCFStatus | int | None) -> int:
    return OCFStatus.SUCCESS if value is None else int(value)


def _status_name(status: int) -> str:
    try:
        return OCFStatus(status).name
    except ValueError:
        return str(status)


def usage(agent: Agent[Any]) -> str:
    actions = [*_STANDARD, *agent.extra_actions(), "meta-data"]
    return f"usage: {agent.metadata.name} {{{'|'.join(actions)}}}\n"
