"""Cable pulls in the lab: how long the director is unreachable after a partition or a lost
uplink of the node running it, next to a crash of that node, in one lab life; who was fenced.

Run as root: `.venv/bin/python bench/bench_cable.py [--trials N] [--json FILE]`.
Brings up the two-node lab with examples/lab-site.toml (connectivity to the lab's gateway,
fence_heuristics_ping before each fence device). Each round injects, in turn, on the node that
runs the director:
  crash:     power off (fenced by the survivor): the reference, the cluster's usual failover;
  partition: every cable pulled (clients' and cluster network): the connected node must fence
             the isolated one and take over;
  uplink:    the clients' network only: the groups move for lost connectivity, nobody fenced;
and takes the time from the fault until, from the client namespace, the director answers a
console login on its VIP; then heals the lab (every node back and connected). Fencing actions
are the power switch's power-offs during the fault. The lab is torn down at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# The unshipped test kit (testkit/) is at the checkout's top, beside src/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bacula_ha.lab import lifecycle, stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    BaculaWatch,
    connectivity,
    power_offs,
    running_lab,
    started_on,
    wait_until,
)

MODES = ("crash", "partition", "uplink")


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def trial(cfg: LabConfig, mode: str) -> dict[str, Any]:
    """Fail the director's node by mode; seconds until the director answers; heal."""
    (node,) = started_on(cfg, "dir1-dir")
    offs = len(power_offs(cfg))
    start = time.time()
    lifecycle.fail(cfg, node, mode)
    answered = BaculaWatch(cfg, 120, targets="dir").result()["dir"]
    result = {
        "mode": mode,
        "node": node,
        "dir": None if answered is None else answered - start,
        "fenced": power_offs(cfg)[offs:],
    }
    lifecycle.heal(cfg)
    names = {m.name for m in cfg.cluster_nodes}
    wait_until("every node connected again", lambda: connectivity(cfg) == names, 60)
    wait_until("the director answering", lambda: stack.director_answers(cfg), 60, step=0.5)
    return result


def expected_fencing(mode: str, node: str) -> list[str]:
    """The power-offs a fault of node must cause: the node itself, except for a lost uplink."""
    return [] if mode == "uplink" else [node]


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="rounds of the three faults")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    trials: list[dict[str, Any]] = []
    lifecycle.down(LabConfig().lab_dir)
    with running_lab(nodes=2, site=stack.default_site()) as cfg:
        names = {m.name for m in cfg.cluster_nodes}
        wait_until("both nodes connected", lambda: connectivity(cfg) == names, 60)
        for i in range(args.trials):
            for mode in MODES:
                result = trial(cfg, mode)
                _log(f"round {i + 1} {mode}: {result}")
                trials.append(result)
    crash = _median([t["dir"] for t in trials if t["mode"] == "crash"])
    print("fault of the director's node   director answers after (median, s)   / crash   fenced")
    for mode in MODES:
        mine = [t for t in trials if t["mode"] == mode]
        d = _median([t["dir"] for t in mine])
        ratio = f"{d / crash:5.2f}x" if d is not None and crash else "   - "
        fenced = sorted({"+".join(t["fenced"]) or "nobody" for t in mine})
        shown = "   -  " if d is None else f"{d:6.2f}"
        print(f"  {mode:10} ({len(mine)} trials)           {shown}                  {ratio}"
              f"    {', '.join(fenced)}")  # fmt: skip
    wrong = [t for t in trials if t["fenced"] != expected_fencing(t["mode"], t["node"])]
    print(f"unexpected fencing: {len(wrong)} of {len(trials)} trials {wrong or ''}")
    if args.json:
        args.json.write_text(json.dumps(trials, indent=1))


if __name__ == "__main__":
    main()
