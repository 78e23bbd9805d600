"""The bacula-sd agent against real storage daemons: its devices, mounts, tapes, read-only.

What it shares with the other daemon agents is in test_daemon_contract.py.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bacula_ha.agents import storage

from .fixtures_bacula import STORAGE, SiteFactory
from .tiers import slow_fixture

BACULA = (pwd.getpwnam("bacula").pw_uid, grp.getgrnam("bacula").gr_gid)


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
@slow_fixture
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
    sd = STORAGE.on(site)
    params = {"archive_mounts": f"{point}/"}
    sd.start(rsctmp, params=params)
    assert sd.run("monitor", rsctmp, depth=20, params=params).code == 0
    _umount(point)
    assert site.archive_dir(0, 0).is_dir()  # the directory under the mount point remains
    failed = sd.run("monitor", rsctmp, depth=20, params=params)
    assert failed.code == 1, failed.stderr
    more = " (+2 more)" if layout == "devices-inside" else ""
    assert failed.reason.startswith(f"device sandbox-sd0-dev0{more}: backup filesystem")
    assert f"{point} is not mounted" in failed.reason
    # The daemon itself is fine, and a probe never asks for shared storage.
    assert sd.run("monitor", rsctmp, depth=10, params=params).code == 0
    assert sd.run("monitor", rsctmp, depth=20, interval_ms=0, params=params).code == 0
    # Without archive_mounts, the filesystem recorded at start tells: it is no longer there.
    moved = sd.run("monitor", rsctmp, depth=20)
    assert moved.code == 1, moved.stderr
    assert moved.reason.startswith("device sandbox-sd0-dev0")
    assert "not on its filesystem of start" in moved.reason
    assert sd.run("stop", rsctmp, params=params).code == 0


def test_archive_directory_on_a_read_only_filesystem(
    site_factory: SiteFactory,
    read_only: Callable[[Path], None],
    rsctmp: Path,
    ocf_root: Path,
) -> None:
    site = site_factory(devices_per_sd=2)
    sd = STORAGE.on(site)
    sd.start(rsctmp)
    read_only(site.archive_dir(0, 1))
    failed = sd.run("monitor", rsctmp, depth=20)
    assert failed.code == 1, failed.stderr
    assert "device sandbox-sd0-dev1" in failed.reason and "read-only" in failed.reason
    assert sd.run("monitor", rsctmp, depth=10).code == 0
    assert sd.run("stop", rsctmp).code == 0


@pytest.mark.parametrize("how", ["directory-mode", "parent-not-searchable"])
def test_archive_directory_not_writable_by_the_daemon_user(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path, how: str
) -> None:
    # Root (the agent) could still write there; the daemon, running as bacula, cannot.
    site = site_factory(devices_per_sd=2)
    sd = STORAGE.on(site)
    sd.start(rsctmp)
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
    failed = sd.run("monitor", rsctmp, depth=20)
    assert failed.code == 1, failed.stderr
    assert failed.reason.startswith(first) and words in failed.reason
    # The right user in the right place is fine again.
    archive.chmod(0o750)
    os.chown(archive.parent, *BACULA)
    assert sd.run("monitor", rsctmp, depth=20).code == 0
    assert sd.run("stop", rsctmp).code == 0


def test_missing_archive_directory(site_factory: SiteFactory, rsctmp: Path, ocf_root: Path) -> None:
    site = site_factory(devices_per_sd=2)
    sd = STORAGE.on(site)
    sd.start(rsctmp)
    site.archive_dir(0, 1).rmdir()
    failed = sd.run("monitor", rsctmp, depth=20)
    assert failed.code == 1
    assert "device sandbox-sd0-dev1: archive directory" in failed.reason
    assert "missing" in failed.reason
    assert sd.run("stop", rsctmp).code == 0


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
    sd = STORAGE.on(site)
    conf = site.sd_conf(0)
    original = conf.read_text()
    # /dev/null stands for a drive that is there: a character device bacula may open.
    conf.write_text(original + TAPE % {"tape": "/dev/null", "changer": "/dev/null"})
    sd.start(rsctmp)
    assert sd.run("monitor", rsctmp, depth=20).code == 0
    assert sd.run("stop", rsctmp).code == 0
    # The same drive, gone (not plugged in, renamed by udev): the daemon starts without it,
    # but depth 20 names it.
    missing = "/dev/nst-bacula-ha-missing"
    conf.write_text(original + TAPE % {"tape": missing, "changer": "/dev/null"})
    sd.start(rsctmp)
    assert sd.run("monitor", rsctmp, depth=10).code == 0
    failed = sd.run("monitor", rsctmp, depth=20)
    assert failed.code == 1, failed.stderr
    assert failed.reason.startswith(f"device Tape0: {missing} does not exist")
    assert sd.run("stop", rsctmp).code == 0
    # A changer node that is a plain file is no changer.
    conf.write_text(original + TAPE % {"tape": "/dev/null", "changer": str(site.etc)})
    sd.start(rsctmp)
    failed = sd.run("monitor", rsctmp, depth=20)
    assert failed.code == 1 and "changer" in failed.reason and "not a device node" in failed.reason
    assert sd.run("stop", rsctmp).code == 0


# -- the pieces of the device check ---------------------------------------------------------


@pytest.mark.root(reason="switching to the daemon's user needs root")
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
