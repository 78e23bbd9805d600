"""Agent speed and memory, side by side in one run: bare interpreter, ocf:heartbeat:Dummy, ours.

Run as root after `bacula-ha install`: `.venv/bin/python bench/bench_agents.py [--runs N]`.
Starts a throwaway PostgreSQL catalog, a director, a storage daemon with 10 devices and a file
daemon for each Bacula install (Debian's 9.6.7, and the 13.0.3 build of scripts/build-bacula
in bacula.org's layout when it is built; `--bacula debian` for Debian's only); prints median
wall time and peak RSS of each action, and the ratios the targets use.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

# The unshipped test kit (testkit/) is at the checkout's top, beside src/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bacula_ha.bacula.layout import DEBIAN, Layout, under
from bacula_ha.bacula.versions import daemon_version
from bacula_ha.ocf.deadline import Deadline
from testkit.sandbox.bacula import BaculaSite, CatalogSettings
from testkit.sandbox.postgres import PostgresServer, free_port, make_basedir

OCF_ROOT = "/usr/lib/ocf"
OURS = f"{OCF_ROOT}/resource.d/bacula"
DUMMY = f"{OCF_ROOT}/resource.d/heartbeat/Dummy"
BASE_ENV = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OCF_ROOT": OCF_ROOT}


def measure_all(
    commands: Sequence[tuple[str, Sequence[str], Mapping[str, str]]], runs: int
) -> list[tuple[str, float, float, int]]:
    """Median wall seconds, peak RSS (MiB) and exit code of each command.

    The commands run interleaved, one round at a time, so that a change in the machine's load
    (other sessions, the daemons' own work) weighs on every row alike and the ratios hold.
    The peak comes from GNU time in a separate run: a child forked from this benchmark would
    report this process's own RSS, copied before exec, as its peak.
    """
    times: list[list[float]] = [[] for _ in commands]
    codes = [0] * len(commands)
    for _ in range(runs):
        for i, (_, argv, env) in enumerate(commands):
            start = time.perf_counter()
            codes[i] = subprocess.run(
                argv, env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            ).returncode
            times[i].append(time.perf_counter() - start)
    rows = []
    for i, (label, argv, env) in enumerate(commands):
        with tempfile.NamedTemporaryFile("r") as out:
            subprocess.run(
                ["/usr/bin/time", "-f", "%M", "-o", out.name, *argv],
                env=dict(env),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            peak_kib = int(out.read().strip().splitlines()[-1])
        rows.append((label, statistics.median(times[i]), peak_kib / 1024, codes[i]))
    return rows


def ocf_env(params: Mapping[str, str], rsctmp: str, **extra: str) -> dict[str, str]:
    env = dict(
        BASE_ENV,
        HA_RSCTMP=rsctmp,
        OCF_RESOURCE_INSTANCE="bench",
        OCF_RESKEY_CRM_meta_timeout="20000",
    )
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    env.update(extra)
    return env


def start_returns_after_answer(
    site: BaculaSite, params: Mapping[str, str], rsctmp: str, instance: str
) -> float:
    """Seconds between the director first answering and the agent's start returning."""
    from bacula_ha.bacula.protocol import ProtocolError, console_probe

    answered: list[float] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                console_probe("127.0.0.1", site.dir_port, site.dir_password, 0.5)
            except ProtocolError:
                time.sleep(0.002)
                continue
            answered.append(time.perf_counter())
            return

    thread = threading.Thread(target=poll)
    thread.start()
    env = ocf_env(params, rsctmp, OCF_RESOURCE_INSTANCE=instance)
    subprocess.run([f"{OURS}/bacula-dir", "start"], env=env, check=True)
    returned = time.perf_counter()
    thread.join(5)
    stop.set()
    return returned - answered[0] if answered else float("nan")


def installs(which: str) -> list[tuple[str, Layout]]:
    """The Bacula installs to measure, labelled with their version."""
    found = [DEBIAN]
    if which != "debian":
        here = Path(__file__).resolve().parent.parent
        built = subprocess.run(
            [str(here / "scripts" / "build-bacula"), "--check"], capture_output=True, text=True
        )
        if built.returncode == 0:
            found.append(under(built.stdout.strip()))
        else:
            print("Bacula 13.0.3 is not built (scripts/build-bacula): Debian's 9.6.7 only")
    labelled = []
    for layout in found:
        version = daemon_version(layout.tool("bacula-dir"), deadline=Deadline.after(10))
        labelled.append((str(version or "?"), layout))
    return labelled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--bacula", choices=("all", "debian"), default="all")
    args = parser.parse_args()
    runs = args.runs
    rsctmp = tempfile.mkdtemp(prefix="bench-rsctmp-")
    pg = PostgresServer(make_basedir("postgres", prefix="bench-pg-")).start()
    measured = installs(args.bacula)
    roots = [make_basedir("bacula", prefix="bench-site-") for _ in range(2 * len(measured))]
    try:
        commands: list[tuple[str, Sequence[str], Mapping[str, str]]] = [
            ("python3 -I -c pass (floor)", ["/usr/bin/python3", "-I", "-c", "pass"], BASE_ENV),
            ("Dummy meta-data (anchor)", [DUMMY, "meta-data"], BASE_ENV),
            ("Dummy monitor (anchor)", [DUMMY, "monitor"], ocf_env({}, rsctmp)),
        ]
        gaps: dict[str, list[float]] = {}
        started: list[tuple[str, dict[str, str], dict[str, str]]] = []
        for n, (version, layout) in enumerate(measured):
            db = f"bacula{n}"
            cat = pg.create_bacula_catalog(db, "bacula", "bench-pw", install=layout)
            # Site A runs (monitors); site B never does (probes of a stopped daemon), so that
            # every row can be measured in the same interleaved rounds.
            site, idle = (
                BaculaSite(
                    root,
                    catalog=CatalogSettings(dbname=db, password=cat.db_password, port=pg.port),
                    install=layout,
                    dir_port=free_port(),
                    fd_port=free_port(),
                    sd_ports=(free_port(),),
                    devices_per_sd=10,
                    name=f"bench{n}{i}",
                ).write()
                for i, root in enumerate(roots[2 * n : 2 * n + 2])
            )

            def params(s: BaculaSite) -> dict[str, dict[str, str]]:
                return {
                    "bacula-dir": {
                        "binary": s.binary("bacula-dir"),
                        "config": str(s.dir_conf),
                        "bconsole_config": str(s.console_conf),
                    },
                    "bacula-sd": {"binary": s.binary("bacula-sd"), "config": str(s.sd_conf(0))},
                    "bacula-fd": {"binary": s.binary("bacula-fd"), "config": str(s.fd_conf)},
                }

            running, stopped = params(site), params(idle)
            instance = f"bench{n}"
            gaps[version] = []
            for _ in range(5):
                gaps[version].append(
                    start_returns_after_answer(site, running["bacula-dir"], rsctmp, instance)
                )
                subprocess.run(
                    [f"{OURS}/bacula-dir", "stop"],
                    env=ocf_env(running["bacula-dir"], rsctmp, OCF_RESOURCE_INSTANCE=instance),
                    check=True,
                )
            for name, p in running.items():
                env = ocf_env(p, rsctmp, OCF_RESOURCE_INSTANCE=instance)
                subprocess.run([f"{OURS}/{name}", "start"], env=env, check=True)
                started.append((name, p, env))
            for name in running:
                agent = f"{OURS}/{name}"
                if n == 0:
                    commands.append((f"{name} meta-data", [agent, "meta-data"], BASE_ENV))
                commands.append(
                    (
                        f"[{version}] {name} probe, stopped",
                        [agent, "monitor"],
                        ocf_env(stopped[name], rsctmp, OCF_RESOURCE_INSTANCE=f"idle{n}"),
                    )
                )
                for depth in (0, 10, 20):
                    if name == "bacula-fd" and depth == 20:
                        continue
                    env = ocf_env(
                        running[name],
                        rsctmp,
                        OCF_CHECK_LEVEL=str(depth),
                        OCF_RESKEY_CRM_meta_interval="10000",
                        OCF_RESOURCE_INSTANCE=instance,
                    )
                    extra = " (10 devices)" if name == "bacula-sd" and depth == 20 else ""
                    label = f"[{version}] {name} monitor depth {depth}{extra}"
                    commands.append((label, [agent, "monitor"], env))
        rows = measure_all(commands, runs)
        for name, _p, env in started:
            subprocess.run([f"{OURS}/{name}", "stop"], env=env, check=True)
    finally:
        for root in roots:
            for conf in ("bacula-dir", "bacula-sd", "bacula-fd"):
                subprocess.run(["pkill", "-KILL", "-f", f"{conf} .*{root}"], check=False)
            shutil.rmtree(root, ignore_errors=True)
        pg.cleanup()
        shutil.rmtree(rsctmp, ignore_errors=True)

    floor = rows[0][1]
    dummy_md = rows[1][1]
    print(f"{'action':52} {'median ms':>10} {'x floor':>8} {'x Dummy':>8} {'peak MiB':>9} rc")
    for label, wall, peak, code in rows:
        print(
            f"{label:52} {wall * 1000:10.1f} {wall / floor:8.2f} {wall / dummy_md:8.2f} "
            f"{peak:9.1f} {code}"
        )
    for version, values in gaps.items():
        print(
            f"[{version}] start returned after the director answered: median "
            f"{statistics.median(values) * 1000:.0f} ms (max {max(values) * 1000:.0f} ms, "
            f"{len(values)} starts)"
        )
    print(
        "targets: meta-data and probe <= 1.5x floor; depth-10 monitor <= 2x; SD depth 20 with "
        "10 devices <= 3x; peak <= 20 MiB; start within 200 ms of answering"
    )


if __name__ == "__main__":
    sys.exit(main())
