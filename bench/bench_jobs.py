"""A backup across a crash of the director's node: how soon it runs again, when it ends.

Run as root: `.venv/bin/python bench/bench_jobs.py [--reuse] [--mib N] [--json FILE]`.
On the lab (examples/lab-site.toml; `--reuse` takes a lab that is up, else one is brought up
and torn down), with N MiB (default 1024) of incompressible data on the client:
  1. the backup's own length without a failure;
  2. the same backup, and a crash (power off, fenced) of the node running the director once a
     third of it is written; from the client: the director answering on its VIP, the re-run
     (the bacula-dir agent's start brings it back, no command by hand) running, and its end.
Figures: crash -> director answers, crash -> job running again, answers -> running again
(target: under 5 s), crash -> job ends, next to the job's own length.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

# The unshipped test kit (testkit/) is at the checkout's top, beside src/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bacula_ha.lab import backups, lifecycle
from bacula_ha.lab.config import LabConfig
from testkit.lab import BaculaWatch, running_lab


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure(cfg: LabConfig, mib: int) -> dict[str, Any]:
    total = backups.make_data(cfg, files=max(1, mib // 16), mib_each=16)
    _log(f"{total} bytes of data on the client")
    base = backups.volume_bytes(cfg)
    began = time.time()
    job = backups.start_backup(cfg)
    rows = backups.wait_job(
        cfg, lambda r: r[-1].status not in ("C", "R"), "the plain backup", after=job - 1, step=0.2
    )
    plain = time.time() - began
    assert rows[-1].status == "T", rows
    _log(f"plain backup JobId {job}: {plain:.2f} s")

    base = backups.volume_bytes(cfg)
    job = backups.start_backup(cfg)
    backups.wait_written(cfg, base, total // 3)
    node = backups.started(cfg, "dir1-dir")
    assert node is not None
    crash = time.time()
    lifecycle.fail(cfg, node, "crash")
    watch = BaculaWatch(cfg, seconds=90, targets="dir")
    answered = watch.result()["dir"]
    assert answered is not None, "the director did not come back"
    rows = backups.wait_job(
        cfg, lambda r: any(x.status == "R" for x in r[1:]), "the re-run", after=job - 1, step=0.1
    )
    running = time.time()
    rerun = next(x for x in rows[1:] if x.status == "R")
    rows = backups.wait_job(
        cfg, lambda r: r[-1].status not in ("C", "R"), "the re-run's end", after=job - 1, step=0.2
    )
    ended = time.time()
    result = {
        "data_bytes": total,
        "plain_backup_s": round(plain, 2),
        "interrupted_jobid": job,
        "rerun_jobid": rerun.job_id,
        "rerun_status": rows[-1].status,
        "crash_to_director_answers_s": round(answered - crash, 2),
        "crash_to_job_running_s": round(running - crash, 2),
        "answers_to_job_running_s": round(running - answered, 2),
        "crash_to_job_end_s": round(ended - crash, 2),
        "record": backups.rerun_record(cfg),
    }
    lifecycle.heal(cfg)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="use the lab that is up")
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.reuse:
        result = measure(lifecycle.load(LabConfig().lab_dir), args.mib)
    else:
        with running_lab(nodes=2, site=Path(__file__).parents[1] / "examples/lab-site.toml") as cfg:
            result = measure(cfg, args.mib)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
