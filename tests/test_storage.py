"""The bacula-sd agent against real storage daemons: contract, two daemons, faults, devices."""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bacula_ha.agents import storage
from bacula_ha.sandbox.bacula import BaculaSite

from .fixtures_agents import SYSTEM_OCF_ROOT, AgentRun, run_agent
from .fixtures_bacula import SiteFactory

AGENT = "bacula-sd"
BACULA = (pwd.getpwnam("bacula").pw_uid, grp.getgrnam("bacula").gr_gid)


def sd_params(site: BaculaSite, index: int = 0, **extra: str) -> dict[str, str]:
    return {"config": str(site.sd_conf(index)), "check_timeout": "2", **extra}


def sd_pidfile(site: BaculaSite, index: int = 0) -> Path:
    return next(site.workdir(f"sd{index}").glob("bacula-sd.*.pid"))


def sd_pid(site: BaculaSite, index: int = 0) -> int:
    return int(sd_pidfile(site, index).read_text().strip())


def gone(pid: int) -> bool:
    """No such process, or only its zombie (the container's init may not reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def run(site: BaculaSite, action: str, tmp: Path, index: int = 0, **kw: object) -> AgentRun:
    params = sd_params(site, index)
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


# -- mounts the tests make (always undone) ------------------------------------------------


def _mounted(point: Path) -> bool:
    with open("/proc/self/mountinfo", "rb") as handle:
        return any(line.split()[4] == os.fsencode(point) for line in handle)


def _umount(point: Path) -> None:
    """Unmount every layer at `point`; lazily when the daemon holds something open there."""
    for _ in range(5):
        if not _mounted(point):
            return
        if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(point)], capture_output=True)
    assert not _mounted(point), f"{point} is still mounted"


Mounter = Callable[[Path], str]


@pytest.fixture
def loop_fs(site_factory: SiteFactory, tmp_path: Path) -> Iterator[Mounter]:
    """Mount a fresh loop-backed ext4 on a directory; unmounted and detached at teardown.

    Depends on site_factory so that it is torn down first: the sites' directories are
    removed only once nothing is mounted inside them.
    """
    made: list[tuple[Path, str, Path]] = []

    def mount(point: Path) -> str:
        image = tmp_path / f"archive{len(made)}.img"
        subprocess.run(["truncate", "-s", "8M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)
        dev = subprocess.run(
            ["losetup", "-f", "--show", str(image)], check=True, capture_output=True, text=True
        ).stdout.strip()
        made.append((point, dev, image))
        subprocess.run(["mount", dev, str(point)], check=True)
        os.chown(point, *BACULA)
        return dev

    try:
        yield mount
    finally:
        for point, dev, image in reversed(made):
            _umount(point)
            subprocess.run(["losetup", "-d", dev], capture_output=True)
            image.unlink(missing_ok=True)


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], None]]:
    """Make a directory a read-only bind mount of itself; undone at teardown."""
    points: list[Path] = []

    def make(point: Path) -> None:
        points.append(point)
        subprocess.run(["mount", "--bind", str(point), str(point)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(point)], check=True)

    try:
        yield make
    finally:
        for point in reversed(points):
            _umount(point)


# -- contract -------------------------------------------------------------------------------


def test_lifecycle_all_depths_with_ten_devices(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory(devices_per_sd=10)
    probe = run(site, "monitor", rsctmp, interval_ms=0)
    assert probe.code == 7, probe.stderr
    assert run(site, "validate-all", rsctmp).code == 0
    started(site, rsctmp)
    for depth in (0, 10, 20):
        result = run(site, "monitor", rsctmp, depth=depth)
        assert result.code == 0, (depth, result.stderr)
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 0  # probe, running
    assert run(site, "start", rsctmp).code == 0  # start on a running daemon succeeds
    assert run(site, "stop", rsctmp).code == 0
    assert run(site, "stop", rsctmp).code == 0  # and stop on a stopped one
    stopped = run(site, "monitor", rsctmp, depth=20)
    assert stopped.code == 7 and "not running" in stopped.reason
    assert not list(site.workdir("sd0").glob("*.pid"))


def test_probe_finds_a_daemon_started_outside_the_cluster(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    subprocess.run(
        ["/usr/sbin/bacula-sd", "-c", str(site.sd_conf(0)), "-u", "bacula", "-g", "bacula"],
        check=True,
    )
    deadline = time.monotonic() + 10
    while run(site, "monitor", rsctmp, interval_ms=0).code != 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert run(site, "monitor", rsctmp, depth=20).code == 0
    assert run(site, "stop", rsctmp).code == 0
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7


def test_ocf_tester_passes(site_factory: SiteFactory, ocf_root: Path) -> None:
    site = site_factory()
    args = [a for k, v in sd_params(site).items() for a in ("-o", f"{k}={v}")]
    agent = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / AGENT
    out = subprocess.run(
        ["ocf-tester", "-n", "sd-test", *args, str(agent)],
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
    opts = [a for k, v in sd_params(site).items() for a in ("--option", f"{k}={v}")]
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


def test_meta_data_advertises_no_reload_and_a_unique_config(ocf_root: Path) -> None:
    agent = SYSTEM_OCF_ROOT / "resource.d" / "bacula" / AGENT
    out = subprocess.run([str(agent), "meta-data"], capture_output=True, text=True, env={})
    assert out.returncode == 0
    root = ET.fromstring(out.stdout)
    actions = {a.get("name") for a in root.iter("action")}
    assert actions >= {"start", "stop", "monitor", "validate-all", "meta-data"}
    assert not actions & {"reload", "reload-agent"}
    depths = {a.get("depth") for a in root.iter("action") if a.get("name") == "monitor"}
    assert depths == {"0", "10", "20"}
    config = next(p for p in root.iter("parameter") if p.get("name") == "config")
    assert config.get("unique-group")
    longdesc = root.findtext("longdesc") or ""
    assert "no configuration reload" in longdesc


def test_reload_is_not_implemented(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    for action in ("reload", "reload-agent"):
        result = run(site, action, rsctmp)
        assert result.code == 3 and "unknown action" in result.reason


# -- two storage daemons on one node -------------------------------------------------------


def test_two_storage_daemons_do_not_interfere(
    site_factory: SiteFactory, tmp_path: Path, ocf_root: Path
) -> None:
    site = site_factory(n_sd=2, devices_per_sd=10)
    assert site.sd_ports[0] != site.sd_ports[1]
    rsc = tmp_path / "rsc"
    rsc.mkdir()
    for index, inst in ((0, "sd-one"), (1, "sd-two")):
        result = run(site, "start", rsc, index=index, instance=inst)
        assert result.code == 0, result.stderr
    for index, inst in ((0, "sd-one"), (1, "sd-two")):
        assert run(site, "monitor", rsc, index=index, instance=inst, depth=20).code == 0
    one, two = sd_pid(site, 0), sd_pid(site, 1)
    assert one != two
    assert run(site, "stop", rsc, index=0, instance="sd-one").code == 0
    assert run(site, "monitor", rsc, index=0, instance="sd-one").code == 7
    deep = run(site, "monitor", rsc, index=1, instance="sd-two", depth=20)
    assert deep.code == 0, deep.stderr
    assert sd_pid(site, 1) == two and not gone(two)
    assert gone(one)
    assert run(site, "monitor", rsc, index=1, instance="sd-two", interval_ms=0).code == 0
    assert run(site, "stop", rsc, index=1, instance="sd-two").code == 0
    assert gone(two)


# -- process faults -----------------------------------------------------------------------


def test_sigstop_fails_depth_10_within_its_bound(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pid = sd_pid(site)
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
    assert run(site, "monitor", rsctmp, depth=20).code == 0
    assert run(site, "stop", rsctmp).code == 0


def test_stop_of_a_stopped_daemon_escalates(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pid = sd_pid(site)
    os.kill(pid, signal.SIGSTOP)
    assert run(site, "stop", rsctmp, timeout_ms=10_000).code == 0
    assert gone(pid)


def test_kill_9_with_stale_pid_file_then_restart(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pid = sd_pid(site)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    assert sd_pidfile(site).exists()  # the stale pid file is still there
    for depth in (0, 10, 20):
        gone = run(site, "monitor", rsctmp, depth=depth)
        assert gone.code == 7 and "not running" in gone.reason
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7
    again = run(site, "start", rsctmp)
    assert again.code == 0, again.stderr
    assert sd_pid(site) != pid
    assert run(site, "monitor", rsctmp, depth=20).code == 0
    assert run(site, "stop", rsctmp).code == 0


def test_pid_file_naming_another_process(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    started(site, rsctmp)
    pidfile = sd_pidfile(site)
    os.kill(sd_pid(site), signal.SIGKILL)
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


# -- archive device faults (depth 20) -----------------------------------------------------


@pytest.mark.parametrize("layout", ["devices-inside", "device-is-mount-point"])
def test_unmounted_backup_filesystem_fails_depth_20(
    site_factory: SiteFactory, loop_fs: Mounter, rsctmp: Path, ocf_root: Path, layout: str
) -> None:
    if layout == "devices-inside":
        # The devices' directories exist on the root filesystem too (made before the mount):
        # after the unmount they are present and writable, only not on the backup filesystem.
        site = site_factory(devices_per_sd=3)
        point = site.archive_dir(0, 0).parent
        loop_fs(point)
        for dev in range(3):
            site.archive_dir(0, dev).mkdir()
            os.chown(site.archive_dir(0, dev), *BACULA)
    else:
        # The Archive Device is the mount point itself: unmounted, it is a bare directory.
        site = site_factory(devices_per_sd=1)
        point = site.archive_dir(0, 0)
        loop_fs(point)
    params = {"archive_mounts": f"{point}/"}
    started(site, rsctmp, params=params)
    assert run(site, "monitor", rsctmp, depth=20, params=params).code == 0
    _umount(point)
    assert site.archive_dir(0, 0).is_dir()  # the directory under the mount point remains
    failed = run(site, "monitor", rsctmp, depth=20, params=params)
    assert failed.code == 1, failed.stderr
    more = " (+2 more)" if layout == "devices-inside" else ""
    assert failed.reason.startswith(f"device sandbox-sd0-dev0{more}: backup filesystem")
    assert f"{point} is not mounted" in failed.reason
    # The daemon itself is fine, and a probe never asks for shared storage.
    assert run(site, "monitor", rsctmp, depth=10, params=params).code == 0
    assert run(site, "monitor", rsctmp, depth=20, interval_ms=0, params=params).code == 0
    # Without archive_mounts the agent cannot know, and says nothing.
    assert run(site, "monitor", rsctmp, depth=20).code == 0
    assert run(site, "stop", rsctmp, params=params).code == 0


def test_archive_directory_on_a_read_only_filesystem(
    site_factory: SiteFactory,
    read_only: Callable[[Path], None],
    rsctmp: Path,
    ocf_root: Path,
) -> None:
    site = site_factory(devices_per_sd=2)
    started(site, rsctmp)
    read_only(site.archive_dir(0, 1))
    failed = run(site, "monitor", rsctmp, depth=20)
    assert failed.code == 1, failed.stderr
    assert "device sandbox-sd0-dev1" in failed.reason and "read-only" in failed.reason
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    assert run(site, "stop", rsctmp).code == 0


@pytest.mark.parametrize("how", ["directory-mode", "parent-not-searchable"])
def test_archive_directory_not_writable_by_the_daemon_user(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path, how: str
) -> None:
    # Root (the agent) could still write there; the daemon, running as bacula, cannot.
    site = site_factory(devices_per_sd=2)
    started(site, rsctmp)
    archive = site.archive_dir(0, 1)
    if how == "directory-mode":
        archive.chmod(0o555)
        first, words = "device sandbox-sd0-dev1:", "not writable by the storage daemon's user"
    else:
        # Both devices live under that parent: both fail, the reason names the first.
        os.chown(archive.parent, 0, 0)
        archive.parent.chmod(0o700)
        first, words = "device sandbox-sd0-dev0 (+1 more):", "Permission denied"
    assert os.access(archive, os.W_OK)  # for root
    failed = run(site, "monitor", rsctmp, depth=20)
    assert failed.code == 1, failed.stderr
    assert failed.reason.startswith(first) and words in failed.reason
    # The right user in the right place is fine again.
    archive.chmod(0o750)
    os.chown(archive.parent, *BACULA)
    assert run(site, "monitor", rsctmp, depth=20).code == 0
    assert run(site, "stop", rsctmp).code == 0


def test_missing_archive_directory(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory(devices_per_sd=2)
    started(site, rsctmp)
    site.archive_dir(0, 1).rmdir()
    failed = run(site, "monitor", rsctmp, depth=20)
    assert failed.code == 1
    assert "device sandbox-sd0-dev1: archive directory" in failed.reason
    assert "missing" in failed.reason
    assert run(site, "stop", rsctmp).code == 0


TAPE = """
Autochanger {
  Name = Loader0
  Device = Tape0
  Changer Device = %(changer)s
  Changer Command = "/bin/true %%c %%o %%S %%a %%d"
}
Device {
  Name = Tape0
  Media Type = LTO
  Device Type = Tape
  Archive Device = %(tape)s
  Autochanger = yes
  Changer Device = %(changer)s
  Always Open = no
}
"""


def test_tape_and_changer_device_nodes(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    site = site_factory()
    conf = site.sd_conf(0)
    original = conf.read_text()
    # /dev/null stands for a drive that is there: a character device bacula may open.
    conf.write_text(original + TAPE % {"tape": "/dev/null", "changer": "/dev/null"})
    started(site, rsctmp)
    assert run(site, "monitor", rsctmp, depth=20).code == 0
    assert run(site, "stop", rsctmp).code == 0
    # The same drive, gone (not plugged in, renamed by udev): the daemon starts without it,
    # but depth 20 names it.
    missing = "/dev/nst-bacula-ha-missing"
    conf.write_text(original + TAPE % {"tape": missing, "changer": "/dev/null"})
    started(site, rsctmp)
    assert run(site, "monitor", rsctmp, depth=10).code == 0
    failed = run(site, "monitor", rsctmp, depth=20)
    assert failed.code == 1, failed.stderr
    assert failed.reason.startswith(f"device Tape0: {missing} does not exist")
    assert run(site, "stop", rsctmp).code == 0
    # A changer node that is a plain file is no changer.
    conf.write_text(original + TAPE % {"tape": "/dev/null", "changer": str(site.etc)})
    started(site, rsctmp)
    failed = run(site, "monitor", rsctmp, depth=20)
    assert failed.code == 1 and "changer" in failed.reason and "not a device node" in failed.reason
    assert run(site, "stop", rsctmp).code == 0


# -- configuration and parameters ---------------------------------------------------------


def test_broken_config(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    conf = site.sd_conf(0)
    original = conf.read_text()
    conf.write_text(original + "\nDevice {\n  Nmae = x\n}\n")
    refused = run(site, "start", rsctmp)
    assert refused.code == 6 and str(conf) in refused.reason, refused.stderr
    assert run(site, "validate-all", rsctmp).code == 6
    assert run(site, "monitor", rsctmp, interval_ms=0).code == 7
    assert run(site, "stop", rsctmp).code == 0
    # Broken under a running daemon (an admin mid-edit): degraded, never 6, and no reload.
    conf.write_text(original)
    started(site, rsctmp)
    pid = sd_pid(site)
    conf.write_text(original + "\nDevice {\n  Nmae = x\n}\n")
    assert run(site, "monitor", rsctmp, depth=0).code == 0
    degraded = run(site, "monitor", rsctmp, depth=20)
    assert degraded.code == 190 and "configuration on disk" in degraded.reason
    assert run(site, "reload", rsctmp).code == 3
    assert sd_pid(site) == pid
    stop = run(site, "stop", rsctmp)  # found by its command line, without the configuration
    assert stop.code == 0, stop.stderr
    assert gone(pid)


def test_missing_binary(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory()
    params = {"binary": "/usr/sbin/no-such-bacula-sd"}
    start = run(site, "start", rsctmp, params=params)
    assert start.code == 5 and "not installed" in start.reason
    assert run(site, "monitor", rsctmp, params=params, interval_ms=0).code == 7
    assert run(site, "stop", rsctmp, params=params).code == 0


@pytest.mark.parametrize(
    ("params", "code", "words"),
    [
        ({"config": "/nonexistent/bacula-sd.conf"}, 5, "does not exist"),
        ({"port": "ninety-one-oh-three"}, 6, "not a TCP port"),
        ({"port": "70000"}, 6, "not a TCP port"),
        ({"config": "relative.conf"}, 6, "absolute path"),
        ({"binary": "bacula-sd"}, 6, "absolute path"),
        ({"check_timeout": "soon"}, 6, "not a duration"),
        ({"user": "no-such-user"}, 5, "does not exist"),
        ({"group": "no-such-group"}, 5, "does not exist"),
        ({"archive_mounts": "/srv/backup srv/other"}, 6, "not an absolute path"),
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
    spaced = site.etc / "my sd.conf"
    shutil.copy(site.sd_conf(0), spaced)
    os.chown(spaced, 0, BACULA[1])
    params = {
        "config": str(spaced),
        "user": "",
        "group": "",
        "address": "",
        "port": "",
        "archive_mounts": "",
    }
    started(site, rsctmp, params=params)
    assert run(site, "monitor", rsctmp, params=params, depth=20).code == 0
    assert run(site, "stop", rsctmp, params=params).code == 0


# -- the pieces of the device check ---------------------------------------------------------


def test_device_checks_run_with_the_daemon_credentials() -> None:
    before = (os.getresuid(), os.getresgid(), os.getgroups())
    with storage._Credentials("bacula", "bacula"):
        assert os.getresuid()[:2] == (BACULA[0], BACULA[0])
        assert os.getresgid()[:2] == (BACULA[1], BACULA[1])
        assert not os.access("/root", os.W_OK)
    with pytest.raises(ZeroDivisionError), storage._Credentials("bacula", "bacula"):
        _ = 1 / 0
    assert (os.getresuid(), os.getresgid(), os.getgroups()) == before


def test_mountinfo_escapes() -> None:
    assert storage._unescape(b"/srv/back\\040up\\011x") == "/srv/back up\tx"
    assert storage.archive_mounts(" /srv/a//b/  /srv/c ") == ("/srv/a/b", "/srv/c")
