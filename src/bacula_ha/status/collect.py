"""What `bacula-ha status` shows, gathered from the cluster: the CIB, crm_mon, the director."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..bacula.console import RunningJob

# The Bacula agents' roles, by agent type (ocf:bacula:TYPE).
ROLES = {
    "bacula-dir": "director",
    "bacula-sd": "storage",
    "bacula-fd": "filedaemon",
    "bacula-catalog": "catalog",
    "bacula-confsync": "confsync",
}
CONFSYNC_ATTRIBUTE = "bacula-confsync-last-good"
_TOOL_TIMEOUT = 15.0

# What an OCF exit code means to an admin reading a failed action.
MEANINGS = {
    1: "a generic error: it may work after a restart or on another node",
    2: "a parameter is invalid on that node",
    3: "the agent does not implement the action",
    4: "the agent lacked a privilege",
    5: "something it needs is not installed on that node (Pacemaker keeps it off that node)",
    6: "its configuration can never work: Pacemaker stopped it on every node",
    7: "it was found not running",
    190: "it runs, degraded",
}


class StatusError(Exception):
    """No cluster to read (or its tools failed): said in one sentence."""


@dataclass(frozen=True)
class Check:
    """The last result of one recurring monitor (one depth) where the resource runs."""

    depth: int
    interval_ms: int
    rc: int | None  # None: never ran there yet
    reason: str = ""
    exec_ms: int | None = None

    @property
    def health(self) -> str:
        if self.rc is None:
            return "not yet checked"
        return {0: "ok", 190: "degraded"}.get(self.rc, f"failed ({self.rc})")


@dataclass
class Component:
    """One Bacula resource and what surrounds it (its group's VIP, its placement)."""

    rsc: str
    role: str
    group: str = ""
    vip: str = ""
    running_on: list[str] = field(default_factory=list)
    preferred: str = ""
    would_go: str = ""  # where it goes if its node fails (highest other allowed node)
    checks: list[Check] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Failure:
    rsc: str
    task: str
    node: str
    exitcode: int | None
    reason: str
    when: str

    def sentence(self) -> str:
        what = "check" if self.task == "monitor" else self.task
        meaning = MEANINGS.get(self.exitcode or -1, f"exit code {self.exitcode}")
        text = f"{self.rsc}: the {what} on {self.node} failed at {self.when}: {meaning}"
        return text + (f" ({self.reason})" if self.reason else "")


@dataclass
class Status:
    dc: str
    nodes: dict[str, str]  # name -> online | offline | standby
    components: list[Component]
    failures: list[Failure]


def run_tool(argv: list[str]) -> str:
    """One cluster tool's output; StatusError when it cannot give it."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_TOOL_TIMEOUT, check=False
        )
    except FileNotFoundError:
        raise StatusError(f"{argv[0]} is not installed: is this a cluster node?") from None
    except subprocess.TimeoutExpired:
        raise StatusError(f"{argv[0]} did not answer within {_TOOL_TIMEOUT:.0f}s") from None
    if done.returncode != 0:
        first = (done.stderr.strip() or done.stdout.strip()).splitlines()[:1]
        raise StatusError(
            f"no cluster to read here ({os.path.basename(argv[0])}: "
            f"{first[0] if first else f'exit {done.returncode}'}); run it on a cluster node, "
            "or point CIB_file at a saved CIB"
        )
    return done.stdout


def gather(jobs: bool = True) -> Status:
    """Read the live cluster (or the CIB named by CIB_file) into a Status."""
    _check_cib_file(os.environ.get("CIB_file", ""))  # noqa: SIM112 (Pacemaker's name)
    cib = _xml(run_tool(["/usr/sbin/cibadmin", "-Q"]), "cibadmin -Q")
    mon = _xml(run_tool(["/usr/sbin/crm_mon", "-1", "--output-as=xml", "--include=all"]), "crm_mon")
    status = build(cib, mon)
    if jobs:
        for comp in status.components:
            if comp.role == "director" and comp.running_on:
                comp.details["jobs"] = running_jobs(cib, comp)
    return status


def _check_cib_file(path: str) -> None:
    """A saved CIB (CIB_file) is read here first: cibadmin says `Could not connect to the CIB`
    of a missing file and libxml2 may echo a broken line (a fence password). InputError."""
    if not path:
        return
    from ..cliout import Fault, InputError, read_text

    text = read_text(path)
    try:
        ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as exc:
        reason = str(exc).split(": line ")[0]
        raise InputError(Fault(f"not valid XML: {reason}", path, exc.position[0])) from None


def build(cib: ET.Element, mon: ET.Element) -> Status:
    """The status from a CIB and crm_mon's XML (pure: no tool runs)."""
    nodes = {n.get("name", "?"): _node_state(n) for n in mon.iterfind("./nodes/node")}
    dc_el = mon.find("./summary/current_dc")
    dc = dc_el.get("name", "") if dc_el is not None else ""
    running = _running(mon)
    config = cib.find("./configuration/resources")
    components: list[Component] = []
    if config is not None:
        groups = {
            p.get("id", ""): g.get("id", "")
            for g in config.iter("group")
            for p in g.iter("primitive")
        }
        for prim in config.iter("primitive"):
            role = ROLES.get(prim.get("type", "")) if prim.get("provider") == "bacula" else None
            if role is None:
                continue
            rsc = prim.get("id", "")
            comp = Component(rsc=rsc, role=role, group=groups.get(rsc, ""))
            comp.running_on = running.get(rsc, [])
            comp.vip = _group_vip(config, comp.group)
            comp.preferred, comp.would_go = _placement(cib, comp, nodes)
            comp.checks = _checks(cib, prim, comp.running_on)
            if role == "director":
                comp.details["jobs at last start/stop"] = _attributes(cib, f"bacula-ha-jobs-{rsc}")
            if role == "confsync":
                comp.details["last good sync"] = _attributes(cib, CONFSYNC_ATTRIBUTE)
            if role == "catalog":
                deepest = max(comp.checks, key=lambda c: c.depth, default=None)
                if deepest is not None and deepest.exec_ms is not None:
                    comp.details["latency"] = (
                        f"{deepest.exec_ms} ms (depth-{deepest.depth} check, whole agent)"
                    )
            components.append(comp)
    failures = [
        Failure(
            rsc=f.get("op_key", "").rsplit("_", 2)[0],
            task=f.get("task", ""),
            node=f.get("node", ""),
            exitcode=_int(f.get("exitcode")),
            reason=f.get("exitreason", ""),
            when=f.get("last-rc-change", ""),
        )
        for f in mon.iterfind("./failures/failure")
    ]
    return Status(dc=dc, nodes=nodes, components=components, failures=failures)


def _xml(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise StatusError(f"{what} printed no XML ({exc})") from None


def _int(text: str | None) -> int | None:
    return int(text) if text and text.isascii() and text.lstrip("-").isdigit() else None


def _node_state(node: ET.Element) -> str:
    if node.get("online") != "true":
        return "offline"
    return "standby" if node.get("standby") == "true" else "online"


def _running(mon: ET.Element) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for res in mon.iter("resource"):
        if res.get("active") == "true":
            rsc = res.get("id", "").split(":")[0]
            found.setdefault(rsc, []).extend(n.get("name", "") for n in res.iterfind("node"))
    return found


def _group_vip(config: ET.Element, group: str) -> str:
    if not group:
        return ""
    for g in config.iter("group"):
        if g.get("id") != group:
            continue
        for prim in g.iter("primitive"):
            if prim.get("type") == "IPaddr2":
                for nv in prim.iter("nvpair"):
                    if nv.get("name") == "ip":
                        return nv.get("value", "")
    return ""


def _placement(cib: ET.Element, comp: Component, nodes: dict[str, str]) -> tuple[str, str]:
    """(preferred node, where it would go if its current node failed): location scores of
    the resource or its group, among nodes that are online."""
    targets = {comp.rsc, comp.group} - {""}
    scores: dict[str, int] = {}
    for loc in cib.iter("rsc_location"):
        if loc.get("rsc") not in targets or not loc.get("node"):
            continue
        score = loc.get("score", "0")
        value = {"INFINITY": 10**6, "+INFINITY": 10**6, "-INFINITY": -(10**6)}.get(
            score, _int(score) or 0
        )
        scores[loc.get("node", "")] = scores.get(loc.get("node", ""), 0) + value
    ranked = sorted((s, n) for n, s in scores.items() if s > 0)
    preferred = ranked[-1][1] if ranked else ""
    here = set(comp.running_on)
    others = [n for s, n in reversed(ranked) if n not in here and nodes.get(n) == "online"]
    return preferred, others[0] if others else "nowhere (no other allowed node online)"


def _checks(cib: ET.Element, prim: ET.Element, running_on: list[str]) -> list[Check]:
    """The last result of each recurring monitor on the node the resource runs on."""
    intervals: dict[int, int] = {}  # interval ms -> depth
    for op in prim.iterfind("./operations/op"):
        if op.get("name") != "monitor" or op.get("role") not in (None, "Started"):
            continue
        ms = _duration_ms(op.get("interval", "0"))
        if not ms:
            continue
        depth = 0
        for nv in op.iter("nvpair"):
            if nv.get("name") == "OCF_CHECK_LEVEL":
                depth = _int(nv.get("value")) or 0
        intervals[ms] = depth
    node = running_on[0] if running_on else ""
    history: dict[int, ET.Element] = {}
    for state in cib.iterfind("./status/node_state"):
        if state.get("uname") != node:
            continue
        for lrm in state.iter("lrm_resource"):
            if lrm.get("id", "").split(":")[0] != prim.get("id"):
                continue
            for op in lrm.iterfind("lrm_rsc_op"):
                if op.get("operation") == "monitor":
                    history[_int(op.get("interval")) or 0] = op
    checks = []
    for ms, depth in sorted(intervals.items(), key=lambda kv: kv[1]):
        op_el = history.get(ms)
        checks.append(
            Check(
                depth=depth,
                interval_ms=ms,
                rc=_int(op_el.get("rc-code")) if op_el is not None else None,
                reason=op_el.get("exit-reason", "") if op_el is not None else "",
                exec_ms=_int(op_el.get("exec-time")) if op_el is not None else None,
            )
        )
    return checks


def _duration_ms(text: str) -> int:
    """A CIB interval ("10s", "31", "1min", "500ms") in milliseconds."""
    text = text.strip().lower()
    for suffix, factor in (
        ("ms", 1),
        ("min", 60_000),
        ("s", 1000),
        ("m", 60_000),
        ("h", 3_600_000),
    ):
        if text.endswith(suffix):
            number = _int(text[: -len(suffix)])
            return number * factor if number is not None else 0
    number = _int(text)
    return number * 1000 if number is not None else 0


def _attributes(cib: ET.Element, name: str) -> str:
    """`node=value` of a transient node attribute on every node that has it."""
    found = []
    for state in cib.iterfind("./status/node_state"):
        for nv in state.iterfind("./transient_attributes/instance_attributes/nvpair"):
            if nv.get("name") == name:
                found.append(f"{state.get('uname')}={nv.get('value')}")
    return ", ".join(sorted(found)) or "none recorded"


@dataclass(frozen=True)
class DirectorFiles:
    """Where a director resource's programs and files are on this node."""

    binary: str
    config: str
    bdirjson: str
    bconsole: str
    bconsole_config: str


def director_files(params: Mapping[str, str]) -> DirectorFiles:
    """The director resource's own params from the CIB (binary, config, bconsole,
    bconsole_config); what they leave out is found as the agent finds it: the agent's defaults
    (Debian's), the tools beside the binary (bacula.layout: /opt/bacula/bin/bdirjson beside
    /opt/bacula/bin/bacula-dir), bconsole.conf beside the configuration."""
    from ..bacula import layout

    binary = params.get("binary") or layout.DEBIAN.tool("bacula-dir")
    config = params.get("config") or layout.DEBIAN.conf("bacula-dir.conf")
    return DirectorFiles(
        binary=binary,
        config=config,
        bdirjson=layout.tool_beside(binary, "bdirjson"),
        bconsole=params.get("bconsole") or layout.tool_beside(binary, "bconsole"),
        bconsole_config=params.get("bconsole_config")
        or os.path.join(os.path.dirname(config), "bconsole.conf"),
    )


def running_jobs(cib: ET.Element, comp: Component) -> str:
    """The director's running jobs, asked as the agent asks them (bacula.console: its own
    console protocol, with its configuration on this node: root, and bacula-confsync keeps it
    there); through its bconsole when that file cannot be read here or the director wants TLS."""
    from ..bacula.config import load
    from ..bacula.console import ask_running_jobs, director_console, director_port
    from ..ocf.deadline import Deadline
    from ..ocf.errors import OCFError

    params = {
        nv.get("name", ""): nv.get("value", "")
        for prim in cib.iter("primitive")
        if prim.get("id") == comp.rsc
        for nv in prim.iterfind("./instance_attributes/nvpair")
    }
    files = director_files(params)
    try:
        res = load(files.bdirjson, files.config, Deadline.after(10))
    except OCFError as exc:
        by_console = _bconsole_status(files)
        return _describe_jobs(by_console) if by_console is not None else f"unknown ({exc.reason})"

    def by_bconsole(command: str) -> str:
        out = _bconsole_status(files, command)
        if out is None:
            raise _NoBconsole
        return out

    try:
        name, port = director_port(res)
    except OCFError as exc:  # no Director resource
        return f"unknown ({exc.reason})"
    address = comp.vip or params.get("address") or "127.0.0.1"
    console = director_console(res, name, address, port, 5.0, tls_fallback=by_bconsole)
    try:
        return _describe_jobs_of(ask_running_jobs(console))
    except _NoBconsole:
        return f"unknown (the director wants TLS, and {files.bconsole} could not ask it)"
    except OCFError as exc:
        return f"unknown (the director does not answer: {exc.reason})"


class _NoBconsole(Exception):
    """bconsole is not there, or could not tell (certificate TLS leaves only bconsole)."""


def _bconsole_status(files: DirectorFiles, command: str = "status dir") -> str | None:
    """`command` through the director's bconsole; None when it cannot tell."""
    if not (os.access(files.bconsole, os.X_OK) and os.path.isfile(files.bconsole_config)):
        return None
    try:
        done = subprocess.run(
            [files.bconsole, "-n", "-u", "10", "-c", files.bconsole_config],
            input=f"{command}\nquit\n",
            capture_output=True,
            text=True,
            timeout=_TOOL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0 or "1000 OK" not in done.stdout:
        return None
    return done.stdout


def _describe_jobs(status_output: str) -> str:
    """The running jobs of `status dir` output, on one line."""
    from ..bacula.console import running_jobs as parse_jobs

    return _describe_jobs_of(parse_jobs(status_output))


def _describe_jobs_of(jobs: list[RunningJob]) -> str:
    if not jobs:
        return "none running"
    return "; ".join(f"JobId {j.job_id} {j.description}" for j in jobs)
