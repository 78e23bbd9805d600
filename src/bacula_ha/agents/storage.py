"""The bacula-sd agent: a storage daemon, checked down to its archive devices."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping

from ..bacula.config import Resources
from ..bacula.daemon import (
    Daemon,
    DaemonAgent,
    DaemonParams,
    Kind,
    common_actions,
    common_parameters,
    passwords_of,
    requires_tls,
)
from ..ocf.env import Environment
from ..ocf.errors import GenericError, NotConfiguredError
from ..ocf.log import Logger
from ..ocf.metadata import MetaData, Parameter
from ..ocf.status import OCFStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

KIND = Kind(
    agent="bacula-sd",
    json_tool="bsdjson",
    resource="Storage",
    port_key="SdPort",
    address_key="SdAddress",
    default_port=9103,
    title="storage daemon",
)


def archive_mounts(value: str) -> tuple[str, ...]:
    """The archive_mounts parameter: absolute mount points, normalised. Raises 6."""
    mounts = []
    for mount in value.split():
        if not mount.startswith("/"):
            raise NotConfiguredError(f"parameter archive_mounts: {mount!r} is not an absolute path")
        mounts.append(os.path.normpath(mount))
    return tuple(mounts)


METADATA = MetaData(
    name="bacula-sd",
    version="0.1.0",
    shortdesc="Bacula storage daemon",
    longdesc=(
        "Runs a Bacula storage daemon (bacula-sd); several can run on one node, each with its "
        "own configuration, port and working directory. monitor depth 0 checks the process; "
        "depth 10 authenticates as the configured director, so a wedged daemon fails; depth "
        "20 checks every Device's Archive Device as the daemon's user sees it: a directory "
        "must exist, be writable by that user (not merely by root) on a read-write filesystem "
        "and, when archive_mounts is set, lie on one of those filesystems, mounted (not on the "
        "bare mount point of an unmounted one), and in any case still on the filesystem it "
        "was on when the daemon started (a backup filesystem unmounted under a running daemon "
        "fails the check even without archive_mounts); a tape drive or changer node must "
        "exist and be readable and writable; FIFO devices are not checked. Probes never check "
        "the archive devices. "
        "The storage daemon has no configuration reload (it needs a restart), so no reload is "
        "advertised. It cannot list the jobs a stop interrupts without its director; the "
        "director's log shows them."
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
            rule=archive_mounts,
        ),
    ),
    actions=common_actions(),
)


class StorageAgent(DaemonAgent[DaemonParams]):
    kind = KIND
    metadata = METADATA
    recorded = ("Device", "Autochanger")

    def answer(
        self, p: DaemonParams, res: Resources, daemon: Daemon, timeout: float, log: Logger
    ) -> None:
        director_probe(res, daemon, timeout, "sd")

    def start_facts(self, p: DaemonParams, res: Resources) -> dict[str, Any]:
        return {"filesystems": _filesystems(_device_checks(res))}

    def deep_check(
        self, p: DaemonParams, res: Resources, daemon: Daemon, env: Environment, log: Logger
    ) -> OCFStatus | None:
        if env.is_probe:
            # A probe asks only whether the daemon runs here; shared storage is never
            # required by a probe (it may be mounted after the probe, or on another node).
            return None
        mounts = archive_mounts(p.extra.get("archive_mounts", ""))
        checks = _device_checks(res)
        mounted = _mount_points() if mounts else {}
        with _Credentials(p.user, p.group):
            problems = _problems(checks, mounts, mounted)
        known = {label for label, _ in problems}
        moved = _moved(checks, self.recorded_facts(env).get("filesystems") or {})
        problems += [(label, problem) for label, problem in moved if label not in known]
        for label, problem in problems:
            log.warning(f"{label}: {problem}")
        if problems:
            # The first device by name and how many more: the reason is cut at 128 characters.
            label, problem = problems[0]
            more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
            raise GenericError(f"{label}{more}: {problem}")
        return None


def director_probe(res: Resources, daemon: Daemon, timeout: float, which: str) -> None:
    """Authenticate to a storage or file daemon as the first director it knows."""
    directors = passwords_of(res, "Director")
    if not directors:
        raise GenericError(f"{res.path} names no Director: nothing may talk to this daemon")
    name, password = next(iter(directors.items()))
    from ..bacula import protocol  # only monitors of depth 10 and more need it

    tls = requires_tls(res, "Director", name)  # then its challenge is the answer
    try:
        protocol.director_probe(
            daemon.address,
            daemon.port,
            name,
            password,
            timeout,
            "sd" if which == "sd" else "fd",
            requires_tls=tls,
        )
    except protocol.AuthRejected:
        return  # it answered
    except protocol.ProtocolError as exc:
        raise GenericError(f"no answer on {daemon.address}:{daemon.port}: {exc}") from None


# What depth 20 checks: (label for the reason, path, "dir" | "node").
_Check = tuple[str, str, str]


def _filesystems(checks: list[_Check]) -> dict[str, list[object]]:
    """Archive directory -> [device number, mount point] of the filesystem it lies on now."""
    found: dict[str, list[object]] = {}
    mounts: tuple[str, ...] | None = None
    for _label, path, what in checks:
        if what != "dir":
            continue
        try:
            dev = os.stat(path).st_dev
        except OSError:
            continue
        if mounts is None:
            mounts = tuple(_mount_points())
        real = os.path.realpath(path)
        found[path] = [dev, _owning_mount(real, mounts) or "/"]
    return found


def _moved(checks: list[_Check], at_start: Mapping[str, object]) -> list[tuple[str, str]]:
    """Archive directories no longer on the filesystem they were on when the daemon started:
    the backup filesystem was unmounted (volumes now land on the root filesystem) or
    replaced. Caught without archive_mounts."""
    problems = []
    for label, path, what in checks:
        was = at_start.get(path)
        if what != "dir" or not isinstance(was, list) or len(was) != 2:
            continue
        try:
            dev = os.stat(path).st_dev
        except OSError:
            continue  # reported as missing by _problems
        if dev != was[0]:
            problems.append((label, f"not on its filesystem of start, {was[1]} (unmounted?)"))
    return problems


def _device_checks(res: Resources) -> list[_Check]:
    """Every Archive Device and changer node of the configuration, each once."""
    checks: list[_Check] = []
    seen: set[str] = set()

    def add(label: str, path: str, what: str) -> None:
        if path and path not in seen:
            seen.add(path)
            checks.append((label, path, what))

    for device in res.all("Device"):
        name = str(device.get("Name", "?"))
        path = str(device.get("ArchiveDevice", ""))
        dtype = str(device.get("DeviceType", "")).lower()
        if dtype == "fifo":
            continue  # a named pipe that a job's program makes and removes; nothing to check
        # Without a Device Type Bacula decides by what the path is; a path under /dev is a
        # tape drive (udev names it), anything else a directory of volume files.
        tape = dtype in ("tape", "vtl") or (not dtype and path.startswith("/dev/"))
        add(f"device {name}", path, "node" if tape else "dir")
        if device.get("Autochanger"):
            add(f"device {name} changer", str(device.get("ChangerDevice", "")), "node")
    for changer in res.all("Autochanger"):
        name = str(changer.get("Name", "?"))
        add(f"autochanger {name}", str(changer.get("ChangerDevice", "")), "node")
    return checks


def _problems(
    checks: list[_Check], mounts: tuple[str, ...], mounted: dict[str, str]
) -> list[tuple[str, str]]:
    """(label, what is wrong) of each failing device, as seen by the process that runs this."""
    problems = []
    for label, path, what in checks:
        problem = _node_problem(path) if what == "node" else _dir_problem(path, mounts, mounted)
        if problem:
            problems.append((label, problem))
    return problems


def _node_problem(path: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as exc:
        return f"{path}: {exc.strerror}"
    if not (stat.S_ISCHR(mode) or stat.S_ISBLK(mode)):
        return f"{path} is not a device node"
    if not os.access(path, os.R_OK | os.W_OK):
        return f"{path} is not readable and writable by the storage daemon's user"
    return None


def _dir_problem(path: str, mounts: tuple[str, ...], mounted: dict[str, str]) -> str | None:
    if mounts:
        # First, so that the directory left on the bare mount point of an unmounted backup
        # filesystem (present and writable) is not taken for the real one.
        real = os.path.realpath(path)
        expected = _owning_mount(real, tuple(os.path.realpath(m) for m in mounts))
        if expected is None:
            return f"{path} is not under archive_mounts ({' '.join(mounts)})"
        if expected not in mounted:
            return f"backup filesystem {expected} is not mounted"
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return f"archive directory {path} is missing"
    except OSError as exc:
        return f"archive directory {path}: {exc.strerror}"
    if not stat.S_ISDIR(st.st_mode):
        return f"archive device {path} is not a directory"
    if os.statvfs(path).f_flag & os.ST_RDONLY:
        return f"{path} is on a read-only filesystem"
    # Run as the daemon's user, so the kernel judges: modes of the path and its parents,
    # ACLs, and not root's right to write anywhere.
    if not os.access(path, os.W_OK | os.X_OK):
        return f"{path} is not writable by the storage daemon's user"
    return None


def _owning_mount(path: str, mounts: tuple[str, ...]) -> str | None:
    """The longest of `mounts` that holds `path`, or None."""
    best: str | None = None
    for mount in mounts:
        holds = path == mount or path.startswith(mount.rstrip("/") + "/")
        if holds and (best is None or len(mount) > len(best)):
            best = mount
    return best


def _mount_points() -> dict[str, str]:
    """Mount point -> filesystem source, from this mount namespace."""
    points: dict[str, str] = {}
    with open("/proc/self/mountinfo", "rb") as handle:
        for line in handle:
            fields = line.split()
            if b"-" not in fields:
                continue
            source = fields[fields.index(b"-") + 2]
            points[_unescape(fields[4])] = _unescape(source)
    return points


def _unescape(field: bytes) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (\\040)."""
    if b"\\" not in field:
        return os.fsdecode(field)
    import re

    raw = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8)]), field)
    return os.fsdecode(raw)


