"""Hardening against real daemons: stop needs no parser, no password in any exit reason."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from .fixtures_bacula import DAEMON_AGENTS, FILEDAEMON, DaemonAgent, SiteFactory, gone

MARKER = "Fuzz-S3cret-Marker"


@pytest.mark.parametrize("agent", DAEMON_AGENTS, ids=str)
def test_stop_succeeds_when_the_configuration_blocks_the_parser(
    agent: DaemonAgent, site_factory: SiteFactory, rsctmp: Path, tmp_path: Path, ocf_root: Path
) -> None:
    """A FIFO included into the configuration makes Bacula's parser block: the stop must not
    care (a failed stop fences the node), and a monitor must not call the daemon failed."""
    daemon = agent.on(site_factory())
    daemon.start(rsctmp)
    pid = daemon.pid()
    fifo = tmp_path / "blocks.conf"
    os.mkfifo(fifo)
    with daemon.conf.open("a") as handle:
        handle.write(f"\n@{fifo}\n")
    if agent.deepest >= 10:
        deep = daemon.run("monitor", rsctmp, depth=10, timeout_ms=8000)
        assert deep.code == 190, deep.stderr  # the daemon runs; its file on disk is unusable
    started = time.monotonic()
    stop = daemon.run("stop", rsctmp, timeout_ms=10_000)
    assert stop.code == 0, stop.stderr
    assert time.monotonic() - started < 10
    assert gone(pid)
    assert daemon.run("stop", rsctmp).code == 0


@pytest.mark.parametrize("agent", DAEMON_AGENTS, ids=str)
def test_a_broken_password_line_never_reaches_the_exit_reason(
    agent: DaemonAgent, site_factory: SiteFactory, rsctmp: Path, tmp_path: Path, ocf_root: Path
) -> None:
    daemon = agent.on(site_factory())
    text = daemon.conf.read_text()
    # The first Password directive loses its '=' and gets the marker: Bacula's parser then
    # echoes the value ("expected an equals, got: <value>").
    head, sep, tail = text.partition("Password")
    assert sep, "the sandbox configuration has a Password directive"
    rest = tail.split("\n", 1)[1]
    daemon.conf.write_text(f'{head}Password "{MARKER}"\n{rest}')
    log = tmp_path / "ha.log"
    for action in ("validate-all", "start"):
        out = daemon.run(action, rsctmp, extra_env={"HA_LOGFILE": str(log), "HA_debug": "1"})
        assert out.code == 6, out.stderr
        assert "Config error" in out.reason
        assert MARKER not in out.stderr + out.stdout + log.read_text()
    assert daemon.run("stop", rsctmp).code == 0


def test_a_daemon_in_another_namespace_is_not_ours(site_factory: SiteFactory, rsctmp: Path) -> None:
    """The same program with the same configuration path in another PID and mount namespace
    (a container, a test lab's machine) is not this node's daemon: a probe finds nothing
    here and a stop leaves it running. Before, the /proc scan found it, and a stop killed it."""
    daemon = FILEDAEMON.on(site_factory())
    argv = ["unshare", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child"]
    argv += [daemon.binary, "-f", "-c", str(daemon.conf)]
    outside = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not list(daemon.workdir.glob("bacula-fd.*.pid")):
            assert time.monotonic() < deadline and outside.poll() is None
            time.sleep(0.05)
        inside = daemon.pid()  # its pid in its own namespace: 1 or 2
        probe = daemon.run("monitor", rsctmp, interval_ms=0)
        assert probe.code == 7, probe.stderr
        assert daemon.run("stop", rsctmp).code == 0
        assert outside.poll() is None and inside < 10
        assert list(daemon.workdir.glob("bacula-fd.*.pid"))  # still running there
    finally:
        # --kill-child: the daemon (its namespace's init, deaf to a TERM it did not ask
        # for) is SIGKILLed when unshare dies.
        outside.kill()
        outside.wait(10)
