"""The bacula-sd agent: a storage daemon, checked down to its archive devices."""

from __future__ import annotations

import os
import stat

from ..bacula import protocol
from ..bacula.config import Resources
from ..bacula.daemon import (
    Daemon,
    DaemonAgent,
    DaemonParams,
    Kind,
    common_actions,
    common_parameters,
    passwords_of,
)
from ..ocf.env import Environment
from ..ocf.errors import GenericError
from ..ocf.log import Logger
from ..ocf.metadata import MetaData, Parameter
from ..ocf.status import OCFStatus

KIND = Kind(
    agent="bacula-sd",
    binary="/usr/sbin/bacula-sd",
    config="/etc/bacula/bacula-sd.conf",
    json_tool="bsdjson",
    resource="Storage",
    port_key="SdPort",
    address_key="SdAddress",
    default_port=9103,
    title="storage daemon",
)

METADATA = MetaData(
    name="bacula-sd",
    version="0.1.0",
    shortdesc="Bacula storage daemon",
    longdesc=(
        "Runs a Bacula storage daemon (bacula-sd); several can run on one node, each with its "
        "own configuration, port and working directory. monitor depth 0 checks the process; "
        "depth 10 authenticates as the configured director, so a wedged daemon fails; depth "
        "20 checks every Device's Archive Device: a directory must exist, be writable by the "
        "daemon's user on a read-write filesystem and, when archive_mounts is set, lie on one "
        "of those mounted filesystems (not on the bare mount point of an unmounted one); a "
        "tape or changer device node must exist. The storage daemon has no configuration "
        "reload (it needs a restart), so no reload is advertised. It cannot list the jobs a "
        "stop interrupts without its director; the director's log shows them."
    ),
    parameters=(
        *common_parameters(KIND),
        Parameter(
            "archive_mounts",
            "mount points the archive devices must be on",
            "Space-separated mount points (e.g. the backup filesystem of this storage daemon). "
            "When set, the depth-20 monitor fails unless every file-based Archive Device lies "
            "on one of these filesystems, mounted. Empty: no mount check.",
            default="",
        ),
    ),
    actions=common_actions(),
)


class StorageAgent(DaemonAgent):
    kind = KIND
    metadata = METADATA

    def answer(
        self, p: DaemonParams, res: Resources, daemon: Daemon, timeout: float, log: Logger
    ) -> None:
        director_probe(res, daemon, timeout, "sd")

    def deep_check(
        self, p: DaemonParams, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> OCFStatus | None:
        mounts = tuple(os.path.normpath(m) for m in env.param("archive_mounts").split())
        uid, gids = _account(p.user, p.group)
        mounted = _mount_points() if mounts else {}
        for device in res.all("Device"):
            name = str(device.get("Name", "?"))
            path = str(device.get("ArchiveDevice", ""))
            _check_device(name, path, mounts, mounted, uid, gids)
        for changer in res.all("Autochanger"):
            path = str(changer.get("ChangerDevice", ""))
            if path and not os.path.exists(path):
                raise GenericError(f"autochanger {changer.get('Name')}: {path} does not exist")
        return None


def director_probe(res: Resources, daemon: Daemon, timeout: float, which: str) -> None:
    """Authenticate to a storage or file daemon as the first director it knows."""
    directors = passwords_of(res, "Director")
    if not directors:
        raise GenericError(f"{res.path} names no Director: nothing may talk to this daemon")
    name, password = next(iter(directors.items()))
    try:
        protocol.director_probe(
            daemon.address, daemon.port, name, password, timeout, "sd" if which == "sd" else "fd"
        )
    except protocol.AuthRejected:
        return  # it answered
    except protocol.ProtocolError as exc:
        raise GenericError(f"no answer on {daemon.address}:{daemon.port}: {exc}") from None


def _check_device(
    name: str,
    path: str,
    mounts: tuple[str, ...],
    mounted: dict[str, str],
    uid: int,
    gids: set[int],
) -> None:
    if path.startswith("/dev/"):
        # A tape drive: the node must exist (udev names it); its media are not our concern.
        try:
            mode = os.stat(path).st_mode
        except OSError:
            raise GenericError(f"device {name}: {path} does not exist") from None
        if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
            raise GenericError(f"device {name}: {path} is not a device node")
        return
    if not os.path.isdir(path):
        raise GenericError(f"device {name}: archive directory {path} is missing")
    if mounts:
        mount = _mount_of(path, mounted)
        if mount not in mounts:
            raise GenericError(
                f"device {name}: {path} is not on its backup filesystem "
                f"({' or '.join(mounts)} not mounted)"
            )
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        raise GenericError(f"device {name}: {path} is on a read-only filesystem")
    if not _writable(path, uid, gids):
        raise GenericError(f"device {name}: {path} is not writable by the storage daemon")


def _mount_points() -> dict[str, str]:
    """Mount point -> filesystem source, from this mount namespace."""
    points: dict[str, str] = {}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as handle:
        for line in handle:
            fields = line.split()
            # Octal escapes (\040 for a space) are how mountinfo writes odd characters.
            point = fields[4].encode().decode("unicode_escape")
            points[point] = fields[fields.index("-") + 2] if "-" in fields else ""
    return points


def _mount_of(path: str, mounted: dict[str, str]) -> str:
    """The mount point whose filesystem holds `path` (the longest mounted prefix)."""
    path = os.path.realpath(path)
    best = "/"
    for point in mounted:
        if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) > len(best):
            best = point
    return best


def _account(user: str, group: str) -> tuple[int, set[int]]:
    import grp
    import pwd

    pw = pwd.getpwnam(user)
    gids = {grp.getgrnam(group).gr_gid, pw.pw_gid}
    gids |= {g.gr_gid for g in grp.getgrall() if user in g.gr_mem}
    return pw.pw_uid, gids


def _writable(path: str, uid: int, gids: set[int]) -> bool:
    """Would `uid` be allowed to create files in `path`? (root's os.access says yes to all.)"""
    if uid == 0:
        return True
    st = os.stat(path)
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR and st.st_mode & stat.S_IXUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IWGRP and st.st_mode & stat.S_IXGRP)
    return bool(st.st_mode & stat.S_IWOTH and st.st_mode & stat.S_IXOTH)


AGENT = StorageAgent()
