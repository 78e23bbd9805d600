"""The bacula-fd agent against real file daemons: contract, a floating address, faults."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from bacula_ha.sandbox.bacula import BaculaSite

from .fixtures_agents import SYSTEM_OCF_ROOT, AgentRun, run_agent
from .fixtures_bacula import SiteFactory

AGENT = "bacula-fd"


def fd_params(site: BaculaSite, **extra: str) -> dict[str, str]:
    return {"config": str(site.fd_conf), "check_timeout": "2", **extra}


def fd_pidfile(site: BaculaSite) -> Path:
    return next(site.workdir("fd").glob("bacula-fd.*.pid"))


def fd_pid(site: BaculaSite) -> int:
    return int(fd_pidfile(site).read_text().strip())


def gone(pid: int) -> bool:
    """No such process, or only its zombie (the container's init may not reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def run(site: BaculaSite, action: str, tmp: Path, **kw: object) -> AgentRun:
    params = fd_params(site)
    params.update(kw.pop("params", {}))  # type: ignore[arg-type]
    return run_agent(AGENT, action, params, rsctmp=tmp, **kw)  # type: ignore[arg-type]


def started(site: BaculaSite, tmp: Path, **kw: object) -> None:
    result = run(site, "start", tmp, **kw)
    assert result.code == 0, result.stderr


@pytest.fixture
def rsctmp(tmp_path: Path) -> Path:
    path = tmp_path / "rsctmp"
    path.mkdir()
    return path


# -- contract -------------------------------------------------------------------------------


def test_lifecycle_all_depths(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    probe = run(site, "monitor", rsctmp, interval_ms=0)
    assert probe.code == 7, probe.stderr
    assert run(site, "validate-all", rsctmp).code == 0
    started(site, rsctmp)
    for depth in (0, 10, 20):  # 20 is not offered: it falls back to 10
        result = run(site, "monitor", rsctmp, depth=depth)
        assert result.code == 0, (depth, result.stderr)
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 0  # probe, running
    assert run(site, "start", rsctmp).code == 0  # start on a running daemon succeeds
    pid = fd_pid(site)
    assert run(site, "stop", rsctmp).code == 0
    assert gone(pid)
    assert run(site, "stop", rsctmp).code == 0  # and stop on a stopped one
    stopped = run(site, "monitor", rsctmp, depth=10)
    assert stopped.code == 7 and "not running" in stopped.reason
    assert not list(site.workdir("fd").glob("*.pid"))


def test_floating_address_from_the_configuration(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    # The file daemon listens on its own address only (a virtual IP; here a second
    # loopback address): the agent checks it there, as FDAddress says.
    site = site_factory(fd_address="127.0.0.2")
    started(site, rsctmp)
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    # An explicit address that is not where the daemon listens: no answer, named.
    wrong = run(site, "monitor", rsctmp, depth=10, params={"address": "127.0.0.1"})
    assert wrong.code == 1 and f"no answer on 127.0.0.1:{site.fd_port}" in wrong.reason
    assert run(site, "monitor", rsctmp, depth=0, params={"address": "127.0.0.1"}).code == 0
    assert run(site, "stop", rsctmp).code == 0


def test_probe_finds_a_daemon_started_outside_the_cluster(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    subprocess.run(["/usr/sbin/bacula-fd", "-c", str(site.fd_conf)], check=True)
    deadline = time.monotonic() + 10
    while run(site, "monitor", rsctmp, interval_ms=0).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    assert run(site, "stop", rsctmp).code == 0
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7


def test_ocf_tester_passes(site_factory: SiteFactory, ocf_root: Path) -> None:
    site = site_factory()
    args = [a for k, v in fd_params(site).items() for a in ("-o", f"{k}={v}")]
    agent = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / AGENT
    out = subprocess.run(
        ["ocf-tester", "-n", "fd-test", *args, str(agent)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed all tests" in out.stdout


def test_crm_resource_validate_and_force_check(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    opts = [a for k, v in fd_params(site).items() for a in ("--option", f"{k}={v}")]
    base = ["crm_resource", "--class", "ocf", "--provider", "bacula", "--agent", AGENT, *opts]
    valid = subprocess.run([*base, "--validate"], capture_output=True, text=True, timeout=60)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    probe = subprocess.run([*base, "--force-check"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 7, probe.stdout + probe.stderr  # not running
    started(site, rsctmp)
    probe = subprocess.run([*base, "--force-check"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 0, probe.stdout + probe.stderr  # running
    assert run(site, "stop", rsctmp).code == 0
    broken = subprocess.run(
        [*base[:-2], "--option", "config=/nonexistent.conf", "--validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode != 0 and "does not exist" in broken.stdout + broken.stderr


def test_meta_data_advertises_no_reload_and_no_depth_20(ocf_root: Path) -> None:
    agent = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / AGENT
    out = subprocess.run([str(agent), "meta-data"], capture_output=True, text=True, env={})
    assert out.returncode == 0
    root = ET.fromstring(out.stdout)
    actions = {a.get("name") for a in root.iter("action")}
    assert actions >= {"start", "stop", "monitor", "validate-all", "meta-data"}
    assert not actions & {"reload", "reload-agent"}
    depths = {a.get("depth") for a in root.iter("action") if a.get("name") == "monitor"}
    assert depths == {"0", "10"}
    config = next(p for p in root.iter("parameter") if p.get("name") == "config")
    assert config.get("unique-group")
    longdesc = root.findtext("longdesc") or ""
    assert "no depth 20" in longdesc.lower() and "no reload" in longdesc.lower()


def test_reload_is_not_implemented(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    for action in ("reload", "reload-agent"):
        result = run(site, action, rsctmp)
        assert result.code == 3 and "unknown action" in result.reason


def test_two_file_daemons_do_not_interfere(
    site_factory: SiteFactory, tmp_path: Path, ocf_root: Path
) -> None:
    one, two = site_factory(name="one"), site_factory(name="two")
    rsc = tmp_path / "rsc"
    rsc.mkdir()
    for site, inst in ((one, "fd-one"), (two, "fd-two")):
        started(site, rsc, instance=inst)
    first = fd_pid(one)
    assert run(one, "stop", rsc, instance="fd-one").code == 0
    assert gone(first)
    assert run(two, "monitor", rsc, instance="fd-two", depth=10).code == 0
    assert run(one, "monitor", rsc, instance="fd-one").code == 7
    assert run(two, "stop", rsc, instance="fd-two").code == 0


# -- faults ---------------------------------------------------------------------------------


def test_sigstop_fails_depth_10_within_its_bound(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pid = fd_pid(site)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert run(site, "monitor", rsctmp, depth=0).code == 0  # the process is still there
        for depth in (10, 20):
            began = time.monotonic()
            stuck = run(site, "monitor", rsctmp, depth=depth, params={"check_timeout": "1"})
            assert stuck.code == 1 and "no answer" in stuck.reason, stuck.stderr
            assert time.monotonic() - began < 3
    finally:
        os.kill(pid, signal.SIGCONT)
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    assert run(site, "stop", rsctmp).code == 0


def test_stop_of_a_stopped_daemon_escalates(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pid = fd_pid(site)
    os.kill(pid, signal.SIGSTOP)
    assert run(site, "stop", rsctmp, timeout_ms=10_000).code == 0
    assert gone(pid)


def test_kill_9_with_stale_pid_file_then_restart(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pid = fd_pid(site)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert fd_pidfile(site).exists()  # the stale pid file is still there
    for depth in (0, 10):
        dead = run(site, "monitor", rsctmp, depth=depth)
        assert dead.code == 7 and "not running" in dead.reason
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7
    started(site, rsctmp)
    assert fd_pid(site) != pid
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    assert run(site, "stop", rsctmp).code == 0


def test_pid_file_naming_another_process(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pidfile = fd_pidfile(site)
    os.kill(fd_pid(site), signal.SIGKILL)
    other = subprocess.Popen(["/bin/sleep", "60"])
    try:
        time.sleep(0.2)
        pidfile.write_text(f"{other.pid}\n")
        assert run(site, "monitor", rsctmp).code == 7
        assert run(site, "stop", rsctmp).code == 0
        assert other.poll() is None  # never kill what is not ours
        started(site, rsctmp)
        assert run(site, "stop", rsctmp).code == 0
    finally:
        other.kill()
        other.wait()


def test_broken_config(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    original = site.fd_conf.read_text()
    broken = original + "\nFileDaemon {\n  Nmae = x\n}\n"
    site.fd_conf.write_text(broken)
    refused = run(site, "start", rsctmp)
    assert refused.code == 6 and str(site.fd_conf) in refused.reason, refused.stderr
    assert run(site, "validate-all", rsctmp).code == 6
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7
    assert run(site, "stop", rsctmp).code == 0
    # Broken under a running daemon (an admin mid-edit): degraded, never 6, and no reload.
    site.fd_conf.write_text(original)
    started(site, rsctmp)
    pid = fd_pid(site)
    site.fd_conf.write_text(broken)
    assert run(site, "monitor", rsctmp, depth=0).code == 0
    degraded = run(site, "monitor", rsctmp, depth=10)
    assert degraded.code == 190 and "configuration on disk" in degraded.reason
    assert run(site, "reload", rsctmp).code == 3
    assert fd_pid(site) == pid
    stop = run(site, "stop", rsctmp)  # found by its command line, without the configuration
    assert stop.code == 0, stop.stderr
    assert gone(pid)


def test_missing_binary(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    params = {"binary": "/usr/sbin/no-such-bacula-fd"}
    start = run(site, "start", rsctmp, params=params)
    assert start.code == 5 and "not installed" in start.reason
    assert run(site, "monitor", rsctmp, params=params, interval_ms=0).code == 7
    assert run(site, "stop", rsctmp, params=params).code == 0


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"config": "/nonexistent/bacula-fd.conf"}, 5, "does not exist"),
        ({"port": "ninety-one-oh-two"}, 6, "not a TCP port"),
        ({"port": "0"}, 6, "not a TCP port"),
        ({"config": "relative.conf"}, 6, "absolute path"),
        ({"binary": "bacula-fd"}, 6, "absolute path"),
        ({"check_timeout": "soon"}, 6, "not a duration"),
        ({"check_timeout": "0"}, 6, "at least"),
        ({"user": "no-such-user"}, 5, "does not exist"),
        ({"group": "no-such-group"}, 5, "does not exist"),
    ],
)
def test_bad_parameters(
    site_factory: SiteFactory,
    rsctmp: Path,
    ocf_root: Path,
    params: dict[str, str],
    code: int,
    words: str,
) -> None:
    site = site_factory()
    result = run(site, "start", rsctmp, params=params)
    assert result.code == code, result.stderr
    assert words in result.reason
    assert run(site, "stop", rsctmp, params=params).code == 0


def test_config_path_with_spaces_and_empty_values(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    spaced = site.etc / "my fd.conf"
    shutil.copy(site.fd_conf, spaced)
    params = {"config": str(spaced), "user": "", "group": "", "address": "", "port": ""}
    started(site, rsctmp, params=params)
    assert run(site, "monitor", rsctmp, params=params, depth=10).code == 0
    assert run(site, "stop", rsctmp, params=params).code == 0
