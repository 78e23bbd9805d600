"""Finding and killing the lab's own processes on the host by what they are, never by name."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

INIT_MODULE = "bacula_ha.lab.nodeinit"
SUPERVISOR_MODULE = "bacula_ha.lab.supervisor"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _status(pid: int) -> dict[str, str]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return fields


def alive(pid: int) -> bool:
    """True if pid exists and is not a zombie."""
    state = _status(pid).get("State", "")
    return bool(state) and not state.startswith("Z")


def _python_module_procs(module: str, lab_dir: Path) -> dict[int, list[str]]:
    """Live processes running `python -m MODULE LAB_DIR ...`, keyed by host PID."""
    found: dict[int, list[str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        argv = _cmdline(pid)
        # argv[0] must be the interpreter: `unshare ... python -m MODULE` carries the same tail.
        if (
            len(argv) >= 4
            and "python" in Path(argv[0]).name
            and argv[1:4] == ["-m", module, str(lab_dir)]
            and alive(pid)
        ):
            found[pid] = argv[4:]
    return found


def machine_inits(lab_dir: Path) -> dict[str, int]:
    """The PID-1 of each running machine of this lab, by machine name (host PIDs)."""
    inits: dict[str, int] = {}
    for pid, rest in _python_module_procs(INIT_MODULE, lab_dir).items():
        nspid = _status(pid).get("NSpid", "").split()
        # A machine's init is PID 1 in its own namespace; anything else is not ours.
        if rest and len(nspid) >= 2 and nspid[-1] == "1":
            inits[rest[0]] = pid
    return inits


def supervisors(lab_dir: Path) -> list[int]:
    return sorted(_python_module_procs(SUPERVISOR_MODULE, lab_dir))


def kill_and_wait(pids: list[int], timeout: float = 10.0) -> list[int]:
    """SIGKILL pids and wait until each is gone or a zombie; return those still alive."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    remaining = [p for p in pids if alive(p)]
    while remaining and time.monotonic() < deadline:
        time.sleep(0.02)
        remaining = [p for p in remaining if alive(p)]
    return remaining
