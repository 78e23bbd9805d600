"""bconsole, run with a timeout inside the action's deadline, and what its answers mean."""

from __future__ import annotations

from collections.abc import Sequence

from ..ocf.command import Completed, run
from ..ocf.deadline import Deadline
from ..ocf.errors import GenericError
from ..ocf.log import Logger

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
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
