"""The one subprocess runner: absolute paths, a deadline, a controlled environment, no secrets."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping, Sequence

from .deadline import Deadline
from .errors import GenericError, NotInstalledError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from .log import Log
else:
    from .record import dataclass


# Agents run under Pacemaker with a bare environment; children get this one, plus what
# the caller adds, so that nothing inherited from a shell changes what they do.
BASE_ENV: Mapping[str, str] = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"}


@dataclass(frozen=True)
class Completed:
    """A finished command."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def output_tail(self, limit: int = 200) -> str:
        """The last meaningful line of stderr (else stdout), for an exit reason."""
        for text in (self.stderr, self.stdout):
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                return lines[-1][:limit]
        return f"exit status {self.returncode}"


class CommandTimeout(GenericError):
    """The command did not finish within its bound; it was killed with its process group."""


def redact(argv: Sequence[str], secrets: Sequence[str]) -> str:
    """The command line as it may be logged: every secret replaced."""
    from .redact import hide

    return hide(" ".join(argv), tuple(secrets))


def run(
    argv: Sequence[str],
    *,
    deadline: Deadline,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    secrets: Sequence[str] = (),
    log: Log | None = None,
) -> Completed:
    """Run argv[0] (an absolute path) and wait at most `timeout`, never past the deadline.

    Built on os.posix_spawn and poll rather than the subprocess module, whose import alone
    (threading, selectors, ...) costs an agent as much as the interpreter's own start. The
    child gets its own session, so that a timeout kills whatever it forked too.
    """
    import signal
    import time

    if not os.path.isabs(argv[0]):
        raise ValueError(f"command must be an absolute path: {argv[0]}")
    bound = deadline.bound(timeout)
    child_env = dict(BASE_ENV)
    if env:
        child_env.update(env)
    if log is not None:
        log.debug(f"running (at most {bound:.1f}s): {redact(argv, secrets)}")
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    if input is not None:
        in_r, in_w = os.pipe()
    else:
        in_r, in_w = os.open(os.devnull, os.O_RDONLY), -1
    try:
        pid = spawn(argv, child_env, in_r, out_w, err_w)
    except OSError as exc:
        for fd in (out_r, err_r, in_w):
            if fd >= 0:
                os.close(fd)
        what = "is not installed" if isinstance(exc, FileNotFoundError) else "cannot be run"
        raise NotInstalledError(f"{argv[0]} {what}") from None
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    until = time.monotonic() + bound

    def kill() -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)

    out, err, timed_out = _pump(out_r, err_r, in_w, input or b"", until, kill)
    if timed_out:
        os.waitpid(pid, 0)
        raise CommandTimeout(f"{os.path.basename(argv[0])} did not finish within {bound:.1f}s")
    code = _reap(pid, until)
    if code is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise CommandTimeout(f"{os.path.basename(argv[0])} did not exit within {bound:.1f}s")
    return Completed(
        argv=tuple(argv),
        returncode=code,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
    )


def spawn(argv: Sequence[str], env: Mapping[str, str], stdin: int, stdout: int, stderr: int) -> int:
    """Start argv in a new session with the given descriptors as 0, 1 and 2; return its pid."""
    import signal

    actions = [
        (os.POSIX_SPAWN_DUP2, stdin, 0),
        (os.POSIX_SPAWN_DUP2, stdout, 1),
        (os.POSIX_SPAWN_DUP2, stderr, 2),
    ]
    return os.posix_spawn(
        argv[0],
        list(argv),
        dict(env),
        file_actions=actions,
        setsid=True,
        # Python ignores SIGPIPE and SIGXFSZ; a child must get the defaults back.
        setsigdef=(signal.SIGPIPE, signal.SIGXFSZ),
    )


def _pump(
    out_fd: int, err_fd: int, in_fd: int, data: bytes, until: float, kill: Callable[[], None]
) -> tuple[bytes, bytes, bool]:
    """Feed `data` to in_fd, read out_fd and err_fd to their end; (out, err, timed out).

    At `until` the child is killed; its output is then read for two more seconds at most,
    since a process outside its group (an ssh ControlMaster, a daemon it forked into its own
    session) may hold the pipes. Every descriptor given is closed on return.
    """
    import select
    import time

    buffers: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    poller = select.poll()
    open_fds = {out_fd, err_fd}
    for fd in (out_fd, err_fd):
        poller.register(fd, select.POLLIN)
    if in_fd >= 0:
        if data:
            os.set_blocking(in_fd, False)
            poller.register(in_fd, select.POLLOUT)
            open_fds.add(in_fd)
        else:
            os.close(in_fd)
    pending = memoryview(data)
    timed_out = False
    try:
        while open_fds:
            left = until - time.monotonic()
            if left <= 0:
                if timed_out:
                    break
                timed_out = True
                kill()
                until = time.monotonic() + 2
                continue
            for fd, _ in poller.poll(left * 1000):
                if fd == in_fd:
                    try:
                        pending = pending[os.write(fd, pending[:65536]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the child does not read its input
                        pending = pending[:0]
                    if not pending:
                        poller.unregister(fd)
                        os.close(fd)
                        open_fds.discard(fd)
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    buffers[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    os.close(fd)
                    open_fds.discard(fd)
    finally:
        for fd in open_fds:
            os.close(fd)
    return b"".join(buffers[out_fd]), b"".join(buffers[err_fd]), timed_out


def _reap(pid: int, until: float) -> int | None:
    """The exit code of pid, waiting until `until` at most (None: still running)."""
    import time

    delay = 0.001
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= until:
            return None
        time.sleep(delay)
        delay = min(delay * 2, 0.05)
