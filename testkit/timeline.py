"""Where a failover's seconds go: events read from the survivor's Pacemaker log, by owner."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

# Pacemaker 2.1's log line: "Dec 06 11:22:09.103 node2 pacemaker-controld  [56] (fn) ..."
_STAMP = re.compile(r"^(\w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \S+ (pacemaker-\w+)\s*\[\d+\] ")
_LOST = re.compile(r"pacemaker-controld.*Node (\S+) state is now lost")
_CALCULATED = re.compile(r"Calculated transition (\d+)")
_FENCE_OP = re.compile(r"Operation '(?:off|reboot)' \[\d+\] targeting (\S+) using (\S+) returned 0")
_FENCED = re.compile(r"Peer (\S+) was terminated \(\w+\) by")
_OP_KEY = re.compile(r"Initiating (\w+) operation (\S+) locally")
_RESULT = re.compile(r"Result of (\w+) operation for (\S+) on \S+: (\w[\w ]*?)(?: \(|$| \|)")

# Who owns the seconds of an operation, by the resource's role in the generated site
# (its id's last part) or the agent: the cluster's plumbing, the database's, or ours.
OWNERS = {
    "fs": "database",  # Filesystem: the database's disk (mount, fsck)
    "db": "database",  # pgsql / pgsqlms: start, crash recovery, promote, notifications
    "ip": "IP",
    "catalog": "ours",
    "dir": "ours",
    "sd": "ours",
    "confsync": "ours",
    "any": "anything",
    "dummy": "floor",
}


@dataclass(frozen=True)
class Operation:
    resource: str
    action: str  # start, promote, notify, stop, demote
    begin: float  # seconds since the crash
    end: float | None
    result: str = ""

    @property
    def owner(self) -> str:
        return OWNERS.get(self.resource.rsplit("-", 1)[-1], "cluster")

    @property
    def seconds(self) -> float:
        return 0.0 if self.end is None else self.end - self.begin


@dataclass
class Timeline:
    """One failover seen from the survivor, every time in seconds since the crash."""

    lost: float | None = None  # corosync's membership change reached Pacemaker
    transition: float | None = None  # the first transition after it was calculated
    fenced: float | None = None  # the fencing confirmed (the node is known off)
    fence_steps: list[tuple[str, float]] = field(default_factory=list)  # device, done
    operations: list[Operation] = field(default_factory=list)

    def critical_path(self, chain: tuple[str, ...], answer: float) -> list[Operation]:
        """The operations of `chain` the answer waited for, walking back from it: each step
        takes the operation that finished last before the one after it began. One that ran
        beside them (a VIP started with the database) is off the path. An operation still
        running at the answer (a start that returns after its daemon answers) counts up to
        the answer."""

        def end(op: Operation) -> float:
            return answer if op.end is None else min(op.end, answer)

        ops = [
            op
            for op in self.operations
            if op.resource in chain and op.action != "stop" and op.begin < answer
        ]
        path: list[Operation] = []
        now = answer
        while True:
            before = [op for op in ops if op.begin < now and end(op) <= now + 0.02]
            if not before:
                break
            last = max(before, key=end)
            path.append(Operation(last.resource, last.action, last.begin, end(last), last.result))
            ops.remove(last)
            now = last.begin
        return path[::-1]

    def shares(self, chain: tuple[str, ...], answer: float) -> dict[str, float]:
        """The seconds until `answer`, split by owner: detection, fencing and the time
        between the critical path's operations are the cluster's; each operation its owner's."""
        out = {"detection": self.lost or 0.0, "fencing": 0.0}
        if self.lost is not None and self.fenced is not None:
            out["fencing"] = self.fenced - self.lost
        for op in self.critical_path(chain, answer):
            out[op.owner] = out.get(op.owner, 0.0) + op.seconds
        accounted = sum(out.values())
        out["transitions"] = max(0.0, answer - accounted)  # scheduling, waits between actions
        return out


def _epoch(stamp: str, year: int) -> float:
    return time.mktime(time.strptime(f"{year} {stamp[:-4]}", "%Y %b %d %H:%M:%S")) + float(
        "0" + stamp[-4:]
    )


def parse(log: str, crash: float, until: float = 120.0) -> Timeline:
    """The timeline of the failover that began at epoch `crash`, from a pacemaker.log."""
    year = time.localtime(crash).tm_year
    line_out = Timeline()
    open_ops: dict[tuple[str, str], float] = {}
    for line in log.splitlines():
        m = _STAMP.match(line)
        if m is None:
            continue
        t = _epoch(m.group(1), year) - crash
        if t < -0.5 or t > until:
            continue
        if line_out.lost is None and _LOST.search(line):
            line_out.lost = t
        elif line_out.lost is not None and line_out.transition is None and _CALCULATED.search(line):
            line_out.transition = t
        elif fence := _FENCE_OP.search(line):
            line_out.fence_steps.append((fence.group(2), t))
        elif line_out.fenced is None and _FENCED.search(line):
            line_out.fenced = t
        elif begin := _OP_KEY.search(line):
            action, key = begin.groups()
            open_ops[(action, _resource_of(key, action))] = t
        elif result := _RESULT.search(line):
            action, rsc, outcome = result.groups()
            start = open_ops.pop((action, rsc), None)
            if start is not None and action != "monitor":
                line_out.operations.append(Operation(rsc, action, start, t, outcome))
    for (action, rsc), start in open_ops.items():
        if action != "monitor":
            line_out.operations.append(Operation(rsc, action, start, None, "pending"))
    line_out.operations.sort(key=lambda op: op.begin)
    return line_out


def _resource_of(key: str, action: str) -> str:
    """`cat1-db_pre_notify_promote_0` -> `cat1-db`; `dir1-dir_start_0` -> `dir1-dir`."""
    base = key.rsplit("_", 1)[0]  # drop the interval
    for marker in ("_pre_notify_", "_post_notify_"):
        if marker in base:
            return base.split(marker, 1)[0]
    return base.removesuffix(f"_{action}")


def render(tl: Timeline, answers: dict[str, float | None]) -> list[str]:
    """The timeline as table lines: time, what, how long, whose."""
    rows: list[tuple[float, str]] = []
    if tl.lost is not None:
        rows.append((tl.lost, "node lost (corosync membership, seen by Pacemaker)"))
    if tl.transition is not None:
        rows.append((tl.transition, "first transition calculated"))
    for device, t in tl.fence_steps:
        rows.append((t, f"fencing step done: {device}"))
    if tl.fenced is not None:
        rows.append((tl.fenced, "fencing confirmed"))
    for op in tl.operations:
        took = "   ?  " if op.end is None else f"{op.seconds:5.2f}s"
        rows.append((op.begin, f"{op.action:8} {op.resource:22} {took}  [{op.owner}]"))
    for what, at in answers.items():
        if at is not None:
            rows.append((at, f"** {what} answers from the client"))
    return [f"  {t:6.2f}  {text}" for t, text in sorted(rows)]
