"""The one way the lab runs commands: on the host, or inside a machine through nsenter."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence

from bacula_ha.lab.errors import LabError

# Commands inside a machine get a clean, predictable environment rather than the
# caller's (a test's PYTHONPATH means nothing inside a node). The directory of this
# interpreter comes last, so that `bacula-ha` (e.g. `lab exec node1 bacula-ha status`) is
# found from a virtualenv too without shadowing any system tool.
NODE_ENV: Mapping[str, str] = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:"
    + os.path.dirname(sys.executable),
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
}


def run(
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60.0,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise LabError on failure when check is set."""
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            env=dict(env) if env is not None else None,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:
        raise LabError(f"command not found: {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"timed out after {timeout:.0f} s: {shlex.join(argv)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise LabError(f"failed ({proc.returncode}): {shlex.join(argv)}\n{detail}")
    return proc


def nsenter_argv(init_pid: int, argv: Sequence[str]) -> list[str]:
    """The command line that runs argv inside the machine whose PID-1 is init_pid."""
    return ["nsenter", "-t", str(init_pid), "-m", "-u", "-n", "-p", "-w", "--", *argv]
