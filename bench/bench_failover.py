"""Failover recovery time (RTO) in the lab: our agents next to ocf:heartbeat:anything and the
Dummy + IPaddr2 floor, side by side on one lab; then the replicated catalog (PAF) next to its
own floor on a second lab; plus the cold `lab up` times.

Run as root: `.venv/bin/python bench/bench_failover.py [--trials N] [--json FILE]`.
Brings up the lab with examples/lab-site.toml (our agents), then on the same cluster and the
same fencing replaces the Bacula resources, in turn, by
  anything: the same groups with ocf:heartbeat:anything wrapping bacula-dir / bacula-sd (what an
            admin without our agents would build; no catalog check, no confsync);
  floor:    one Dummy + IPaddr2 group on the director's VIP (the cluster's own cost).
Each trial crashes the node running the director (power off, fenced by the survivor) and takes
the time from the crash until, from the client namespace, (a) the director answers a console
login on its VIP and (b) the storage daemon answers a director Hello on its VIP; for the floor,
until the VIP answers ARP. Then the hang case: SIGSTOP the director, time until it answers again.
Second lab life (`--catalog replicated`, examples/lab-replicated-site.toml): the same crash
trials (the standby synchronous before each), then the floor on that cluster, the PAF clone
removed first so that the floor pays for nothing of it.
The lab is torn down at the end, also on failure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

# The unshipped test kit (testkit/) is at the checkout's top, beside src/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bacula_ha.lab import cluster, lifecycle, machine, replicated, stack
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError
from testkit import timeline
from testkit.lab import ArpWatch, BaculaWatch, pcs, running_lab, started_on, wait_until

DIR_VIP = lifecycle.VIPS["dir-vip"]
ANYTHING_DIR = (
    "binfile=/usr/sbin/bacula-dir",
    "cmdline_options=-f -c /etc/bacula/bacula-dir.conf -u bacula -g bacula",
    "pidfile=/run/bacula/anything-dir.pid",
)
ANYTHING_SD = (
    "binfile=/usr/sbin/bacula-sd",
    "cmdline_options=-f -c /etc/bacula/bacula-sd.conf -u bacula -g bacula",
    "pidfile=/run/bacula/anything-sd.pid",
)
HANG_LIMIT = 90.0  # seconds we wait for recovery from a hung director


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# The director's critical path, first to last, in each configuration: what the timeline's
# shares are computed over (an operation of another chain runs beside it, off the path).
CHAINS = {
    "ours": ("cat1-fs", "cat1-db", "cat1-ip", "cat1-catalog", "dir1-ip", "dir1-dir"),
    "anything": ("cat1-fs", "cat1-db", "cat1-ip", "dir1-ip", "dir1-any"),
    "floor": ("floor-dummy", "floor-ip"),
    "replicated": ("cat1-db", "cat1-repl-ip", "cat1-ip", "cat1-catalog", "dir1-ip", "dir1-dir"),
    "floor_replicated": ("floor-dummy", "floor-ip"),
}


def _load_reported(cfg: LabConfig) -> bool:
    """True once every node's controller, since it last started, has told the cluster its load.

    Until then (its first throttle check, 30 s after start) the DC treats the node's load as
    "low" and runs half as many actions at once there (pacemaker's throttle_get_job_limit):
    a failover then queues the director's start behind the catalog's monitors. A cluster up
    for more than a minute never sees that; a trial just after a heal did."""
    for m in cfg.cluster_nodes:
        log = (m.dir / "fs/var/log/pacemaker/pacemaker.log").read_text(errors="replace")
        if "New throttle mode" not in log[log.rfind("Starting Pacemaker controller") :]:
            return False
    return True


def _dc(cfg: LabConfig) -> str:
    """The node that is the Designated Controller now."""
    out = machine.run_in(cfg, cluster.any_live_node(cfg), ["crmadmin", "-D", "-q"]).stdout
    return out.split()[-1] if out.split() else ""


def crash_trial(cfg: LabConfig, holder_rid: str, floor: bool, chain: str) -> dict[str, Any]:
    """Crash the node running holder_rid; time until the services answer again; read the
    survivor's log for the timeline; heal."""
    wait_until("every controller's load reported", partial(_load_reported, cfg), 60)
    (node,) = started_on(cfg, holder_rid)
    survivor = next(m for m in cfg.cluster_nodes if m.name != node)
    # A crashed DC costs an election (about 1 s) before the first transition: said per trial.
    dc_crashed = _dc(cfg) == node
    crash = time.time()
    lifecycle.fail(cfg, node, "crash")
    result: dict[str, Any] = {"crashed": node, "dc_crashed": dc_crashed}
    if floor:
        arp = ArpWatch(cfg, DIR_VIP, 60, until_answer=True).result()
        first = arp["first_answer"]
        result["vip"] = None if first is None else arp["start_epoch"] + first - crash
        answer, answers = result["vip"], {"VIP (ARP)": result["vip"]}
    else:
        answered = BaculaWatch(cfg, 90).result()
        for key in ("dir", "sd"):
            t = answered[key]
            result[key] = None if t is None else t - crash
        answer, answers = result["dir"], {"director": result["dir"], "storage": result["sd"]}
    time.sleep(1)  # the survivor's log catches up with the last result lines
    log = (survivor.dir / "fs/var/log/pacemaker/pacemaker.log").read_text(errors="replace")
    tl = timeline.parse(log, crash)
    result["timeline"] = timeline.render(tl, answers)
    if answer is not None:
        result["shares"] = tl.shares(CHAINS[chain], answer)
    lifecycle.heal(cfg)
    return result


def hang_trial(cfg: LabConfig) -> float | None:
    """SIGSTOP the director; seconds until it answers again (None: not within HANG_LIMIT)."""
    (node,) = started_on(cfg, "dir1-dir") or started_on(cfg, "dir1-any")
    hung = time.time()
    lifecycle.fail(cfg, node, "hang-dir")
    answered = BaculaWatch(cfg, HANG_LIMIT, targets="dir").result()["dir"]
    lifecycle.heal(cfg)
    return None if answered is None else answered - hung


def to_anything(cfg: LabConfig) -> None:
    for rid in ("dir1-confsync", "dir1-dir", "cat1-catalog", "sd1-sd"):
        pcs(cfg, "resource", "delete", rid, "--force")
    pcs(cfg, "resource", "create", "dir1-any", "ocf:heartbeat:anything", *ANYTHING_DIR,
        "--group", "dir1-group")  # fmt: skip
    # As the site orders our director: after the catalog's database and address.
    pcs(cfg, "constraint", "order", "start", "cat1-ip", "then", "start", "dir1-any")
    pcs(cfg, "resource", "create", "sd1-any", "ocf:heartbeat:anything", *ANYTHING_SD,
        "--group", "sd1-group")  # fmt: skip
    wait_until("the anything groups", lambda: bool(started_on(cfg, "dir1-any")), 90)
    wait_until("the director under anything", lambda: stack.director_answers(cfg), 60)


def to_floor(cfg: LabConfig) -> None:
    for group in ("dir1-group", "sd1-group", "cat1-group"):
        pcs(cfg, "resource", "delete", group, "--force")
    pcs(cfg, "resource", "create", "floor-dummy", "ocf:heartbeat:Dummy", "--group", "floor")
    pcs(cfg, "resource", "create", "floor-ip", "ocf:heartbeat:IPaddr2", f"ip={DIR_VIP}",
        "cidr_netmask=24", "nic=eth0", "--group", "floor")  # fmt: skip
    wait_until("the floor group", lambda: bool(started_on(cfg, "floor-ip")), 60)


def replicated_synchronous(cfg: LabConfig) -> bool:
    """The Promoted node's commits wait for the other one again (after a heal)."""
    (primary,) = replicated.promoted(cfg, started_on(cfg, "dir1-dir")[0])
    rows = replicated.psql(cfg, primary, "SELECT sync_state FROM pg_stat_replication", "postgres")
    return rows == "quorum"


def replicated_floor(cfg: LabConfig) -> None:
    """The floor on the replicated lab: no Bacula group, no PAF clone (heal skips the rewind).

    The clone is stopped before it is deleted. Deleted running (`--force`), its instances
    became orphans whose stop ran pgsqlms without the clone's notify=true: PAF refuses that
    (rc 5, "You must set meta parameter notify=true"), a failed stop, and Pacemaker fenced
    both nodes. That was the "healed node fenced again as it rejoined" of earlier runs."""
    to_floor(cfg)
    pcs(cfg, "resource", "disable", replicated.DB_CLONE, "--wait=120", timeout=150)
    pcs(cfg, "resource", "delete", replicated.DB_CLONE)


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def _fmt(value: float | None) -> str:
    return "   -  " if value is None else f"{value:6.2f}"


def shared_disk_life(trials_per_config: int, figures: dict[str, Any]) -> None:
    """The bare lab's cold start, then ours, anything and the floor on the shared-disk lab."""
    start = time.monotonic()
    with running_lab(nodes=2) as bare:
        figures["cold_up_bare"] = time.monotonic() - start
        _log(f"bare lab up: {figures['cold_up_bare']:.1f} s")
        del bare
    start = time.monotonic()
    with running_lab(nodes=2, site=stack.default_site()) as cfg:
        figures["cold_up_stack"] = time.monotonic() - start
        _log(f"stack lab up: {figures['cold_up_stack']:.1f} s")
        for name, prepare, holder in (
            ("ours", None, "dir1-dir"),
            ("anything", to_anything, "dir1-any"),
            ("floor", to_floor, "floor-ip"),
        ):
            if prepare is not None:
                prepare(cfg)
            trials = []
            for i in range(trials_per_config):
                trial = crash_trial(cfg, holder, floor=name == "floor", chain=name)
                _log(f"{name} crash trial {i + 1}: {trial}")
                trials.append(trial)
            figures[name] = {"crash": trials}
            if name != "floor":
                figures[name]["hang"] = hang_trial(cfg)
                _log(f"{name} hang: {figures[name]['hang']}")


def print_shares(figures: dict[str, Any]) -> None:
    """Where the seconds went, median per owner over each configuration's trials, and the
    first trial's whole timeline."""
    owners = ("detection", "fencing", "transitions", "database", "IP", "ours", "anything", "floor")
    print("where the director's (floor: the VIP's) seconds go, median of the trials (s):")
    print("  " + f"{'configuration':18}" + "".join(f"{o:>12}" for o in owners))
    for name in ("ours", "anything", "floor", "replicated", "floor_replicated"):
        trials = [t for t in figures.get(name, {}).get("crash", []) if "shares" in t]
        if not trials:
            continue
        row = [_median([t["shares"].get(o, 0.0) for t in trials]) for o in owners]
        print("  " + f"{name:18}" + "".join(f"{_fmt(v):>12}" for v in row))
    print("  the crashed node was the DC (an election before the first transition) in:")
    for name in ("ours", "anything", "floor", "replicated", "floor_replicated"):
        trials = figures.get(name, {}).get("crash", [])
        if trials:
            dc = sum(1 for t in trials if t.get("dc_crashed"))
            print(f"    {name}: {dc} of {len(trials)} trials")
    for name in ("ours", "anything", "floor", "replicated"):
        trials = figures.get(name, {}).get("crash", [])
        if trials:
            print(f"timeline, {name}, first trial (crash of {trials[0]['crashed']}; s after it):")
            print("\n".join(trials[0]["timeline"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2, help="crash trials per configuration")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument(
        "--only-replicated", action="store_true", help="skip the shared-disk lab (not for reports)"
    )
    args = parser.parse_args()
    figures: dict[str, Any] = {}

    lifecycle.down(LabConfig().lab_dir)
    if not args.only_replicated:
        shared_disk_life(args.trials, figures)
    start = time.monotonic()
    site = replicated.default_site()
    with running_lab(nodes=2, site=site, catalog="replicated") as rcfg:
        figures["cold_up_replicated"] = time.monotonic() - start
        _log(f"replicated lab up: {figures['cold_up_replicated']:.1f} s")
        for name, holder in (("replicated", "dir1-dir"), ("floor_replicated", "floor-ip")):
            if name == "floor_replicated":
                replicated_floor(rcfg)
            trials: list[dict[str, Any]] = []
            figures[name] = {"crash": trials}
            for i in range(args.trials):
                if name == "replicated":
                    wait_until("a synchronous standby", partial(replicated_synchronous, rcfg), 60)
                try:
                    trial = crash_trial(rcfg, holder, floor=name != "replicated", chain=name)
                except LabError as exc:
                    if name == "replicated":
                        raise
                    # Seen twice: after the PAF clone's removal a healed node was fenced
                    # again on rejoining. The first life's floor (same cluster settings and
                    # fencing) still gives the ratio; the failure is reported.
                    figures[name]["error"] = str(exc).splitlines()[0]
                    _log(f"{name} crash trial {i + 1} failed: {figures[name]['error']}")
                    break
                _log(f"{name} crash trial {i + 1}: {trial}")
                trials.append(trial)

    if args.only_replicated:
        print(json.dumps(figures, indent=1))
        return
    print(
        f"cold lab up: bare {figures['cold_up_bare']:.1f} s, stack {figures['cold_up_stack']:.1f}"
        f" s, replicated catalog {figures['cold_up_replicated']:.1f} s"
    )
    # Fencing node1 waits pcmk_delay_base (1 s, the site's fence race rule): compare like with like.
    print("crash RTO in s, median per crashed node      director  storage   / floor (dir, sd)")
    for node in ("node1", "node2"):
        floor = _median([t["vip"] for t in figures["floor"]["crash"] if t["crashed"] == node])
        for name in ("ours", "anything", "floor"):
            trials = [t for t in figures[name]["crash"] if t["crashed"] == node]
            if not trials:
                continue
            if name == "floor":
                print(f"  {node} floor (Dummy+IPaddr2, ARP)   {_fmt(floor)}")
                continue
            d = _median([t["dir"] for t in trials])
            sd = _median([t["sd"] for t in trials])
            ratio = ""
            if floor and d is not None and sd is not None:
                ratio = f"   {d / floor:.2f}x, {sd / floor:.2f}x"
            print(f"  {node} {name:28} {_fmt(d)}   {_fmt(sd)}{ratio}")
    print("replicated catalog (PAF), second lab life (same cluster settings and fencing):")
    if "error" in figures["floor_replicated"]:
        print(f"  (its own floor failed: {figures['floor_replicated']['error']})")
    for node in ("node1", "node2"):
        own = _median(
            [t["vip"] for t in figures["floor_replicated"]["crash"] if t["crashed"] == node]
        )
        first = _median([t["vip"] for t in figures["floor"]["crash"] if t["crashed"] == node])
        trials = [t for t in figures["replicated"]["crash"] if t["crashed"] == node]
        d = _median([t["dir"] for t in trials])
        sd = _median([t["sd"] for t in trials])
        line = f"  {node} {'replicated (pgsqlms)':28} {_fmt(d)}   {_fmt(sd)}"
        for label, floor in (("first life's floor", first), ("its own floor", own)):
            if floor and d and sd:
                line += f"   {d / floor:.2f}x, {sd / floor:.2f}x ({label})"
        print(line)
        print(f"  {node} floor (Dummy+IPaddr2, ARP), its own life   {_fmt(own)}")
    shared = _median([t["dir"] for t in figures["ours"]["crash"]])
    repl = _median([t["dir"] for t in figures["replicated"]["crash"]])
    floor_s = _median([t["vip"] for t in figures["floor"]["crash"]])
    floor_r = _median([t["vip"] for t in figures["floor_replicated"]["crash"]]) or floor_s
    if shared and repl and floor_s and floor_r:
        print(
            f"director, median over both nodes: shared-disk {shared:.2f} s ({shared / floor_s:.2f}x"
            f" its floor {floor_s:.2f} s), replicated {repl:.2f} s ({repl / floor_r:.2f}x its"
            f" floor {floor_r:.2f} s; the first life's when its own failed)"
        )
    print_shares(figures)
    ours_hang, any_hang = figures["ours"]["hang"], figures["anything"]["hang"]
    print(f"hang (SIGSTOP director) to answering again (s): ours {_fmt(ours_hang)}, "
          f"anything {_fmt(any_hang)} (- = not within {HANG_LIMIT:.0f} s)")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
