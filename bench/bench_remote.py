"""Storage daemon failover in the lab: on pacemaker_remote nodes next to on full nodes.

Run as root: `BACULA_HA_LAB_ID=x .venv/bin/python bench/bench_remote.py [--trials N] [--json FILE]`.

Two labs, one after the other, on the same machine:
  remote: `lab up --remote 2` (examples/lab-remote-site.toml), the storage daemon on remote1 with
          remote2 as standby. Each trial crashes the remote node running it (power off; a full
          node fences it once the connection's monitor fails, every 3 s with a 6 s timeout);
          then the full node holding that remote node's connection is crashed (the connection
          moves, the storage daemon should not).
  full:   `lab up` (examples/lab-site.toml), the storage daemon on full nodes. Each trial crashes
          the full node running it (fenced by the survivor through corosync membership; node1's
          fencing waits the site's 1 s fence_delay).
Every time is from the crash until the storage daemon answers a director Hello on its VIP, seen
from the client namespace. The labs are torn down at the end, also on failure.
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

from bacula_ha.lab import lifecycle, remote, stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import BaculaWatch, running_lab, started_on, wait_until

LIMIT = 90.0  # seconds a trial waits for the storage daemon


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def sd_crash_trial(cfg: LabConfig, node: str) -> float | None:
    """Crash node; seconds until the storage daemon answers again (None: not within LIMIT)."""
    crash = time.time()
    lifecycle.fail(cfg, node, "crash")
    answered = BaculaWatch(cfg, LIMIT, targets="sd").result()["sd"]
    # The daemon may answer before the crashed node is fenced (it never stopped when only a
    # connection moved): a node booted by heal before that would be fenced once up again.
    power = cfg.server(node).power_file
    wait_until(f"{node} fenced", lambda: power.read_text() == "off", LIMIT)
    lifecycle.heal(cfg)
    return None if answered is None else answered - crash


def _median(values: list[float | None]) -> float | None:
    got = [v for v in values if v is not None]
    return statistics.median(got) if got else None


def _fmt(values: list[float | None]) -> str:
    shown = ", ".join("-" if v is None else f"{v:.2f}" for v in values)
    med = _median(values)
    return f"{'   -  ' if med is None else f'{med:6.2f}'}   ({shown})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2, help="crash trials per case")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()
    figures: dict[str, Any] = {"remote": [], "connection": [], "full": []}

    lifecycle.down(LabConfig().lab_dir)
    start = time.monotonic()
    with running_lab(nodes=2, remotes=2, site=remote.default_site()) as cfg:
        figures["cold_up_remote"] = time.monotonic() - start
        _log(f"remote lab up: {figures['cold_up_remote']:.1f} s")
        for i in range(args.trials):
            (sd_node,) = started_on(cfg, "sd1-sd")
            t = sd_crash_trial(cfg, sd_node)
            _log(f"remote crash trial {i + 1} ({sd_node}): {t}")
            figures["remote"].append(t)
        for i in range(args.trials):
            (sd_node,) = started_on(cfg, "sd1-sd")
            (holder,) = started_on(cfg, sd_node)
            t = sd_crash_trial(cfg, holder)
            _log(f"connection holder crash trial {i + 1} ({holder}): {t}")
            figures["connection"].append(t)
    start = time.monotonic()
    with running_lab(nodes=2, site=stack.default_site()) as cfg:
        figures["cold_up_full"] = time.monotonic() - start
        _log(f"full-node lab up: {figures['cold_up_full']:.1f} s")
        for i in range(args.trials):
            (sd_node,) = started_on(cfg, "sd1-sd")
            t = sd_crash_trial(cfg, sd_node)
            _log(f"full crash trial {i + 1} ({sd_node}): {t}")
            figures["full"].append(t)

    print(
        f"cold lab up: 2 full + 2 remote nodes {figures['cold_up_remote']:.1f} s, "
        f"2 full nodes {figures['cold_up_full']:.1f} s"
    )
    print("crash -> storage daemon answering on its VIP, s    median   (trials)")
    print(f"  remote node running it (fenced, SD to remote2)  {_fmt(figures['remote'])}")
    print(f"  full node running it (fenced, SD to survivor)   {_fmt(figures['full'])}")
    print(f"  full node holding its connection (SD stays)     {_fmt(figures['connection'])}")
    remote_med, full_med = _median(figures["remote"]), _median(figures["full"])
    if remote_med and full_med:
        print(f"  remote / full: {remote_med / full_med:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
