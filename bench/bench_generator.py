"""Generator benchmark: a 100-storage-daemon, 20-node site in both formats vs the import floor.

Run: .venv/bin/python bench/bench_generator.py [--runs N] [--keep DIR] [--pcs-stepwise]

Measures, in one run and on the same machine state:
- the floor: a bare interpreter (`python -I`) importing click and jinja2;
- `bacula-ha generate SITE --format crm|pcs -o FILE` as a user runs it (a fresh process each time);
- the 100-daemon crm output loaded into an empty 20-node CIB (`crm configure load update`), next to
  the pcs script applied to another empty CIB (`CIB_FILE=cib.xml sh site.sh`: its one-step path;
  with --pcs-stepwise also its pcs commands one by one, many minutes), then `crm_verify -x` and
  `crm_simulate -S` (all up; then one node failing) on that CIB;
- the remote-node site (3 full nodes, 100 remote nodes, 200 storage daemons): generation,
  `crm configure load update`, `crm_verify`, `crm_simulate -S` starting everything, then a remote
  node failing (its connection's monitor fails) and a full node failing.
Prints a small table; exits 1 if crm_verify or crm_simulate find a problem.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_generator_helpers import empty_cib as empty_cib_with_remotes  # noqa: E402
from tests.test_generator_helpers import remote_site_text  # noqa: E402

VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
BACULA_HA = ROOT / ".venv" / "bin" / "bacula-ha"
NODES = 20
STORAGE_DAEMONS = 100


def site_text(nodes: int = NODES, daemons: int = STORAGE_DAEMONS) -> str:
    """A site: `nodes` nodes in two data centres, one director with its catalog, `daemons` SDs."""
    half = nodes // 2
    names = [f"dc1-n{i:02d}" for i in range(1, half + 1)] + [
        f"dc2-n{i:02d}" for i in range(1, nodes - half + 1)
    ]
    out = ['[site]\nname = "bench"\n']
    for name in names:
        dc = name.split("-")[0]
        out.append(
            f'[[node]]\nname = "{name}"\ndc = "{dc}"\n'
            f'fence = {{ agent = "fence_dummy", params = {{ type = "file", '
            f'status_file = "/run/fence/{name}" }} }}\n'
        )
    out.append(
        '[[director]]\nname = "dir1"\npreferred = "dc1-n01"\nstandby = "dc2-n01"\n'
        'vip = { ip = "10.50.0.2", cidr_netmask = 16 }\n'
        '[director.catalog]\nname = "cat1"\nbackend = "postgresql"\n'
        'vip = { ip = "10.50.0.3", cidr_netmask = 16 }\n'
        'disk = { type = "drbd", drbd_resource = "cat1", device = "/dev/drbd1000", '
        'fstype = "ext4", directory = "/srv/cat1" }\n'
        'database = { agent = "pgsql", params = { pgdata = "/srv/cat1/data" } }\n'
    )
    for i in range(daemons):
        preferred = names[i % nodes]
        # The standby is the node with the same number in the other data centre.
        standby = names[(i % nodes + half) % nodes]
        ip = f"10.50.{1 + i // 200}.{10 + i % 200}"
        if i % 2:
            disk = (
                f'disk = {{ type = "drbd", drbd_resource = "sd{i:03d}", device = "/dev/drbd{i}", '
                f'fstype = "xfs", directory = "/srv/sd{i:03d}" }}'
            )
        else:
            disk = (
                f'disk = {{ type = "shared", device = "/dev/disk/by-label/sd{i:03d}", '
                f'fstype = "xfs", directory = "/srv/sd{i:03d}" }}'
            )
        out.append(
            f'[[storage]]\nname = "sd{i:03d}"\npreferred = "{preferred}"\nstandby = "{standby}"\n'
            f'vip = {{ ip = "{ip}", cidr_netmask = 16 }}\n{disk}\n'
            f'params = {{ config = "/etc/bacula/sd{i:03d}/bacula-sd.conf" }}\n'
        )
    return "\n".join(out)


# Byte-code caches as an installed package has them: this machine sets PYTHONDONTWRITEBYTECODE,
# which would make every run of an editable install compile its modules from source. The floor
# and the generator both use (and warm) the same private cache directory.
PY_ENV: dict[str, str] = {}


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env={**os.environ, **PY_ENV, **(env or {})},
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return elapsed, done.stdout + done.stderr


def median_of(runs: int, argv: list[str]) -> float:
    return statistics.median(timed(argv)[0] for _ in range(runs))


def empty_cib(path: Path, nodes: list[str]) -> None:
    states = "".join(
        f'<node_state id="{i}" uname="{n}" in_ccm="true" crmd="online" join="member" '
        f'expected="member"/>'
        for i, n in enumerate(nodes, 1)
    )
    node_xml = "".join(f'<node id="{i}" uname="{n}"/>' for i, n in enumerate(nodes, 1))
    path.write_text(
        '<cib crm_feature_set="3.16.1" validate-with="pacemaker-3.9" epoch="1" num_updates="0" '
        f'admin_epoch="0" have-quorum="1"><configuration><crm_config/><nodes>{node_xml}</nodes>'
        f"<resources/><constraints/></configuration><status>{states}</status></cib>\n"
    )


def cluster_tools(
    work: Path, nodes: list[str], rows: list[tuple[str, float, str]], stepwise: bool
) -> tuple[list[str], int, int]:
    """crmsh load, the pcs script, crm_verify and crm_simulate on the crm output; appends rows."""
    cib = work / "cib.xml"
    empty_cib(cib, nodes)
    load, _ = timed(
        ["crm", "configure", "load", "update", str(work / "site.crm")], {"CIB_file": str(cib)}
    )
    rows.append(("crm configure load update (offline CIB)", load, ""))
    pcs_cib = work / "cib-pcs.xml"
    empty_cib(pcs_cib, nodes)
    apply, _ = timed(["sh", str(work / "site.sh")], {"CIB_FILE": str(pcs_cib)})
    rows.append(("pcs script, one step (offline CIB)", apply, f"{apply / load:.2f}x crm load"))
    if stepwise:
        step_cib = work / "cib-stepwise.xml"
        empty_cib(step_cib, nodes)
        step, _ = timed(["sh", str(work / "site.sh"), "--stepwise"], {"CIB_FILE": str(step_cib)})
        rows.append(("pcs script --stepwise (offline CIB)", step, f"{step / load:.2f}x crm load"))
    verify, output = timed(["crm_verify", "-x", str(cib), "-V"])
    problems = re.findall(r"(?im)^.*\b(error|warning)\b.*$", output)
    rows.append(("crm_verify -x", verify, "clean" if not problems else f"{len(problems)} problems"))
    graph = work / "graph.xml"
    run, _ = timed(["crm_simulate", "-x", str(cib), "-R", "-Q", "-G", str(graph)])
    synapses = graph.read_text().count("<synapse ")
    rows.append(("crm_simulate -R (scheduler, all nodes up)", run, f"{synapses} graph actions"))
    up = work / "up.xml"
    sim, sim_out = timed(["crm_simulate", "-x", str(cib), "-S", "-O", str(up)])
    starts = len(re.findall(r"Resource action:\s+\S+\s+start ", sim_out))
    rows.append(("crm_simulate -S (execute that transition)", sim, f"{starts} starts"))
    fail, fail_out = timed(["crm_simulate", "-x", str(up), "-R", f"--node-fail={nodes[0]}"])
    moves = len(re.findall(r"^\s+\* (?:Move|Promote)\s", fail_out, re.M))
    rows.append((f"crm_simulate -R --node-fail={nodes[0]}", fail, f"{moves} moves/promotions"))
    return problems, starts, moves


def remote_site(work: Path, rows: list[tuple[str, float, str]]) -> list[str]:
    """The 3 full + 100 remote node site, 200 storage daemons; appends rows, returns problems."""
    site = work / "site-remote.toml"
    site.write_text(remote_site_text())
    text = site.read_text()
    nodes = re.findall(r'^\[\[node\]\]\nname = "(\S+)"', text, re.M)
    remotes = re.findall(r'^\[\[remote\]\]\nname = "(\S+)"', text, re.M)
    argv = [str(BACULA_HA), "generate", str(site), "--format", "crm", "-o", str(work / "r.crm")]
    timed(argv)  # warm the byte-code cache
    gen, _ = timed(argv)
    rows.append(("remote site: generate --format crm", gen, "3 full + 100 remote, 200 SD"))
    cib = work / "cib-remote.xml"
    empty_cib_with_remotes(cib, nodes, remotes)
    load, _ = timed(
        ["crm", "configure", "load", "update", str(work / "r.crm")], {"CIB_file": str(cib)}
    )
    rows.append(("remote site: crm configure load update", load, ""))
    verify, output = timed(["crm_verify", "-x", str(cib), "-V"])
    problems = re.findall(r"(?im)^.*\b(error|warning)\b.*$", output)
    rows.append(("remote site: crm_verify -x", verify, "clean" if not problems else output[:200]))
    up = work / "up-remote.xml"
    start, out = timed(["crm_simulate", "-x", str(cib), "-S", "-O", str(up)])
    starts = len(re.findall(r"Resource action:\s+\S+\s+start ", out))
    rows.append(("remote site: crm_simulate -S (start everything)", start, f"{starts} starts"))
    host = re.search(r"^\s*\* r001\s+\(ocf:pacemaker:remote\):\s+Started (\S+)", out, re.M)
    if host is None or starts == 0:
        return [*problems, "the remote site did not start"]
    inject = f"--op-inject=r001_monitor_30000@{host.group(1)}=1"
    fail, out = timed(["crm_simulate", "-x", str(up), "-S", "-O", str(work / "rf.xml"), inject])
    moves = len(re.findall(r"^\s+\* Move\s", out, re.M))
    fenced = "Fence (reboot) r001" in out
    rows.append(
        ("remote site: crm_simulate -S, r001 fails", fail, f"fenced={fenced}, {moves} moves")
    )
    full, out = timed(
        ["crm_simulate", "-x", str(up), "-S", "-O", str(work / "ff.xml"), "--node-fail=f1"]
    )
    sd_moves = len(re.findall(r"^\s+\* Move\s+sd", out, re.M))
    rows.append(
        ("remote site: crm_simulate -S, f1 fails", full, f"{sd_moves} storage daemons move")
    )
    if not fenced or moves == 0 or sd_moves:
        problems.append("remote site: unexpected failover")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per timing (median)")
    parser.add_argument("--keep", type=Path, help="keep the site, outputs and CIB here")
    parser.add_argument(
        "--pcs-stepwise",
        action="store_true",
        help="also time the pcs script's commands one by one (many minutes on 100 daemons)",
    )
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="skip crmsh, crm_verify and crm_simulate (minutes on 100 daemons)",
    )
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-generator-"))
    work.mkdir(parents=True, exist_ok=True)
    site = work / "site-100sd.toml"
    site.write_text(site_text())
    nodes = re.findall(r'^name = "(dc\d-n\d+)"', site.read_text(), re.M)

    PY_ENV.update(PYTHONPYCACHEPREFIX=str(work / "pycache"), PYTHONDONTWRITEBYTECODE="")
    floor_argv = [str(VENV_PYTHON), "-I", "-c", "import click, jinja2"]

    def generate(fmt: str, out: str) -> list[str]:
        return [str(BACULA_HA), "generate", str(site), "--format", fmt, "-o", str(work / out)]

    for warm_up in (floor_argv, generate("crm", "site.crm"), generate("pcs", "site.sh")):
        timed(warm_up)
    rows: list[tuple[str, float, str]] = []
    # Interleave the floor and the generator so that machine noise hits both alike.
    floor_runs, crm_runs, pcs_runs = [], [], []
    for _ in range(args.runs):
        floor_runs.append(timed(floor_argv)[0])
        crm_runs.append(timed(generate("crm", "site.crm"))[0])
        pcs_runs.append(timed(generate("pcs", "site.sh"))[0])
    floor = statistics.median(floor_runs)
    crm = statistics.median(crm_runs)
    pcs = statistics.median(pcs_runs)
    rows.append(("floor: python -I, import click, jinja2", floor, "1.00x"))
    rows.append(("generate --format crm (100 SD, 20 nodes)", crm, f"{crm / floor:.2f}x floor"))
    rows.append(("generate --format pcs (100 SD, 20 nodes)", pcs, f"{pcs / floor:.2f}x floor"))

    crm_text = (work / "site.crm").read_text()
    pcs_lines = sum(
        1 for line in (work / "site.sh").read_text().splitlines() if line.startswith("run ")
    )

    problems: list[str] = []
    starts = moves = -1
    if not args.generate_only:
        problems, starts, moves = cluster_tools(work, nodes, rows, args.pcs_stepwise)
        problems += remote_site(work, rows)

    resources = len(re.findall(r"^primitive ", crm_text, re.M))
    constraints = len(re.findall(r"^(location|colocation|order) ", crm_text, re.M))
    print(
        f"site: {NODES} nodes, {STORAGE_DAEMONS} storage daemons + 1 director/catalog; "
        f"{resources} primitives, {constraints} constraints; pcs script: {pcs_lines} commands; "
        f"median of {args.runs} runs; python {sys.version.split()[0]}"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'what':<{width}}  {'seconds':>8}  note")
    for what, seconds, note in rows:
        print(f"{what:<{width}}  {seconds:8.3f}  {note}")
    if not args.keep:
        shutil.rmtree(work)
    return 1 if problems or starts == 0 or moves == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
