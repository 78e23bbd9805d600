"""Process helpers: pid files checked against pid reuse, bounded waits, stop escalation."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

from .deadline import Deadline

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from .record import dataclass


@dataclass(frozen=True)
class Identity:
    """What makes a process *our* daemon: its executable and, optionally, a config file argument."""

    executable: str
    config: str | None = None

    def matches(self, pid: int) -> bool:
        """True when `pid` runs this executable with this config (a recycled pid does not)."""
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
        except OSError:
            return False
        # The kernel gives the resolved path. A package upgrade replaces the binary under a
        # running daemon: the link then ends in " (deleted)", which is still the same daemon.
        if exe.removesuffix(" (deleted)") != _real(self.executable):
            return False
        if not _ours(pid):
            return False
        if self.config is None:
            return True
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            return False
        wanted = _real(self.config)
        return any(
            arg and not arg.startswith(b"-") and _real(os.fsdecode(arg)) == wanted for arg in args
        )


def _ours(pid: int) -> bool:
    """False for a process in another PID or mount namespace than ours: a container's daemon
    (or a test lab's machine) may run the same program with the same config path, and
    stopping it is never this agent's business. True when the kernel will not say (another
    user's process, not root): the executable and the config then decide, as before."""
    for kind in ("pid", "mnt"):
        try:
            if os.readlink(f"/proc/{pid}/ns/{kind}") != _own_namespace(kind):
                return False
        except OSError:
            return True
    return True


_OWN_NS: dict[str, str] = {}


def _own_namespace(kind: str) -> str:
    found = _OWN_NS.get(kind)
    if found is None:
        found = _OWN_NS[kind] = os.readlink(f"/proc/self/ns/{kind}")
    return found


# A scan of /proc compares every process with one identity: resolve its paths once.
_REAL: dict[str, str] = {}


def _real(path: str) -> str:
    found = _REAL.get(path)
    if found is None:
        found = _REAL[path] = os.path.realpath(path)
    return found


def read_pidfile(path: str) -> int | None:
    """The pid in a pid file, or None when it is absent or does not hold a positive number."""
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            text = handle.read(64).strip()
    except OSError:
        return None
    return int(text) if text.isdigit() and int(text) > 0 else None


def is_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may hold spaces.
    state = stat[stat.rfind(b")") + 2 : stat.rfind(b")") + 3]
    return state not in (b"Z", b"X", b"")


def wait_until(
    predicate: Callable[[], bool], deadline: Deadline, *, first: float = 0.005, cap: float = 0.1
) -> bool:
    """Poll `predicate` with a growing interval until it holds or the deadline comes."""
    interval = first
    while True:
        if predicate():
            return True
        if deadline.expired():
            return False
        time.sleep(min(interval, max(0.0, deadline.remaining() - 0.5), cap) or 0.001)
        interval *= 2


def terminate(
    pid: int, deadline: Deadline, *, grace: float, log: Callable[[str], None] | None = None
) -> bool:
    """SIGTERM, wait up to `grace` (inside the deadline), then SIGKILL. True once it is gone."""
    if not _signal(pid, signal.SIGTERM):
        return True
    # A stopped (SIGSTOPped, wedged in a debugger) process keeps SIGTERM pending until it
    # runs again: continue it so that it can shut down cleanly.
    _signal(pid, signal.SIGCONT)
    if wait_until(lambda: not is_alive(pid), deadline.sooner(grace)):
        return True
    if log is not None:
        log(f"process {pid} ignored SIGTERM for {grace:.1f}s; sending SIGKILL")
    if not _signal(pid, signal.SIGKILL):
        return True
    # SIGKILL cannot be refused, but a process in uninterruptible sleep takes its time. The
    # kernel needs a moment even when the deadline is spent: a stop reported failed for a
    # process that is dying gets the node fenced, so a little past the deadline is better.
    floor = Deadline.after(2.0)
    return wait_until(lambda: not is_alive(pid), floor if floor.at > deadline.at else deadline)


def _signal(pid: int, sig: int) -> bool:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True
