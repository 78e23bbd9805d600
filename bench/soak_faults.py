"""Random faults during backups in the lab: every backup must finish exactly once and restore
byte-identical, on the shared-disk and on the replicated catalog.

Run as root: `.venv/bin/python bench/soak_faults.py [--cycles N] [--seed S] [--catalog KIND]`.
For each catalog kind (shared disk, then PostgreSQL replication under PAF) one two-node lab
life; each cycle starts the lab's backup (128 MiB, throttled to 20 MB/s so the fault lands while
it runs), draws a fault and a node, injects it once a quarter is written, waits until one run
of the job finished and none is left to run, restores that run and compares it with the
client's files, then heals the lab. Faults: crash, partition, uplink (of either node), kill and
hang (SIGSTOP) of the director, hang of the storage daemon (on the nodes running them).
A cycle is clean when exactly one run finished (T), it is the last run, and its restore is
byte-identical. Prints one line per cycle and a summary; exits 1 if any cycle was not clean.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

# The unshipped test kit (testkit/) is at the checkout's top, beside src/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bacula_ha.lab import backups, lifecycle, replicated, stack
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError
from testkit.lab import connectivity, power_offs, running_lab, started_on, wait_until

NODE_FAULTS = ("crash", "partition", "uplink")
DAEMON_FAULTS = {"kill-dir": "dir1-dir", "hang-dir": "dir1-dir", "hang-sd": "sd1-sd"}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def draw(rng: random.Random, cfg: LabConfig) -> tuple[str, str]:
    """A fault and the node it hits: a node fault on either node, a daemon fault where it runs."""
    mode = rng.choice((*NODE_FAULTS, *DAEMON_FAULTS))
    if mode in DAEMON_FAULTS:
        (node,) = started_on(cfg, DAEMON_FAULTS[mode])
    else:
        node = rng.choice([m.name for m in cfg.cluster_nodes])
    return mode, node


def cycle(cfg: LabConfig, total: int, mode: str, node: str) -> dict[str, object]:
    offs = len(power_offs(cfg))
    run = backups.backup_through(cfg, total, lambda: lifecycle.fail(cfg, node, mode), timeout=420)
    finished = run.finished
    identical = len(finished) == 1 and backups.restore_identical(cfg, finished[0].job_id)
    clean = run.finished_once and identical
    return {
        "mode": mode,
        "node": node,
        "runs": run.describe(),
        "fenced": power_offs(cfg)[offs:],
        "restore identical": identical,
        "clean": clean,
    }


def heal(cfg: LabConfig) -> None:
    lifecycle.heal(cfg, timeout=120)
    names = {m.name for m in cfg.cluster_nodes}
    wait_until("every node connected", lambda: connectivity(cfg) == names, 60)
    wait_until("the director answering", lambda: stack.director_answers(cfg), 90, step=0.5)
    if cfg.catalog == "replicated":
        replicated.wait_replicating(cfg, "node1")


def life(catalog: str, cycles: int, rng: random.Random) -> list[dict[str, object]]:
    site = replicated.default_site() if catalog == "replicated" else stack.default_site()
    results: list[dict[str, object]] = []
    with running_lab(nodes=2, site=site, catalog=catalog) as cfg:
        total = backups.make_data(cfg, files=8, mib_each=16)
        names = {m.name for m in cfg.cluster_nodes}
        wait_until("both nodes connected", lambda: connectivity(cfg) == names, 60)
        for i in range(cycles):
            mode, node = draw(rng, cfg)
            try:
                result = cycle(cfg, total, mode, node)
            except LabError as exc:
                result = {"mode": mode, "node": node, "clean": False, "error": str(exc)[:300]}
            result["catalog"] = catalog
            _log(f"{catalog} cycle {i + 1}/{cycles}: {result}")
            results.append(result)
            heal(cfg)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=10, help="faults per catalog kind")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--catalog", choices=("shared", "replicated", "both"), default="both")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    kinds = ("shared", "replicated") if args.catalog == "both" else (args.catalog,)
    lifecycle.down(LabConfig().lab_dir)
    results = [r for kind in kinds for r in life(kind, args.cycles, rng)]
    for kind in kinds:
        mine = [r for r in results if r["catalog"] == kind]
        clean = sum(1 for r in mine if r["clean"])
        drawn = ", ".join(f"{r['mode']}@{r['node']}" for r in mine)
        print(f"{kind}: {clean} of {len(mine)} cycles clean (seed {args.seed}): {drawn}")
        for r in mine:
            if not r["clean"]:
                print(f"  NOT CLEAN: {r}")
    sys.exit(0 if all(r["clean"] for r in results) else 1)


if __name__ == "__main__":
    main()
