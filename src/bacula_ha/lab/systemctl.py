"""The lab's stand-in for systemd's `systemctl` in a fresh machine (`lab up --fresh`).

A lab machine has no systemd: its PID 1 only mounts and reaps. docs/deploy.md, written for
real servers, enables and starts corosync and pacemaker, takes Bacula and PostgreSQL away
from the service manager, and starts a client's bacula-fd, all with `systemctl`. This
command, first on a fresh machine's PATH, does what systemd would do for exactly those units,
so that the guide's commands run unchanged in its test. It runs inside the machine; what is
enabled lives in the machine's private /etc, so a reboot (`lab heal`) starts it again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ENABLED = Path("/etc/bacula-ha-lab/enabled")
# Debian's units, as the guide names them: the process each one runs, in the foreground.
_PCMK_ENV = {"PCMK_logfacility": "none", "PCMK_logfile": "/var/log/pacemaker/pacemaker.log"}


@dataclass(frozen=True)
class Unit:
    argv: tuple[str, ...]
    log: str
    env: dict[str, str] = field(default_factory=dict)
    # A command that succeeds once the service answers (systemd's Type=notify, in effect).
    ready: tuple[str, ...] = ()
    stop_timeout: float = 30.0


UNITS: dict[str, Unit] = {
    "corosync": Unit(
        ("corosync", "-f"), "/var/log/corosync/stdout.log", ready=("corosync-cfgtool", "-s")
    ),
    # A clean pacemaker stop first stops the node's resources: give it what systemd gives.
    "pacemaker": Unit(
        ("pacemakerd", "-f"), "/var/log/pacemaker/stdout.log", _PCMK_ENV, stop_timeout=600
    ),
    "bacula-director": Unit(
        ("/usr/sbin/bacula-dir", "-f", "-c", "/etc/bacula/bacula-dir.conf"), "/run/bacula-dir.log"
    ),
    "bacula-sd": Unit(
        ("/usr/sbin/bacula-sd", "-f", "-c", "/etc/bacula/bacula-sd.conf"), "/run/bacula-sd.log"
    ),
    "bacula-fd": Unit(
        ("/usr/sbin/bacula-fd", "-f", "-c", "/etc/bacula/bacula-fd.conf"), "/run/bacula-fd.log"
    ),
    # Debian's postgresql.service is an umbrella over pg_ctlcluster; a fresh lab machine has
    # no cluster of its own running, so there is nothing to start or stop.
    "postgresql": Unit((), ""),
}
# The order a boot starts enabled units in (corosync before pacemaker, as systemd's After=).
_BOOT_ORDER = tuple(UNITS)


class UnitError(Exception):
    pass


def _unit(name: str) -> tuple[str, Unit]:
    name = name.removesuffix(".service")
    unit = UNITS.get(name)
    if unit is None:
        raise UnitError(f"Unit {name}.service not found in the lab (known: {', '.join(UNITS)}).")
    return name, unit


def _pids(unit: Unit) -> list[int]:
    if not unit.argv:
        return []
    # The machine has its own PID namespace and /proc: only its processes are seen.
    name = os.path.basename(unit.argv[0])[:15]
    out = subprocess.run(["pgrep", "-x", name], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _enabled() -> list[str]:
    try:
        return [u for u in ENABLED.read_text().split() if u in UNITS]
    except OSError:
        return []


def _set_enabled(name: str, on: bool) -> None:
    units = [u for u in _enabled() if u != name] + ([name] if on else [])
    ENABLED.parent.mkdir(parents=True, exist_ok=True)
    ENABLED.write_text("".join(f"{u}\n" for u in units))


def start(name: str, unit: Unit) -> None:
    if not unit.argv or _pids(unit):
        return
    Path(unit.log).parent.mkdir(parents=True, exist_ok=True)
    with open(unit.log, "ab") as log:
        proc = subprocess.Popen(
            unit.argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env={**os.environ, **unit.env},
            start_new_session=True,  # the machine's PID 1 adopts and reaps it
        )
    deadline = time.monotonic() + 30
    try:
        # A daemon that refuses its configuration or its port exits at once: say so, as
        # systemd's failed unit would, instead of a silent success.
        proc.wait(0.5)
        raise UnitError(f"{name} exited at start ({proc.returncode}); see {unit.log}")
    except subprocess.TimeoutExpired:
        pass
    while unit.ready:
        done = subprocess.run(unit.ready, capture_output=True).returncode == 0
        if done:
            break
        if time.monotonic() > deadline:
            raise UnitError(f"{name} did not come up within 30 s; see {unit.log}")
        time.sleep(0.1)


def stop(name: str, unit: Unit) -> None:
    pids = _pids(unit)
    for pid in pids:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + unit.stop_timeout
    while _pids(unit):
        if time.monotonic() > deadline:
            raise UnitError(f"{name} did not stop within {unit.stop_timeout:.0f} s")
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a not in ("-q", "--quiet")]
    now = "--now" in args
    args = [a for a in args if a != "--now"]
    if not args:
        print("usage: systemctl VERB [--now] UNIT...", file=sys.stderr)
        return 2
    verb, names = args[0], args[1:]
    try:
        if verb == "daemon-reload":
            return 0
        if verb == "lab-boot":
            for name in _BOOT_ORDER:
                if name in _enabled():
                    start(name, UNITS[name])
            return 0
        units = [_unit(n) for n in names]
        status = 0
        for name, unit in units:
            if verb in ("start", "restart", "stop"):
                if verb != "start":
                    stop(name, unit)
                if verb != "stop":
                    start(name, unit)
            elif verb in ("enable", "disable"):
                _set_enabled(name, verb == "enable")
                if now:
                    (start if verb == "enable" else stop)(name, unit)
            elif verb == "is-active":
                active = bool(_pids(unit))
                print("active" if active else "inactive")
                status = status or (0 if active else 3)
            elif verb == "is-enabled":
                on = name in _enabled()
                print("enabled" if on else "disabled")
                status = status or (0 if on else 1)
            else:
                raise UnitError(f"the lab's systemctl does not know {verb!r}")
        return status
    except UnitError as exc:
        print(f"systemctl (lab): {exc}", file=sys.stderr)
        return 1


def script() -> str:
    """The `systemctl` file a fresh machine finds first on its PATH."""
    body = "import sys\nfrom bacula_ha.lab.systemctl import main\nsys.exit(main())\n"
    return f"#!{sys.executable}\n{body}"


if __name__ == "__main__":
    sys.exit(main())
