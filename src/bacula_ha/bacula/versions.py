"""Bacula versions: a daemon's own, read once from its binary, and what each line changes."""

from __future__ import annotations

import json
import os

from ..ocf.command import run
from ..ocf.deadline import Deadline
from ..ocf.errors import OCFError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from ..ocf.record import dataclass

# The tables a director touches in every job; the rest (PathHierarchy, Snapshot, Events,
# Object...) are feature tables whose absence shows up later and less often.
_CORE_TABLES = (
    "Client",
    "Counters",
    "File",
    "FileSet",
    "Job",
    "JobMedia",
    "Log",
    "Media",
    "MediaType",
    "Path",
    "Pool",
    "Storage",
    "Version",
)
# Dropped in 11.0: file names moved into File.Filename.
FILENAME_TABLE = "Filename"

# How each line was checked: "tested" lines run in this project's test suite (9.6.7 from
# Debian 12, 13.0.3 built from ../shared/vendor by scripts/build-bacula); "source" lines were
# read from Bacula's own sources only (src/cats/cats.h BDB_VERSION, the make_*_tables and
# update_*_tables scripts, ua_cmds.c).
TESTED = "tested"
FROM_SOURCE = "source"


@dataclass(frozen=True)
class Version:
    """A Bacula release, as `bacula-dir -?` prints it (`Version: 13.0.3 (02 May 2023)`)."""

    major: int
    minor: int
    patch: int

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """`13.0.3` (or the `Version: ...` line around it); None when it is not one."""
        head = text.strip()
        if head.startswith("Version:"):
            head = head[len("Version:") :].strip()
        parts = head.split(None, 1)[0].split(".") if head else []
        if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))


@dataclass(frozen=True)
class Line:
    """What one major line of Bacula community means to the agents and tools.

    The console commands the agents and `status` rely on (`status dir`'s "Running Jobs:"
    section, `restart <kind> jobid=N yes`, `stop jobid=N`, `cancel inactive storage=S jobid=N`,
    `run job=... when=... yes`, `llist jobid=N`) exist with the same syntax from 9.6 to 15.0;
    what differs is below.
    """

    name: str  # "13.0"
    schema: int  # what the director writes into table Version
    tables: tuple[str, ...]  # the tables a catalog of this line must have
    checked: str  # TESTED | FROM_SOURCE
    tls_psk: bool  # TLS-PSK on by default between daemons and consoles
    allow_incomplete: bool  # the Job directive `Allow Incomplete Jobs` exists

    @property
    def tested(self) -> bool:
        return self.checked == TESTED


LINES: dict[tuple[int, int], Line] = {
    (9, 6): Line("9.6", 16, (*_CORE_TABLES, FILENAME_TABLE), TESTED, False, False),
    (11, 0): Line("11.0", 1022, _CORE_TABLES, FROM_SOURCE, True, True),
    (13, 0): Line("13.0", 1024, _CORE_TABLES, TESTED, True, True),
    (15, 0): Line("15.0", 1026, _CORE_TABLES, FROM_SOURCE, True, True),
}
# A version no line covers: the tables every line since 11.0 has.
UNKNOWN_TABLES = _CORE_TABLES


def line_of(version: Version | None) -> Line | None:
    """The line a release belongs to (9.6.7 -> 9.6), None for one we know nothing of."""
    if version is None:
        return None
    return LINES.get((version.major, version.minor))


def expected_tables(version: Version | None) -> tuple[str, ...]:
    """The catalog tables a director of `version` needs."""
    line = line_of(version)
    return line.tables if line else UNKNOWN_TABLES


def caveat(version: Version | None, binary: str) -> str:
    """A warning for a release not tested here ("" when it was)."""
    line = line_of(version)
    if version is None:
        return f"cannot tell the Bacula version of {binary}: checks assume Bacula 11.0 or later"
    if line is None:
        return f"Bacula {version} ({binary}) is not a version bacula-ha knows"
    if not line.tested:
        return f"Bacula {version} ({binary}) is known from its sources only, not tested"
    return ""


# -- reading a binary's version ---------------------------------------------------------------

_CACHE_NAME = "bacula-ha-versions.json"
# What this process already read: (binary, its inode:size:mtime) -> its version.
_SEEN: dict[tuple[str, str], Version | None] = {}


def daemon_version(
    binary: str, *, deadline: Deadline, cache_dir: str | None = None, timeout: float = 5.0
) -> Version | None:
    """The release of a Bacula daemon (bacula-dir, -sd, -fd), None when it cannot tell.

    `binary -?` prints its usage with the version line and exits. Its answer is kept in
    CACHE_DIR (HA_RSCTMP under Pacemaker: a tmpfs emptied at boot) keyed on the binary's
    path, inode, size and mtime, so that a probe or monitor after the first pays a stat()
    and a small read instead of a process.
    """
    try:
        st = os.stat(binary)
    except OSError:
        return None
    key = f"{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"
    if (binary, key) in _SEEN:  # an action that asks twice (start warns, then checks)
        return _SEEN[binary, key]
    cache = _read_cache(cache_dir)
    entry = cache.get(binary)
    if isinstance(entry, dict) and entry.get("key") == key:
        version = Version.parse(str(entry.get("version", "")))
    else:
        version = _ask(binary, deadline, timeout)
        if version is not None:
            cache[binary] = {"key": key, "version": str(version)}
            _write_cache(cache_dir, cache)
    _SEEN[binary, key] = version
    return version


def _ask(binary: str, deadline: Deadline, timeout: float) -> Version | None:
    try:
        # -? prints the usage (on stdout or stderr, by line), exits 1 and never starts.
        result = run([binary, "-?"], deadline=deadline, timeout=timeout)
    except (OCFError, OSError):  # not installed, cannot run, too slow: the version is unknown
        return None
    for line in (result.stdout + "\n" + result.stderr).splitlines():
        if line.strip().startswith("Version:"):
            return Version.parse(line)
    return None


def _read_cache(cache_dir: str | None) -> dict[str, object]:
    if not cache_dir:
        return {}
    try:
        with open(os.path.join(cache_dir, _CACHE_NAME), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_cache(cache_dir: str | None, cache: dict[str, object]) -> None:
    if not cache_dir or not os.path.isdir(cache_dir):
        return
    path = os.path.join(cache_dir, _CACHE_NAME)
    temp = f"{path}.{os.getpid()}"
    try:
        with open(temp, "w", encoding="utf-8") as handle:
            json.dump(cache, handle)
        os.replace(temp, path)
    except OSError:
        try:
            os.unlink(temp)
        except OSError:
            pass