class _Credentials:
    """The daemon's user, group and groups as this process's real and effective ids.

    Inside `with _Credentials(user, group)`, stat and access() judge as the kernel will for
    the daemon (root may write where the daemon may not; ACLs count). The saved ids stay
    root's, which is what allows switching back. When not root (a test, a manual run), or
    for a daemon that runs as root, nothing changes. In-process rather than in a forked
    child: a fork costs more than every check it would make, and the agent is single-threaded.
    """

    def __init__(self, user: str, group: str) -> None:
        self.uid, self.gid, self.groups = _account(user, group)
        self.switch = os.geteuid() == 0 and self.uid != 0
        self.old: tuple[tuple[int, int, int], tuple[int, int, int], list[int]] | None = None

    def __enter__(self) -> None:
        if not self.switch:
            return
        self.old = (os.getresuid(), os.getresgid(), os.getgroups())
        saved_uid, saved_gid = self.old[0][2], self.old[1][2]
        try:
            os.setgroups(self.groups)
            os.setresgid(self.gid, self.gid, saved_gid)
            os.setresuid(self.uid, self.uid, saved_uid)
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        if self.old is None:
            return
        uids, gids, groups = self.old
        os.setresuid(*uids)  # first: back to root, who may set the groups
        os.setresgid(*gids)
        os.setgroups(groups)
        self.old = None


def _account(user: str, group: str) -> tuple[int, int, list[int]]:
    """uid, gid and groups the daemon runs with: Bacula's drop() does initgroups(user, gid)."""
    import grp
    import pwd

    pw = pwd.getpwnam(user)
    gid = grp.getgrnam(group).gr_gid if group else pw.pw_gid
    return pw.pw_uid, gid, sorted(set(os.getgrouplist(user, gid)))


AGENT = StorageAgent()
