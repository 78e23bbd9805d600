"""The bacula-dir agent against a real director and a real PostgreSQL catalog."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bacula_ha.sandbox.bacula import BaculaSite
from bacula_ha.sandbox.postgres import PostgresServer

from .fixtures_agents import SYSTEM_OCF_ROOT, AgentRun, run_agent
from .fixtures_bacula import SiteFactory, bconsole, dir_params

AGENT = "bacula-dir"


def dir_pid(site: BaculaSite) -> int:
    pidfile = next(site.workdir("dir").glob("bacula-dir.*.pid"))
    return int(pidfile.read_text().strip())


def run(site: BaculaSite, action: str, tmp: Path, **kw: object) -> AgentRun:
    params = dict(dir_params(site))
    params.update(kw.pop("params", {}))  # type: ignore[arg-type]
    return run_agent(AGENT, action, params, rsctmp=tmp, **kw)  # type: ignore[arg-type]


@pytest.fixture
def rsctmp(tmp_path: Path) -> Path:
    path = tmp_path / "rsctmp"
    path.mkdir()
    return path


def test_lifecycle_all_depths(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7  # probe, stopped
    assert run(site, "validate-all", rsctmp).code == 0
    started = run(site, "start", rsctmp)
    assert started.code == 0, started.stderr
    for depth in (0, 10, 20):
        result = run(site, "monitor", rsctmp, depth=depth)
        assert result.code == 0, (depth, result.stderr)
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 0  # probe, running
    assert run(site, "start", rsctmp).code == 0  # start on a running director succeeds
    assert run(site, "stop", rsctmp).code == 0
    assert run(site, "stop", rsctmp).code == 0  # and stop on a stopped one
    assert run(site, "monitor", rsctmp).code == 7
    assert not list(site.workdir("dir").glob("*.pid"))


def test_probe_finds_a_director_started_outside_the_cluster(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    subprocess.run(
        ["/usr/sbin/bacula-dir", "-c", str(site.dir_conf), "-u", "bacula", "-g", "bacula"],
        check=True,
    )
    deadline = time.monotonic() + 10
    while run(site, "monitor", rsctmp, interval_ms=0).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert run(site, "stop", rsctmp).code == 0
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7


def test_ocf_tester_passes(site_factory: SiteFactory, ocf_root: Path) -> None:
    site = site_factory()
    args = [a for k, v in dir_params(site).items() for a in ("-o", f"{k}={v}")]
    agent = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / AGENT
    out = subprocess.run(
        ["ocf-tester", "-n", "dir-test", *args, str(agent)],
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
    opts = [a for k, v in dir_params(site).items() for a in ("--option", f"{k}={v}")]
    base = ["crm_resource", "--class", "ocf", "--provider", "bacula", "--agent", AGENT, *opts]
    valid = subprocess.run([*base, "--validate"], capture_output=True, text=True, timeout=60)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    probe = subprocess.run([*base, "--force-check"], capture_output=True, text=True, timeout=60)
    assert probe.returncode == 7, probe.stdout + probe.stderr  # not running
    broken = subprocess.run(
        [*base[:-2], "--option", "config=/nonexistent.conf", "--validate"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert broken.returncode != 0 and "does not exist" in broken.stdout + broken.stderr


def test_sigstop_fails_depth_10_within_its_bound(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    assert run(site, "start", rsctmp).code == 0
    pid = dir_pid(site)
    os.kill(pid, signal.SIGSTOP)
    try:
        assert run(site, "monitor", rsctmp, depth=0).code == 0  # the process is still there
        began = time.monotonic()
        stuck = run(site, "monitor", rsctmp, depth=10, params={"check_timeout": "1"})
        assert stuck.code == 1 and "does not answer" in stuck.reason
        assert time.monotonic() - began < 3
    finally:
        os.kill(pid, signal.SIGCONT)
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    stop = run(site, "stop", rsctmp)
    assert stop.code == 0, stop.stderr


def test_stop_of_a_stopped_director_escalates(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    assert run(site, "start", rsctmp).code == 0
    pid = dir_pid(site)
    os.kill(pid, signal.SIGSTOP)
    assert run(site, "stop", rsctmp, timeout_ms=10_000).code == 0
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_kill_9_with_stale_pid_file_then_restart(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    assert run(site, "start", rsctmp).code == 0
    pid = dir_pid(site)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert list(site.workdir("dir").glob("*.pid"))  # the stale pid file is still there
    assert run(site, "monitor", rsctmp).code == 7
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7
    again = run(site, "start", rsctmp)
    assert again.code == 0, again.stderr
    assert dir_pid(site) != pid
    assert run(site, "stop", rsctmp).code == 0


def test_pid_file_naming_another_process(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    assert run(site, "start", rsctmp).code == 0
    pidfile = next(site.workdir("dir").glob("*.pid"))
    os.kill(dir_pid(site), signal.SIGKILL)
    other = subprocess.Popen(["/bin/sleep", "60"])
    try:
        time.sleep(0.2)
        pidfile.write_text(f"{other.pid}\n")
        assert run(site, "monitor", rsctmp).code == 7
        assert run(site, "stop", rsctmp).code == 0
        assert other.poll() is None  # never kill what is not ours
        assert run(site, "start", rsctmp).code == 0
        assert run(site, "stop", rsctmp).code == 0
    finally:
        other.kill()
        other.wait()


def test_reload_with_broken_config_keeps_the_old_one(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    assert run(site, "start", rsctmp).code == 0
    pid = dir_pid(site)
    original = site.dir_conf.read_text()
    site.dir_conf.write_text(original + "\nJob {\n  Name = Broken\n  Type = \n")
    refused = run(site, "reload", rsctmp)
    assert refused.code == 1 and "old configuration kept" in refused.reason
    assert dir_pid(site) == pid and run(site, "monitor", rsctmp, depth=0).code == 0
    # Deeper, the broken file on disk shows as degraded, never as a configuration error.
    degraded = run(site, "monitor", rsctmp, depth=10)
    assert degraded.code == 190 and "configuration on disk" in degraded.reason
    # A good change goes through, without a restart.
    site.dir_conf.write_text(original.replace("Name = RestoreSandbox", "Name = RestoreAgain"))
    reloaded = run(site, "reload-agent", rsctmp)
    assert reloaded.code == 0, reloaded.stderr
    assert dir_pid(site) == pid
    assert "RestoreAgain" in bconsole(site, ".jobs")
    assert run(site, "stop", rsctmp).code == 0


def test_catalog_down_at_start_is_not_a_configuration_error(
    pg_factory: object, site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    from bacula_ha.sandbox.bacula import CatalogSettings

    server: PostgresServer = pg_factory()  # type: ignore[operator]
    info = server.create_bacula_catalog("bacula", "bacula", "pw-down")
    site = site_factory(catalog=CatalogSettings(password="pw-down", port=info.port))
    server.stop()
    result = run(site, "start", rsctmp)
    assert result.code == 1, result.stderr
    assert "catalog" in result.reason.lower()
    assert run(site, "monitor", rsctmp).code == 7
    assert run(site, "validate-all", rsctmp).code == 1


def test_syntax_error_is_a_configuration_error(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    site.dir_conf.write_text(site.dir_conf.read_text() + "\nDirector {\n  Nmae = x\n}\n")
    result = run(site, "start", rsctmp)
    assert result.code == 6 and str(site.dir_conf) in result.reason
    assert run(site, "stop", rsctmp).code == 0


def test_missing_binary(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    params = {"binary": "/usr/sbin/no-such-bacula-dir"}
    start = run(site, "start", rsctmp, params=params)
    assert start.code == 5 and "not installed" in start.reason
    assert run(site, "monitor", rsctmp, params=params, interval_ms=0).code == 7
    assert run(site, "stop", rsctmp, params=params).code == 0


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"config": "/nonexistent/bacula-dir.conf"}, 5, "does not exist"),
        ({"port": "ninety-one-oh-one"}, 6, "not a TCP port"),
        ({"config": "relative.conf"}, 6, "absolute path"),
        ({"check_timeout": "soon"}, 6, "not a duration"),
        ({"user": "no-such-user"}, 5, "does not exist"),
        ({"job_wait": "x"}, 6, "not a duration"),
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
    spaced = site.etc / "my dir.conf"
    shutil.copy(site.dir_conf, spaced)
    os.chown(spaced, 0, site.dir_conf.stat().st_gid)
    params = {"config": str(spaced), "user": "", "group": "", "address": "", "port": ""}
    assert run(site, "start", rsctmp, params=params).code == 0
    assert run(site, "monitor", rsctmp, params=params, depth=10).code == 0
    assert run(site, "stop", rsctmp, params=params).code == 0


def test_two_directors_do_not_interfere(
    site_factory: SiteFactory, tmp_path: Path, ocf_root: Path
) -> None:
    one, two = site_factory(name="one"), site_factory(name="two")
    rsc = tmp_path / "rsc"
    rsc.mkdir()
    for site, inst in ((one, "dir-one"), (two, "dir-two")):
        assert run(site, "start", rsc, instance=inst).code == 0
    assert run(one, "stop", rsc, instance="dir-one").code == 0
    assert run(two, "monitor", rsc, instance="dir-two", depth=20).code == 0
    assert run(one, "monitor", rsc, instance="dir-one").code == 7
    assert run(two, "stop", rsc, instance="dir-two").code == 0


def test_stop_logs_the_jobs_it_interrupts(
    site_factory: SiteFactory, rsctmp: Path, tmp_path: Path, ocf_root: Path
) -> None:
    site = site_factory()
    assert run(site, "start", rsctmp).code == 0
    # No storage daemon runs: the job waits for it, which is "running" for the director.
    out = bconsole(site, "run job=BackupSandbox yes")
    assert "Job queued" in out, out
    deadline = time.monotonic() + 15
    while "BackupSandbox" not in bconsole(site, "status dir").split("Running Jobs:")[1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    log = tmp_path / "ha.log"
    stop = run(site, "stop", rsctmp, extra_env={"HA_LOGFILE": str(log)})
    assert stop.code == 0, stop.stderr
    assert "interrupts JobId 1" in log.read_text()


def test_agent_runs_without_pythonpath_under_a_bare_environment(ocf_root: Path) -> None:
    agent = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / AGENT
    out = subprocess.run([str(agent), "monitor"], env={}, capture_output=True, text=True)
    # A probe with every default: /etc/bacula/bacula-dir.conf exists but no director runs.
    assert out.returncode in (0, 7), out.stderr
    assert "Traceback" not in out.stderr
    assert sys.executable  # the interpreter the shebang names exists
