"""Loss of a whole data centre in the two-DC lab: our stack next to the Dummy + IPaddr2 floor.

Run as root: `.venv/bin/python bench/bench_two_dc.py [--trials N] [--json FILE]`.
Brings up `lab up --nodes 4 --dcs 2` (examples/lab-two-dc-site.toml: node1-2 in dc1, node3-4
in dc2, corosync-qdevice ffsplit with the arbiter in a third place, WAN delay between the DCs),
then, on the same cluster, fencing and quorum device:
  ours:  crash the data centre running the director (both nodes powered off at once); time
         from the crash until, from the client in the third place, the director answers a
         console login on its VIP and the storage daemon a director Hello on its VIP;
  floor: the Bacula groups replaced by one Dummy + IPaddr2 group on the director's VIP; crash
         the data centre running it; time until the VIP answers ARP.
For reference, the same trials crash only the node running the director (or the floor), on
the same cluster; and for ours, the data centre running the director loses its uplink (the
clients' network, the ping target with it; corosync and the arbiter keep their own network):
the connectivity rules move everything to the other DC, nobody is fenced. Each trial heals
the lab (the lost nodes boot again; stickiness keeps the services where they went, so the
trials alternate between the data centres). The lab is torn down at the end.
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

from bacula_ha.lab import lifecycle, twodc
from bacula_ha.lab.config import LabConfig
from testkit.lab import (
    ArpWatch,
    BaculaWatch,
    connectivity,
    pcs,
    power_offs,
    running_lab,
    started_on,
    wait_until,
)

DIR_VIP = lifecycle.VIPS["dir-vip"]


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def crash_trial(
    cfg: LabConfig, holder_rid: str, floor: bool, whole_dc: bool, mode: str = "crash"
) -> dict[str, Any]:
    """Crash the data centre (or only the node) running holder_rid (or cut the data centre's
    uplink); time until the services answer again; heal."""
    (node,) = started_on(cfg, holder_rid)
    target = twodc.dc_of_node(cfg, node) if whole_dc else node
    offs = len(power_offs(cfg))
    crash = time.time()
    lifecycle.fail(cfg, target, mode)
    result: dict[str, Any] = {"crashed": target}
    if floor:
        arp = ArpWatch(cfg, DIR_VIP, 90, until_answer=True).result()
        first = arp["first_answer"]
        result["vip"] = None if first is None else arp["start_epoch"] + first - crash
    else:
        answered = BaculaWatch(cfg, 120).result()
        for key in ("dir", "sd"):
            t = answered[key]
            result[key] = None if t is None else t - crash
    result["fenced"] = power_offs(cfg)[offs:]
    lifecycle.heal(cfg, timeout=120)
    if mode == "uplink":
        names = {m.name for m in cfg.cluster_nodes}
        wait_until("every node connected again", lambda: connectivity(cfg) == names, 60)
    return result


def to_floor(cfg: LabConfig) -> None:
    for group in ("dir1-group", "sd1-group", "cat1-group"):
        pcs(cfg, "resource", "delete", group, "--force")
    pcs(cfg, "resource", "create", "floor-dummy", "ocf:heartbeat:Dummy", "--group", "floor")
    pcs(cfg, "resource", "create", "floor-ip", "ocf:heartbeat:IPaddr2", f"ip={DIR_VIP}",
        "cidr_netmask=24", "nic=eth0", "--group", "floor")  # fmt: skip
    wait_until("the floor group", lambda: bool(started_on(cfg, "floor-ip")), 60)


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=3, help="DC crash trials per configuration")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {}

    lifecycle.down(LabConfig().lab_dir)
    start = time.monotonic()
    with running_lab(nodes=4, site=twodc.default_site(), dcs=2) as cfg:
        figures["cold_up"] = time.monotonic() - start
        _log(f"two-DC stack lab up: {figures['cold_up']:.1f} s")
        trials = []
        for i in range(args.trials):
            trial = crash_trial(cfg, "dir1-dir", floor=False, whole_dc=True, mode="uplink")
            _log(f"ours dc uplink trial {i + 1}: {trial}")
            trials.append(trial)
        figures["ours-uplink"] = trials
        for name, holder in (("ours", "dir1-dir"), ("floor", "floor-ip")):
            if name == "floor":
                to_floor(cfg)
            for kind in ("dc", "node"):
                trials = []
                for i in range(args.trials):
                    trial = crash_trial(cfg, holder, floor=name == "floor", whole_dc=kind == "dc")
                    _log(f"{name} {kind} crash trial {i + 1}: {trial}")
                    trials.append(trial)
                figures[f"{name}-{kind}"] = trials

    print(
        f"two-DC lab (4 nodes, qdevice ffsplit, {2 * twodc.LINK_DELAY_MS} ms one way between "
        f"the DCs): cold lab up {figures['cold_up']:.1f} s"
    )
    print(f"crash to answering again, median of {args.trials} (s)")
    print("                                          director  storage   / floor (dir, sd)")
    for kind, what in (("dc", "whole-DC crash"), ("node", "one node crash")):
        floor = _median([t["vip"] for t in figures[f"floor-{kind}"]])
        d = _median([t["dir"] for t in figures[f"ours-{kind}"]])
        sd = _median([t["sd"] for t in figures[f"ours-{kind}"]])
        if kind == "node":
            # The storage daemon runs on the other node of the DC: it never stopped.
            ratio = f"   {d / floor:.2f}x" if floor and d is not None else ""
            print(f"  {what:15} ours (ocf:bacula)       {_fmt(d)}   (stays){ratio}")
        else:
            ratio = ""
            if floor and d is not None and sd is not None:
                ratio = f"   {d / floor:.2f}x, {sd / floor:.2f}x"
            print(f"  {what:15} ours (ocf:bacula)       {_fmt(d)}   {_fmt(sd)}{ratio}")
        print(f"  {what:15} floor (Dummy+IPaddr2)   {_fmt(floor)}")
    uplink = figures["ours-uplink"]
    d = _median([t["dir"] for t in uplink])
    sd = _median([t["sd"] for t in uplink])
    crash = _median([t["dir"] for t in figures["ours-dc"]])
    ratio = f"   {d / crash:.2f}x the whole-DC crash" if crash and d is not None else ""
    fenced = sorted({"+".join(t["fenced"]) or "nobody" for t in uplink})
    print(f"  DC uplink lost  ours (ocf:bacula)       {_fmt(d)}   {_fmt(sd)}{ratio}; "
          f"fenced: {', '.join(fenced)}")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
