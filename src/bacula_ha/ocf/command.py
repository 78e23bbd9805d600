"""The one subprocess runner: absolute paths, a deadline, a controlled environment, no secrets."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence

from .deadline import Deadline
from .errors import GenericError, NotInstalledError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
    from typing import Protocol

    class _Log(Protocol):
        def debug(self, message: str) -> None: ...
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
    line = " ".join(argv)
    for secret in secrets:
        if secret:
            line = line.replace(secret, "***")
    return line


def run(
    argv: Sequence[str],
    *,
    deadline: Deadline,
    timeout: float | None = None,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    secrets: Sequence[str] = (),
    log: _Log | None = None,
    cwd: str | None = None,
    preexec_user: tuple[int, int] | None = None,
) -> Completed:
    """Run argv[0] (an absolute path) and wait at most `timeout`, never past the deadline."""
    import signal
    import subprocess

    if not os.path.isabs(argv[0]):
        raise ValueError(f"command must be an absolute path: {argv[0]}")
    bound = deadline.bound(timeout)
    child_env = dict(BASE_ENV)
    if env:
        child_env.update(env)
    if log is not None:
        log.debug(f"running (at most {bound:.1f}s): {redact(argv, secrets)}")
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=child_env,
            cwd=cwd,
            # Its own process group, so that a timeout kills the children it forked too.
            start_new_session=True,
            user=preexec_user[0] if preexec_user else None,
            group=preexec_user[1] if preexec_user else None,
            extra_groups=[] if preexec_user else None,
        )
    except FileNotFoundError:
        raise NotInstalledError(f"{argv[0]} is not installed") from None
    except PermissionError:
        raise NotInstalledError(f"{argv[0]} is not executable") from None
    try:
        out, err = proc.communicate(input=input, timeout=bound)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            proc.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            # A process outside the group (an ssh ControlMaster, a daemon the child forked
            # into its own session) may still hold the pipes: stop reading, the child is dead.
            for pipe in (proc.stdout, proc.stderr, proc.stdin):
                if pipe is not None:
                    pipe.close()
            proc.wait()
        raise CommandTimeout(
            f"{os.path.basename(argv[0])} did not finish within {bound:.1f}s"
        ) from None
    return Completed(
        argv=tuple(argv),
        returncode=proc.returncode,
        stdout=out.decode("utf-8", "replace"),
        stderr=err.decode("utf-8", "replace"),
    )
