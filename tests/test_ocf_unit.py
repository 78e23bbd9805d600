"""Unit tests of the OCF library: environment, depths, runner rules, exit reasons, meta-data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

import pytest

from bacula_ha.ocf import params as P
from bacula_ha.ocf.agent import Agent
from bacula_ha.ocf.deadline import Deadline
from bacula_ha.ocf.env import Environment, effective_depth
from bacula_ha.ocf.errors import (
    ArgsError,
    GenericError,
    NotConfiguredError,
    NotInstalledError,
    NotRunningError,
)
from bacula_ha.ocf.log import Logger
from bacula_ha.ocf.metadata import Action, MetaData, Parameter
from bacula_ha.ocf.process import Identity, is_alive, read_pidfile, terminate, wait_until
from bacula_ha.ocf.runner import main
from bacula_ha.ocf.status import OCFStatus


def test_status_codes_match_the_spec() -> None:
    assert [int(s) for s in OCFStatus] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 190, 191]


def test_environment_reads_params_meta_and_action() -> None:
    env = Environment.from_mapping(
        ["agent", "monitor"],
        {
            "OCF_RESKEY_config": "/etc/x conf",
            "OCF_RESKEY_CRM_meta_timeout": "5000",
            "OCF_RESKEY_CRM_meta_interval": "10000",
            "OCF_RESOURCE_INSTANCE": "dir1",
            "OCF_CHECK_LEVEL": "15",
        },
        depths=(0, 10, 20),
    )
    assert env.action == "monitor"
    assert env.params == {"config": "/etc/x conf"}
    assert env.meta["timeout"] == "5000"
    assert env.instance == "dir1"
    assert not env.is_probe
    assert env.depth == 10  # 15 falls back to the next lower supported level
    assert 4.0 < env.deadline.remaining() <= 5.0


def test_action_from_ocf_action_variable_and_probe_detection() -> None:
    env = Environment.from_mapping(["agent"], {"__OCF_ACTION": "monitor"})
    assert env.action == "monitor" and env.is_probe
    env = Environment.from_mapping(["agent", "monitor"], {"OCF_RESKEY_CRM_meta_interval": "0"})
    assert env.is_probe
    assert Environment.from_mapping(["agent", "start"], {}).is_probe is False


@pytest.mark.parametrize(
    ("requested", "supported", "expected"),
    [
        (0, (0, 10, 20), 0),
        (10, (0, 10, 20), 10),
        (25, (0, 10, 20), 20),
        (20, (0, 10), 10),
        (5, (0, 10), 0),
    ],
)
def test_effective_depth(requested: int, supported: tuple[int, ...], expected: int) -> None:
    assert effective_depth(requested, supported) == expected


@pytest.mark.parametrize("bad", ["abc", "-1", "1.5"])
def test_malformed_timeout_is_an_args_error(bad: str) -> None:
    with pytest.raises(ArgsError):
        Environment.from_mapping(["a", "start"], {"OCF_RESKEY_CRM_meta_timeout": bad})


def test_param_parsers() -> None:
    assert P.is_true("YES") and P.is_true("1") and not P.is_true("no")
    assert P.port("port", "") is None and P.port("port", "9101") == 9101
    for bad in ("abc", "0", "70000", "91 01"):
        with pytest.raises(NotConfiguredError):
            P.port("port", bad)
    assert P.seconds("t", "1500ms") == 1.5 and P.seconds("t", "2min") == 120
    with pytest.raises(NotConfiguredError):
        P.seconds("t", "soon")
    with pytest.raises(NotConfiguredError):
        P.absolute_path("config", "relative/path")


def _every_parameter() -> list[tuple[str, Parameter]]:
    from bacula_ha.agents import registry

    return [
        (agent, p) for agent in registry.AGENT_MODULES for p in registry.metadata(agent).parameters
    ]


@pytest.mark.parametrize(
    ("agent", "param"),
    [
        pytest.param(a, p, id=f"{a}-{p.name}")
        for a, p in _every_parameter()
        if p.content_type == "integer"
    ],
)
def test_every_integer_parameter_takes_the_integer_rule(agent: str, param: Parameter) -> None:
    """The rule its meta-data type names: ASCII digits within the declared bounds, nothing
    else (check_timeout=3.5 was accepted by bacula-sd and bacula-fd, refused by the director)."""
    for bad in ("3.5", "5s", "x", "\u00b2", "\u0661", "1e3", "0x10", str(param.high + 1)):
        with pytest.raises(NotConfiguredError, match=param.name):
            P.check(param, bad)
    for good in (str(param.low), str(param.high), param.default or ""):
        P.check(param, good)
    if param.default:
        assert P.integer_of(param, "") == int(param.default)
    assert P.integer_of(param, str(param.low)) == param.low


@pytest.mark.parametrize(("agent", "param"), [(a, p) for a, p in _every_parameter()])
def test_every_default_passes_its_own_rules(agent: str, param: Parameter) -> None:
    P.check(param, param.default or "")


def test_integer_of_refuses_another_type() -> None:
    with pytest.raises(TypeError):
        P.integer_of(Parameter("name", "s", "l"), "5")


@pytest.mark.parametrize("agent", ["bacula-dir", "bacula-sd", "bacula-fd"])
def test_a_fractional_check_timeout_is_6_before_anything_else(
    agent: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """The runner checks the declared rules first: no binary nor file is looked at."""
    from bacula_ha.agents import registry

    module = __import__(registry.AGENT_MODULES[agent], fromlist=["AGENT"])
    environ = {"OCF_RESKEY_check_timeout": "3.5", "HA_LOGFACILITY": "none"}
    for action in ("validate-all", "start", "monitor"):
        assert main(module.AGENT, ["x", action], environ) == OCFStatus.ERR_CONFIGURED
        assert "ocf-exit-reason:parameter check_timeout='3.5' is not an integer" in (
            capsys.readouterr().err
        )
    # A stop with broken parameters still succeeds (nothing of it runs).
    assert main(module.AGENT, ["x", "stop"], {**environ, "HA_RSCTMP": "/nonexistent"}) == 0


def test_check_applies_choices_paths_and_rules() -> None:
    seen: list[str] = []

    def rule(value: str) -> None:
        seen.append(value)
        if value == "bad":
            raise NotConfiguredError("bad is bad")

    p = Parameter("p", "s", "l", choices=("a", "b", "bad"), rule=rule)
    P.check(p, "a")
    with pytest.raises(NotConfiguredError, match="not one of: a, b, bad"):
        P.check(p, "c")
    with pytest.raises(NotConfiguredError, match="bad is bad"):
        P.check(p, "bad")
    P.check(p, "")  # the default: the agent's to choose
    assert seen == ["a", "bad"]
    with pytest.raises(NotConfiguredError, match="absolute path"):
        P.check(Parameter("f", "s", "l", absolute=True), "relative.conf")
    with pytest.raises(NotConfiguredError, match="not a boolean"):
        P.check(Parameter("b", "s", "l", "boolean"), "maybe")


# -- the runner's shared rules -------------------------------------------------------------
MD = MetaData(
    name="toy",
    version="1.0",
    shortdesc="toy <agent> & co",
    longdesc="quotes \" and ' and <tags> & ampersands",
    parameters=(Parameter("state", "state file", "where", default="/nonexistent"),),
    actions=(
        Action("start", 20),
        Action("stop", 20),
        Action("monitor", 20, 10, 0),
        Action("validate-all", 20),
        Action("meta-data", 5),
    ),
)


class Toy(Agent[str]):
    metadata = MD

    def __init__(self, error: Exception | None = None) -> None:
        self.error = error
        self.calls: list[str] = []

    def configure(self, env: Environment, log: Logger) -> str:
        if env.param("state") == "broken":
            raise NotConfiguredError("state is broken")
        return env.param("state", "/nonexistent")

    def validate(self, config: str, env: Environment, log: Logger) -> None:
        if config == "/missing":
            raise NotInstalledError("binary missing")

    def start(self, config: str, env: Environment, log: Logger) -> None:
        self.calls.append("start")
        if self.error:
            raise self.error

    def stop(self, config: str, env: Environment, log: Logger) -> OCFStatus:
        self.calls.append("stop")
        return OCFStatus.NOT_RUNNING

    def monitor(self, config: str, env: Environment, log: Logger) -> None:
        self.calls.append("monitor")
        raise NotRunningError("stopped")


def run_toy(
    agent: Toy, action: str, env: Mapping[str, str] | None = None, capsys: Any = None
) -> tuple[int, str]:
    environ = {"HA_LOGFILE": "/dev/null", **(env or {})}
    code = main(agent, ["toy", action], environ)
    err = capsys.readouterr().err if capsys else ""
    return code, err


def test_meta_data_needs_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(Toy(), ["toy", "meta-data"], {}) == 0
    out = capsys.readouterr().out
    assert "&lt;agent&gt; &amp; co" in out and "<version>1.1</version>" in out


def test_unknown_action_is_unimplemented(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_toy(Toy(), "frobnicate", capsys=capsys)
    assert code == 3
    assert err.strip().splitlines()[-1] == "ocf-exit-reason:unknown action 'frobnicate'"


def test_probe_of_something_absent_is_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Toy()
    code, _ = run_toy(agent, "monitor", {"OCF_RESKEY_state": "/missing"}, capsys)
    assert code == 7 and agent.calls == []
    # ...but a recurring monitor reports the missing binary.
    code, err = run_toy(
        agent,
        "monitor",
        {"OCF_RESKEY_state": "/missing", "OCF_RESKEY_CRM_meta_interval": "10000"},
        capsys,
    )
    assert code == 5 and "binary missing" in err


def test_stop_with_broken_parameters_succeeds(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Toy()
    code, _ = run_toy(agent, "stop", {"OCF_RESKEY_state": "broken"}, capsys)
    assert code == 0
    code, err = run_toy(agent, "start", {"OCF_RESKEY_state": "broken"}, capsys)
    assert code == 6 and "state is broken" in err


def test_stop_never_returns_not_running(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_toy(Toy(), "stop", capsys=capsys)[0] == 0


def test_internal_error_is_reported_not_raised(capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run_toy(Toy(ZeroDivisionError("boom")), "start", capsys=capsys)
    assert code == 1
    assert err.strip().splitlines()[-1] == "ocf-exit-reason:internal error: ZeroDivisionError: boom"


def test_exit_reason_prefix_length_and_single_line(capsys: pytest.CaptureFixture[str]) -> None:
    reason = "line one\nline two " + "x" * 300
    code, err = run_toy(
        Toy(GenericError(reason)), "start", {"OCF_EXIT_REASON_PREFIX": "why:"}, capsys
    )
    last = err.strip().splitlines()[-1]
    assert code == 1 and last.startswith("why:line one line two")
    assert len(last) == len("why:") + 128


def test_logger_levels_and_destinations(tmp_path: Any) -> None:
    logfile, debuglog = tmp_path / "ha.log", tmp_path / "debug.log"
    env = {
        "OCF_RESOURCE_INSTANCE": "dir1",
        "HA_LOGFILE": str(logfile),
        "HA_DEBUGLOG": str(debuglog),
        "HA_debug": "0",
    }
    log = Logger.from_environ("bacula-dir", env)
    log.debug("quiet detail")
    log.info("visible")
    text = logfile.read_text()
    assert "bacula-dir(dir1)" in text and "INFO: visible" in text and "quiet detail" not in text
    assert "DEBUG: quiet detail" in debuglog.read_text()
    assert Logger.from_environ("x", {"HA_debug": "1"}).debug_enabled
    assert not Logger.from_environ("x", {"HA_debug": "0"}).debug_enabled


# -- processes -------------------------------------------------------------------------------
def _sleeper(trap_term: bool) -> subprocess.Popen[bytes]:
    code = "import signal,time\n"
    if trap_term:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(60)\n"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    return proc


def test_terminate_escalates_to_kill_within_the_deadline() -> None:
    proc = _sleeper(trap_term=True)
    try:
        start = time.monotonic()
        seen: list[str] = []
        gone = terminate(proc.pid, Deadline.after(10), grace=0.5, log=seen.append)
        proc.wait(5)
        assert gone and proc.returncode == -signal.SIGKILL
        assert time.monotonic() - start < 3 and "SIGKILL" in seen[0]
    finally:
        proc.kill()


def test_terminate_continues_a_stopped_process() -> None:
    proc = _sleeper(trap_term=False)
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        assert terminate(proc.pid, Deadline.after(10), grace=5)
        proc.wait(5)
        assert proc.returncode == -signal.SIGTERM  # TERM, not KILL: it was continued
    finally:
        proc.kill()


def test_identity_rejects_recycled_pids(tmp_path: Any) -> None:
    proc = _sleeper(trap_term=False)
    try:
        pidfile = tmp_path / "x.pid"
        pidfile.write_text(f"{proc.pid}\n")
        assert read_pidfile(str(pidfile)) == proc.pid and is_alive(proc.pid)
        assert Identity(os.path.realpath(sys.executable)).matches(proc.pid)
        assert not Identity("/usr/sbin/bacula-dir").matches(proc.pid)
        assert not Identity(sys.executable, "/etc/bacula/bacula-dir.conf").matches(proc.pid)
        pidfile.write_text("garbage")
        assert read_pidfile(str(pidfile)) is None
    finally:
        proc.kill()
        proc.wait()
    assert not is_alive(proc.pid)


def test_wait_until_respects_the_deadline() -> None:
    start = time.monotonic()
    assert not wait_until(lambda: False, Deadline.after(0.8))
    assert time.monotonic() - start < 1.0
    assert wait_until(lambda: True, Deadline.after(0.1))


def test_command_runner_bounds_and_reports(capsys: pytest.CaptureFixture[str]) -> None:
    from bacula_ha.ocf.command import CommandTimeout, redact, run

    res = run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], deadline=Deadline.after(5))
    assert res.returncode == 3 and res.stdout == "out\n" and res.output_tail() == "err"
    start = time.monotonic()
    with pytest.raises(CommandTimeout):
        # The grandchild (sleep) must die with the group, or this would wait 30 s.
        run(["/bin/sh", "-c", "sleep 30 & sleep 30"], deadline=Deadline.after(10), timeout=0.5)
    assert time.monotonic() - start < 3
    with pytest.raises(NotInstalledError):
        run(["/nonexistent/bin"], deadline=Deadline.after(5))
    assert redact(["mysql", "--password=s3cret"], ["s3cret"]) == "mysql --password=***"


def test_timeout_does_not_wait_for_pipes_held_by_an_escaped_process(tmp_path: Any) -> None:
    from bacula_ha.ocf.command import CommandTimeout, run

    pidfile = tmp_path / "escaped.pid"
    start = time.monotonic()
    # setsid puts the sleeper outside the killed group while it keeps our stdout open.
    script = f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 20' & sleep 20"
    try:
        with pytest.raises(CommandTimeout):
            run(["/bin/sh", "-c", script], deadline=Deadline.after(10), timeout=0.5)
        assert time.monotonic() - start < 5
    finally:
        if pidfile.exists():
            os.kill(int(pidfile.read_text()), signal.SIGKILL)
