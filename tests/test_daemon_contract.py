"""What bacula-dir, bacula-sd and bacula-fd share (bacula.daemon): one test, three real daemons.

Each agent is described in fixtures_bacula (DaemonAgent); what is one agent's own stays in
test_director.py, test_storage.py and test_filedaemon.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .fixtures_agents import SYSTEM_OCF_ROOT
from .fixtures_bacula import (
    DAEMON_AGENTS,
    STORAGE,
    Daemon,
    DaemonAgent,
    SiteFactory,
    gone,
    wait_gone,
)


@pytest.fixture(params=DAEMON_AGENTS, ids=str)
def agent(request: pytest.FixtureRequest) -> DaemonAgent:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def daemon(agent: DaemonAgent, site_factory: SiteFactory) -> Daemon:
    """The agent's daemon on a fresh site, not started."""
    return agent.on(site_factory())


def agent_path(agent: DaemonAgent) -> Path:
    return SYSTEM_OCF_ROOT / "resource.d" / "bacula" / agent.name


# -- the OCF contract -----------------------------------------------------------------------


def test_lifecycle_all_depths(
    agent: DaemonAgent, site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    d = agent.on(site_factory(devices_per_sd=10))  # ten devices for the storage daemon
    probe = d.run("monitor", rsctmp, interval_ms=0)
    assert probe.code == 7, probe.stderr
    assert d.run("validate-all", rsctmp).code == 0
    d.start(rsctmp)
    for depth in (0, 10, 20):  # where 20 is not offered, it falls back to 10
        result = d.run("monitor", rsctmp, depth=depth)
        assert result.code == 0, (depth, result.stderr)
    assert d.run("monitor", rsctmp, interval_ms=0).code == 0  # probe, running
    assert d.run("start", rsctmp).code == 0  # start on a running daemon succeeds
    pid = d.pid()
    assert d.run("stop", rsctmp).code == 0
    assert gone(pid)
    assert d.run("stop", rsctmp).code == 0  # and stop on a stopped one
    stopped = d.run("monitor", rsctmp, depth=agent.deepest)
    assert stopped.code == 7 and "not running" in stopped.reason
    assert not list(d.workdir.glob("*.pid"))


def test_probe_finds_a_daemon_started_outside_the_cluster(
    daemon: Daemon, rsctmp: Path, ocf_root: Path
) -> None:
    d = daemon
    account = ["-u", "bacula", "-g", "bacula"] if d.agent.as_bacula else []
    subprocess.run([d.binary, "-c", str(d.conf), *account], check=True)
    deadline = time.monotonic() + 10
    while d.run("monitor", rsctmp, interval_ms=0).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert d.run("monitor", rsctmp, depth=d.agent.deepest).code == 0
    assert d.run("stop", rsctmp).code == 0
    assert d.run("monitor", rsctmp, interval_ms=0).code == 7


def test_ocf_tester_passes(daemon: Daemon, ocf_root: Path) -> None:
    args = [a for k, v in daemon.params().items() for a in ("-o", f"{k}={v}")]
    out = subprocess.run(
        ["ocf-tester", "-n", f"{daemon.agent.short}-test", *args, str(agent_path(daemon.agent))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed all tests" in out.stdout


def test_crm_resource_validate_and_force_check(
    daemon: Daemon, rsctmp: Path, ocf_root: Path
) -> None:
    opts = [a for k, v in daemon.params().items() for a in ("--option", f"{k}={v}")]
    agent = ["--class", "ocf", "--provider", "bacula", "--agent", daemon.agent.name]
    base = ["crm_resource", *agent, *opts]

    def crm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*args], capture_output=True, text=True, timeout=60)

    valid = crm(*base, "--validate")
    assert valid.returncode == 0, valid.stdout + valid.stderr
    probe = crm(*base, "--force-check")
    assert probe.returncode == 7, probe.stdout + probe.stderr  # not running
    daemon.start(rsctmp)
    probe = crm(*base, "--force-check")
    assert probe.returncode == 0, probe.stdout + probe.stderr  # running
    assert daemon.run("stop", rsctmp).code == 0
    broken = crm(*base[:-2], "--option", "config=/nonexistent.conf", "--validate")
    assert broken.returncode != 0 and "does not exist" in broken.stdout + broken.stderr


def test_meta_data_advertises_reload_depths_and_a_unique_config(
    agent: DaemonAgent, ocf_root: Path
) -> None:
    out = subprocess.run(
        [str(agent_path(agent)), "meta-data"], capture_output=True, text=True, env={}
    )
    assert out.returncode == 0
    root = ET.fromstring(out.stdout)
    actions = {a.get("name") for a in root.iter("action")}
    assert actions >= {"start", "stop", "monitor", "validate-all", "meta-data"}
    reloads = {"reload", "reload-agent"}
    assert actions & reloads == (reloads if agent.reloads else set())
    depths = {a.get("depth") for a in root.iter("action") if a.get("name") == "monitor"}
    assert depths == {str(depth) for depth in agent.depths}
    config = next(p for p in root.iter("parameter") if p.get("name") == "config")
    assert config.get("unique-group")
    longdesc = (root.findtext("longdesc") or "").lower()
    for words in agent.longdesc:
        assert words.lower() in longdesc


@pytest.mark.parametrize("agent", [a for a in DAEMON_AGENTS if not a.reloads], ids=str)
def test_reload_is_not_implemented(daemon: Daemon, rsctmp: Path, ocf_root: Path) -> None:
    for action in ("reload", "reload-agent"):
        result = daemon.run(action, rsctmp)
        assert result.code == 3 and "unknown action" in result.reason


def test_agent_runs_without_pythonpath_under_a_bare_environment(
    agent: DaemonAgent, ocf_root: Path
) -> None:
    out = subprocess.run(
        [str(agent_path(agent)), "monitor"], env={}, capture_output=True, text=True
    )
    # A probe with every default: /etc/bacula/<daemon>.conf exists but no such daemon runs.
    assert out.returncode in (0, 7), out.stderr
    assert "Traceback" not in out.stderr
    # It ran on the interpreter it names itself (no PATH lookup), isolated from PYTHON* and
    # the user's site: the one the agents were installed with.
    interpreter, _, flags = agent_path(agent).read_text().splitlines()[0].partition(" ")
    assert interpreter == f"#!{sys.executable}", interpreter
    assert os.access(sys.executable, os.X_OK)
    assert flags.split() == ["-I"], flags


def test_two_daemons_do_not_interfere(
    agent: DaemonAgent, site_factory: SiteFactory, tmp_path: Path, ocf_root: Path
) -> None:
    if agent is STORAGE:  # several storage daemons on one site, each with its devices
        site = site_factory(n_sd=2, devices_per_sd=10)
        one, two = agent.on(site, 0), agent.on(site, 1)
    else:
        one, two = agent.on(site_factory(name="one")), agent.on(site_factory(name="two"))
    assert one.port != two.port
    rsc = tmp_path / "rsc"
    rsc.mkdir()
    pair = ((one, f"{agent.short}-one"), (two, f"{agent.short}-two"))
    for d, inst in pair:
        result = d.run("start", rsc, instance=inst)
        assert result.code == 0, result.stderr
    for d, inst in pair:
        assert d.run("monitor", rsc, instance=inst, depth=agent.deepest).code == 0
    first, second = one.pid(), two.pid()
    assert first != second
    assert one.run("stop", rsc, instance=pair[0][1]).code == 0
    assert gone(first)
    assert one.run("monitor", rsc, instance=pair[0][1]).code == 7
    deep = two.run("monitor", rsc, instance=pair[1][1], depth=agent.deepest)
    assert deep.code == 0, deep.stderr
    assert two.pid() == second and not gone(second)
    assert two.run("monitor", rsc, instance=pair[1][1], interval_ms=0).code == 0
    assert two.run("stop", rsc, instance=pair[1][1]).code == 0
    assert gone(second)


# -- process faults -------------------------------------------------------------------------


def started_then(d: Daemon, rsctmp: Path, sig: signal.Signals) -> int:
    """Start the daemon through its agent, send it `sig`; its pid."""
    d.start(rsctmp)
    pid = d.pid()
    os.kill(pid, sig)
    return pid


def test_sigstop_fails_depth_10_within_its_bound(
    daemon: Daemon, rsctmp: Path, ocf_root: Path
) -> None:
    d = daemon
    pid = started_then(d, rsctmp, signal.SIGSTOP)
    try:
        assert d.run("monitor", rsctmp, depth=0).code == 0  # the process is still there
        for depth in (10, 20):
            began = time.monotonic()
            stuck = d.run("monitor", rsctmp, depth=depth, params={"check_timeout": "1"})
            assert stuck.code == 1 and d.agent.no_answer in stuck.reason, stuck.stderr
            assert time.monotonic() - began < 3
    finally:
        os.kill(pid, signal.SIGCONT)
    assert d.run("monitor", rsctmp, depth=d.agent.deepest).code == 0
    stop = d.run("stop", rsctmp)
    assert stop.code == 0, stop.stderr


def test_stop_of_a_stopped_daemon_escalates(daemon: Daemon, rsctmp: Path, ocf_root: Path) -> None:
    pid = started_then(daemon, rsctmp, signal.SIGSTOP)
    assert daemon.run("stop", rsctmp, timeout_ms=10_000).code == 0
    assert gone(pid)


def test_kill_9_with_stale_pid_file_then_restart(
    daemon: Daemon, rsctmp: Path, ocf_root: Path
) -> None:
    d = daemon
    pid = started_then(d, rsctmp, signal.SIGKILL)
    wait_gone([pid])
    assert d.pidfile().exists()  # the stale pid file is still there
    for depth in d.agent.depths:
        dead = d.run("monitor", rsctmp, depth=depth)
        assert dead.code == 7 and "not running" in dead.reason
    assert d.run("monitor", rsctmp, interval_ms=0).code == 7
    again = d.run("start", rsctmp)
    assert again.code == 0, again.stderr
    assert d.pid() != pid
    assert d.run("monitor", rsctmp, depth=d.agent.deepest).code == 0
    assert d.run("stop", rsctmp).code == 0


def test_pid_file_naming_another_process(daemon: Daemon, rsctmp: Path, ocf_root: Path) -> None:
    d = daemon
    d.start(rsctmp)
    pidfile = d.pidfile()
    killed = d.pid()
    os.kill(killed, signal.SIGKILL)
    other = subprocess.Popen(["/bin/sleep", "60"])
    try:
        wait_gone([killed])  # the agent must not find the daemon itself, only the pid file
        pidfile.write_text(f"{other.pid}\n")
        assert d.run("monitor", rsctmp).code == 7
        assert d.run("stop", rsctmp).code == 0
        assert other.poll() is None  # never kill what is not ours
        d.start(rsctmp)
        assert d.run("stop", rsctmp).code == 0
    finally:
        other.kill()
        other.wait()


# -- configuration and parameters -----------------------------------------------------------


def test_broken_config(daemon: Daemon, rsctmp: Path, ocf_root: Path) -> None:
    d = daemon
    original = d.conf.read_text()
    broken = original + f"\n{d.agent.section} {{\n  Nmae = x\n}}\n"
    d.conf.write_text(broken)
    refused = d.run("start", rsctmp)
    assert refused.code == 6 and str(d.conf) in refused.reason, refused.stderr
    assert d.run("validate-all", rsctmp).code == 6
    assert d.run("monitor", rsctmp, interval_ms=0).code == 7
    assert d.run("stop", rsctmp).code == 0
    # Broken under a running daemon (an admin mid-edit): degraded, never 6.
    d.conf.write_text(original)
    d.start(rsctmp)
    pid = d.pid()
    d.conf.write_text(broken)
    assert d.run("monitor", rsctmp, depth=0).code == 0
    degraded = d.run("monitor", rsctmp, depth=d.agent.deepest)
    assert degraded.code == 190 and "configuration on disk" in degraded.reason
    if not d.agent.reloads:  # the director's reload: test_director.py
        assert d.run("reload", rsctmp).code == 3
    assert d.pid() == pid
    stop = d.run("stop", rsctmp)  # found by its command line, without the configuration
    assert stop.code == 0, stop.stderr
    assert gone(pid)


def test_missing_binary(daemon: Daemon, rsctmp: Path, ocf_root: Path) -> None:
    params = {"binary": f"/usr/sbin/no-such-{daemon.agent.name}"}
    start = daemon.run("start", rsctmp, params=params)
    assert start.code == 5 and "not installed" in start.reason
    assert daemon.run("monitor", rsctmp, params=params, interval_ms=0).code == 7
    assert daemon.run("stop", rsctmp, params=params).code == 0


# Every daemon agent refuses these (bacula.daemon.common_parameters); the port in words is
# each one's default port.
PORT_IN_WORDS = {"dir": "ninety-one-oh-one", "fd": "ninety-one-oh-two", "sd": "ninety-one-oh-three"}


def _common_bad_parameters(agent: DaemonAgent) -> list[tuple[dict[str, str], int, str]]:
    return [
        ({"config": f"/nonexistent/{agent.name}.conf"}, 5, "does not exist"),
        ({"port": PORT_IN_WORDS[agent.short]}, 6, "not an integer"),
        ({"port": "0"}, 6, "out of range (1..65535)"),
        ({"port": "70000"}, 6, "out of range (1..65535)"),
        ({"config": "relative.conf"}, 6, "absolute path"),
        ({"binary": agent.name}, 6, "absolute path"),
        ({"check_timeout": "soon"}, 6, "not an integer"),
        ({"check_timeout": "0"}, 6, "out of range"),
        # The meta-data says integer: every agent refuses a fraction alike.
        ({"check_timeout": "3.5"}, 6, "not an integer"),
        ({"user": "no-such-user"}, 5, "does not exist"),
        ({"group": "no-such-group"}, 5, "does not exist"),
    ]


def _id(params: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in params.items())


# ... and these are one agent's own parameters.
OWN_BAD_PARAMETERS: dict[str, list[tuple[dict[str, str], int, str]]] = {
    "dir": [
        ({"job_wait": "x"}, 6, "not an integer"),
        ({"interrupted_jobs": "bogus"}, 6, "not one of: rerun, log, off"),
        ({"bconsole": "bin/bconsole"}, 6, "absolute path"),
    ],
    "sd": [({"archive_mounts": "/srv/backup srv/other"}, 6, "not an absolute path")],
}


@pytest.mark.parametrize(
    ("agent", "params", "code", "words"),
    [
        pytest.param(agent, params, code, words, id=f"{agent}-{_id(params)}")
        for agent in DAEMON_AGENTS
        for params, code, words in [
            *_common_bad_parameters(agent),
            *OWN_BAD_PARAMETERS.get(agent.short, []),
        ]
    ],
)
def test_bad_parameters(
    daemon: Daemon,
    rsctmp: Path,
    ocf_root: Path,
    params: dict[str, str],
    code: int,
    words: str,
) -> None:
    result = daemon.run("start", rsctmp, params=params)
    assert result.code == code, result.stderr
    assert words in result.reason
    assert daemon.run("stop", rsctmp, params=params).code == 0


def test_config_path_with_spaces_and_empty_values(
    daemon: Daemon, rsctmp: Path, ocf_root: Path
) -> None:
    d = daemon
    spaced = d.site.etc / f"my {d.agent.short}.conf"
    shutil.copy(d.conf, spaced)
    os.chown(spaced, 0, d.conf.stat().st_gid)
    params = {"config": str(spaced), **{name: "" for name in d.agent.optional}}
    d.start(rsctmp, params=params)
    assert d.run("monitor", rsctmp, params=params, depth=d.agent.deepest).code == 0
    assert d.run("stop", rsctmp, params=params).code == 0
