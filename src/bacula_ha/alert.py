"""The Pacemaker alert agent: one plain-language line per event that concerns a Bacula component.

Pacemaker runs alert agents on every full node, concurrently, as `hacluster`, within the
alert's timeout, and ignores their result: this one never fails (it always exits 0), never
waits long, and reads nothing but its environment and, for a director, one node attribute.

Configuration, as the alert's instance attributes (which Pacemaker passes as environment
variables; the generator writes them from the site's `[alerts]` section):

- `bacula_resources`: `ID=ROLE ...` for every Bacula resource of the site (ROLE: director,
  storage, filedaemon, catalog, confsync, vip, ...); events of other resources are ignored.
- `command`: an absolute path run with the event in its environment (`BACULA_HA_*`),
  bounded by `command_timeout` seconds (default 10).
- The recipient says where the line goes: an absolute path (a file, appended to), or
  `syslog` / `syslog:FACILITY`.

Duplicates: a resource alert is raised once, by the node whose executor ran the operation;
node and fencing alerts are raised by every node, so each node writes its own line (the
node is named in it) and runs the command only when it is the one the event concerns, or,
for a lost or fenced node, only on the lowest-named surviving node that raised it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping

# The node attribute where the bacula-dir agent leaves its last report of interrupted and
# brought-back jobs (see bacula_ha.bacula.jobs); `RSC` is the director's resource id.
JOBS_ATTRIBUTE = "bacula-ha-jobs-{rsc}"
_ATTRD_UPDATER = "/usr/sbin/attrd_updater"
_CRM_NODE = "/usr/sbin/crm_node"
_CIBADMIN = "/usr/sbin/cibadmin"
# Pacemaker's execution status of an operation (CRM_alert_status): 1 is PCMK_EXEC_CANCELLED.
_EXEC_CANCELLED = "1"
MAX_LINE = 480  # syslog relays commonly cut at 512 bytes and more is not read anyway

# OCF exit codes as an admin reads them (the runner's names would say ERR_GENERIC).
_RC = {
    0: "succeeded",
    1: "failed (generic error)",
    2: "failed (invalid parameter on this node)",
    3: "failed (unimplemented)",
    4: "failed (insufficient privileges)",
    5: "failed (not installed on this node)",
    6: "failed (not configured: can never work anywhere)",
    7: "found it not running",
    8: "found it running as promoted",
    9: "failed while promoted",
    190: "found it degraded",
    191: "found it degraded while promoted",
}
_TASKS = {
    "probe": "probe",
    "start": "start",
    "stop": "stop",
    "monitor": "check",
    "promote": "promotion",
    "demote": "demotion",
    "reload": "reload",
    "reload-agent": "reload",
}


def describe(env: Mapping[str, str]) -> tuple[str, bool] | None:
    """(the line to write, whether this node runs the command) for one event, or None when
    the event concerns no Bacula component."""
    kind = env.get("CRM_alert_kind", "")
    node = _clean(env.get("CRM_alert_node", "")) or "?"
    here = _clean(os.uname().nodename)
    roles = _roles(env.get("bacula_resources", ""))
    if kind == "resource":
        rsc = env.get("CRM_alert_rsc", "")
        role = roles.get(rsc) or roles.get(rsc.split(":")[0])
        if role is None:
            return None
        op = _clean(env.get("CRM_alert_task", ""))
        rc = _number(env.get("CRM_alert_rc", ""))
        target = _number(env.get("CRM_alert_target_rc", "0"))
        interval = _number(env.get("CRM_alert_interval", "0")) or 0
        if op == "monitor" and rc is not None and rc == target:
            return None  # a check or probe that found what it expected: not news
        if env.get("CRM_alert_status") == _EXEC_CANCELLED:
            return None  # a recurring check cancelled (before a stop): its result was told
        what = f"{role} {_clean(rsc)}"
        # A monitor without interval is a one-off probe (after a failure, of a joining node).
        task = "probe" if op == "monitor" and not interval else op
        if rc is not None and (rc == target or (task == "stop" and rc == 0)):
            verb = {
                "start": "started",
                "stop": "stopped",
                "promote": "promoted",
                "demote": "demoted",
            }.get(task, f"{task} ok")
            line = f"{what} {verb} on {node}"
        else:
            result = _RC.get(rc if rc is not None else -1, f"ended with {rc}")
            line = f"{what}: {_TASKS.get(task, _clean(task))} on {node} {result}"
            why = _exit_reason(rsc, node, op) or _clean(env.get("CRM_alert_desc", ""))
            if why and why.lower() not in ("ok", "error"):
                line += f": {why}"
        if role == "director" and task in ("start", "stop"):
            # The report of this very action: a stop of a director that had already died
            # leaves the start's report in place, which says nothing of this stop.
            jobs = _director_jobs(rsc, node)
            if jobs.startswith("started" if task == "start" else "stopped"):
                line += f"; jobs: {jobs.partition(': ')[2]}"
        return line, True  # resource alerts are raised by one node only
    if kind == "fencing":
        ok = env.get("CRM_alert_rc", "") == "0"
        desc = _clean(env.get("CRM_alert_desc", ""))
        line = f"node {node} {'was fenced' if ok else 'could NOT be fenced'}"
        if desc:
            line += f" ({desc})"
        if roles:
            line += ": the Bacula components it ran move to their standby nodes"
        return line, _first_survivor(here, node)
    if kind == "node":
        state = _clean(env.get("CRM_alert_desc", ""))
        line = f"node {node} is {state or 'in an unknown state'}"
        if state == "lost" and roles:
            line += ": Bacula components running there will move once it is fenced"
        return line, node == here if state == "member" else _first_survivor(here, node)
    return None


def main(environ: Mapping[str, str] | None = None) -> int:
    """Write the event's line and run the command; always 0 (Pacemaker ignores the result)."""
    env = os.environ if environ is None else environ
    try:
        described = describe(env)
        if described is None:
            return 0
        line, run_here = described
        line = _clean(f"bacula-ha: {line}", MAX_LINE)
        _deliver(env.get("CRM_alert_recipient", ""), line, env)
        command = env.get("command", "")
        if command and run_here:
            _run_command(command, line, env)
    except Exception as exc:  # never a traceback in Pacemaker's log, never a non-zero exit
        _syslog("daemon", f"bacula-ha alert: internal error: {type(exc).__name__}")
    return 0


