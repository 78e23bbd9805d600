"""Talking to the director: bconsole within the deadline, its own protocol, what they answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..ocf.command import Completed, run
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError
from ..ocf.log import Logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass

    from .config import Resources
else:
    from ..ocf.record import dataclass


@dataclass(frozen=True)
class RunningJob:
    job_id: int
    description: str  # the rest of the row: type, level, counters, name and status


def bconsole(
    binary: str,
    config: str,
    commands: Sequence[str],
    *,
    deadline: Deadline,
    timeout: float,
    log: Logger,
) -> Completed:
    """Run console commands; the console's own timeout (-u) sits inside ours."""
    script = "".join(f"{c}\n" for c in commands) + "quit\n"
    seconds = max(1, int(deadline.bound(timeout)))
    result = run(
        [binary, "-n", "-u", str(seconds), "-c", config],
        deadline=deadline,
        timeout=seconds + 2,
        input=script.encode(),
        log=log,
    )
    if not result.ok or "1000 OK" not in result.stdout:
        raise GenericError(_failure(result))
    return result


# bconsole's words when it and the director do not agree on the password or on TLS
# (src/console/authenticate.c, 9.6 to 13.0): they end with a help URL, the cause is above.
_AUTH_FAILED = "Director authorization problem."
_AUTH_CAUSES = (
    "Authorization problem:",  # "Remote server requires TLS." and the reverse
    "TLS ",  # "TLS negotiation failed", "TLS host certificate verification failed..."
    "Bad response to Hello command",  # the director dropped a certificate it refused
    "Director rejected Hello command",
)


def _failure(result: Completed) -> str:
    """Why bconsole got no director session, for an exit reason: an authentication that
    failed says so (and its cause, when bconsole printed one), never "no answer"."""
    text = f"{result.stdout}\n{result.stderr}"
    if _AUTH_FAILED not in text:
        return f"bconsole could not talk to the director: {result.output_tail()}"
    lines = (line.strip() for line in text.splitlines())
    cause = next((line for line in lines if line.startswith(_AUTH_CAUSES)), "")
    cause = cause.removeprefix("Authorization problem:").strip().rstrip(".")
    # The configuration's path is the bconsole_config parameter: left out of a reason that
    # Pacemaker cuts at 128 characters.
    if cause:
        return f"bconsole cannot authenticate to the director: {cause} (its password or TLS?)"
    return "bconsole cannot authenticate to the director: its password or TLS does not match"


def running_jobs(status_output: str) -> list[RunningJob]:
    """The jobs in the "Running Jobs:" section of `status dir` output."""
    import re

    # Rows of "JobId Type Level Files Bytes Name Status"; re is imported here, off the
    # path of every other action.
    row = re.compile(r"^\s*(\d+)\s+(\S.*)$")
    jobs: list[RunningJob] = []
    _, found, rest = status_output.partition("Running Jobs:")
    if not found:
        return jobs
    for line in rest.splitlines():
        if line.strip() == "====":
            break
        match = row.match(line)
        if match:
            jobs.append(RunningJob(int(match.group(1)), " ".join(match.group(2).split())))
    return jobs


# Where a Director resource without DirPort listens (Bacula's default).
DIRECTOR_PORT = 9101


def director_port(res: Resources) -> tuple[str, int]:
    """(Name, DirPort) of the director `res` configures (its first Director resource)."""
    own = res.first("Director")
    port = own.get("DirPort") or DIRECTOR_PORT
    return str(own.get("Name", "")), port if isinstance(port, int) else DIRECTOR_PORT


def ask_running_jobs(console: Callable[[str], str]) -> list[RunningJob]:
    """The director's running jobs, asked through `console` (director_console, bconsole)."""
    return running_jobs(console("status dir"))


def director_console(
    res: Resources,
    name: str,
    address: str,
    port: int,
    timeout: float,
    tls_fallback: Callable[[str], str] | None = None,
) -> Callable[[str], str]:
    """A console command runner on the director `name` itself, at `address`:`port`, with the
    password its configuration `res` gives the console (the agent's, and `bacula-ha status`).

    A director that requires TLS (certificates, or TLS-PSK) only talks to a client that
    speaks it: then every command goes to `tls_fallback` (bconsole with its configuration), if
    given, at once when its resource says `TLS Require = yes`.
    """
    from . import protocol
    from .daemon import passwords_of, requires_tls

    password = passwords_of(res, "Director").get(name, "")
    needs_tls = requires_tls(res, "Director", name)

    def send(command: str) -> str:
        nonlocal needs_tls
        if needs_tls and tls_fallback is not None:
            return tls_fallback(command)
        try:
            return protocol.console_probe(
                address,
                port,
                password,
                timeout,
                command=command,
                requires_tls=needs_tls,
            )
        except protocol.TLSRequired as exc:
            if tls_fallback is None:
                raise GenericError(f"console {command.split()[0]!r}: {exc}") from None
            needs_tls = True
            return tls_fallback(command)
        except protocol.ProtocolError as exc:
            raise GenericError(f"console {command.split()[0]!r}: {exc}") from None

    return send