def _roles(value: str) -> dict[str, str]:
    roles: dict[str, str] = {}
    for word in value.split():
        rsc, _, role = word.partition("=")
        if rsc:
            roles[rsc] = _clean(role) or "component"
    return roles


def _number(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() and len(text) < 10 else None


def _clean(text: str, limit: int = 200) -> str:
    """One printable line of at most `limit` characters: alert variables come from the CIB."""
    text = " ".join(text.split())
    if not text.isprintable():
        text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:limit]


def _first_survivor(here: str, gone: str) -> bool:
    """Whether this node is the lowest-named member other than `gone` (one runner, no talk)."""
    from .ocf.command import BASE_ENV, run
    from .ocf.deadline import Deadline

    try:
        done = run([_CRM_NODE, "-p"], deadline=Deadline.after(3), env=BASE_ENV)
    except Exception:
        return True  # better twice than never
    members = sorted(n for n in done.stdout.split() if n != gone)
    return not members or members[0] == here


def _exit_reason(rsc: str, node: str, task: str) -> str:
    """The agent's exit reason of the operation, as Pacemaker recorded it in the CIB status
    (alerts are not given it)."""
    import re

    from .ocf.command import BASE_ENV, run
    from .ocf.deadline import Deadline

    if not re.fullmatch(r"[\w.:-]+", rsc + node + task):
        return ""  # nothing that could bend the XPath
    xpath = (
        f"//node_state[@uname='{node}']//lrm_resource[@id='{rsc.split(':')[0]}']"
        f"/lrm_rsc_op[@operation='{task}']"
    )
    try:
        done = run([_CIBADMIN, "-Q", "--xpath", xpath], deadline=Deadline.after(3), env=BASE_ENV)
    except Exception:
        return ""
    reasons = re.findall(r'exit-reason="([^"]*)"', done.stdout)
    import html

    return _clean(html.unescape(next((r for r in reversed(reasons) if r), "")))


def _director_jobs(rsc: str, node: str) -> str:
    """The director agent's last report of interrupted / brought-back jobs on `node`."""
    from .ocf.command import BASE_ENV, run
    from .ocf.deadline import Deadline

    name = JOBS_ATTRIBUTE.format(rsc=rsc.split(":")[0])
    try:
        done = run(
            [_ATTRD_UPDATER, "-Q", "-n", name, "-N", node],
            deadline=Deadline.after(3),
            env=BASE_ENV,
        )
    except Exception:
        return ""
    # attrd_updater -Q prints: name="..." host="..." value="..."
    _, _, tail = done.stdout.partition('value="')
    return _clean(tail.rsplit('"', 1)[0]) if done.ok and tail else ""


def _deliver(recipient: str, line: str, env: Mapping[str, str]) -> None:
    stamp = _clean(env.get("CRM_alert_timestamp", "")) or time.strftime("%Y-%m-%d %H:%M:%S")
    if recipient.startswith("/"):
        # O_APPEND keeps concurrent writers' lines whole; one write per line.
        fd = os.open(recipient, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, f"{stamp} {_clean(os.uname().nodename)} {line}\n".encode())
        finally:
            os.close(fd)
        return
    facility = recipient.partition(":")[2] if recipient.startswith("syslog:") else "daemon"
    _syslog(facility or "daemon", line)


def _syslog(facility: str, line: str) -> None:
    import syslog

    code = getattr(syslog, f"LOG_{facility.upper()}", syslog.LOG_DAEMON)
    syslog.openlog("bacula-ha-alert", 0, code)
    syslog.syslog(syslog.LOG_NOTICE, line)
    syslog.closelog()


def _run_command(command: str, line: str, env: Mapping[str, str]) -> None:
    from .ocf.command import BASE_ENV, run
    from .ocf.deadline import Deadline

    if not os.path.isabs(command):
        _syslog("daemon", f"bacula-ha alert: command {_clean(command)!r} is not absolute")
        return
    timeout = _number(env.get("command_timeout", "")) or 10
    event = {
        "BACULA_HA_EVENT": line,
        **{
            f"BACULA_HA_{k[len('CRM_alert_') :].upper()}": _clean(v)
            for k, v in env.items()
            if k.startswith("CRM_alert_")
        },
    }
    try:
        run([command], deadline=Deadline.after(min(timeout, 25)), env={**BASE_ENV, **event})
    except Exception as exc:
        _syslog("daemon", f"bacula-ha alert: command failed: {type(exc).__name__}")


if __name__ == "__main__":
    sys.exit(main())
