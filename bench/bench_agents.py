"""Agent speed and memory, side by side in one run: bare interpreter, ocf:heartbeat:Dummy, ours.

Run as root after `bacula-ha install`: `.venv/bin/python bench/bench_agents.py [--runs N]`.
Starts a throwaway PostgreSQL catalog, a director, a storage daemon with 10 devices and a file
daemon; prints median wall time and peak RSS of each action, and the ratios the targets use.
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

from bacula_ha.sandbox.bacula import BaculaSite, CatalogSettings
from bacula_ha.sandbox.postgres import PostgresServer, free_port, make_basedir

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


def start_returns_after_answer(site: BaculaSite, params: Mapping[str, str], rsctmp: str) -> float:
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
    subprocess.run([f"{OURS}/bacula-dir", "start"], env=ocf_env(params, rsctmp), check=True)
    returned = time.perf_counter()
    thread.join(5)
    stop.set()
    return returned - answered[0] if answered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=21)
    runs = parser.parse_args().runs
    rsctmp = tempfile.mkdtemp(prefix="bench-rsctmp-")
    pg = PostgresServer(make_basedir("postgres", prefix="bench-pg-")).start()
    roots = [make_basedir("bacula", prefix="bench-site-") for _ in range(2)]
    try:
        cat = pg.create_bacula_catalog("bacula", "bacula", "bench-pw")
        # Site A runs (monitors); site B never does (probes of a stopped daemon), so that
        # every row can be measured in the same interleaved rounds.
        site, idle = (
            BaculaSite(
                root,
                catalog=CatalogSettings(password=cat.db_password, port=pg.port),
                dir_port=free_port(),
                fd_port=free_port(),
                sd_ports=(free_port(),),
                devices_per_sd=10,
                name=f"bench{i}",
            ).write()
            for i, root in enumerate(roots)
        )

        def params(s: BaculaSite) -> dict[str, dict[str, str]]:
            return {
                "bacula-dir": {"config": str(s.dir_conf), "bconsole_config": str(s.console_conf)},
                "bacula-sd": {"config": str(s.sd_conf(0))},
                "bacula-fd": {"config": str(s.fd_conf)},
            }

        running, stopped = params(site), params(idle)
        gaps = []
        for _ in range(5):
            gaps.append(start_returns_after_answer(site, running["bacula-dir"], rsctmp))
            subprocess.run(
                [f"{OURS}/bacula-dir", "stop"],
                env=ocf_env(running["bacula-dir"], rsctmp),
                check=True,
            )
        for name, p in running.items():
            subprocess.run([f"{OURS}/{name}", "start"], env=ocf_env(p, rsctmp), check=True)
        commands: list[tuple[str, Sequence[str], Mapping[str, str]]] = [
            ("python3 -I -c pass (floor)", ["/usr/bin/python3", "-I", "-c", "pass"], BASE_ENV),
            ("Dummy meta-data (anchor)", [DUMMY, "meta-data"], BASE_ENV),
            ("Dummy monitor (anchor)", [DUMMY, "monitor"], ocf_env({}, rsctmp)),
        ]
        for name in running:
            agent = f"{OURS}/{name}"
            commands.append((f"{name} meta-data", [agent, "meta-data"], BASE_ENV))
            commands.append(
                (
                    f"{name} probe, stopped",
                    [agent, "monitor"],
                    ocf_env(stopped[name], rsctmp, OCF_RESOURCE_INSTANCE="idle"),
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
                )
                extra = " (10 devices)" if name == "bacula-sd" and depth == 20 else ""
                commands.append((f"{name} monitor depth {depth}{extra}", [agent, "monitor"], env))
        rows = measure_all(commands, runs)
        for name, p in running.items():
            subprocess.run([f"{OURS}/{name}", "stop"], env=ocf_env(p, rsctmp), check=True)
    finally:
        for root in roots:
            for conf in ("bacula-dir", "bacula-sd", "bacula-fd"):
                subprocess.run(["pkill", "-KILL", "-f", f"{conf} .*{root}"], check=False)
            shutil.rmtree(root, ignore_errors=True)
        pg.cleanup()
        shutil.rmtree(rsctmp, ignore_errors=True)

    floor = rows[0][1]
    dummy_md = rows[1][1]
    print(f"{'action':44} {'median ms':>10} {'x floor':>8} {'x Dummy':>8} {'peak MiB':>9} rc")
    for label, wall, peak, code in rows:
        print(
            f"{label:44} {wall * 1000:10.1f} {wall / floor:8.2f} {wall / dummy_md:8.2f} "
            f"{peak:9.1f} {code}"
        )
    print(
        f"start returned after the director answered: median "
        f"{statistics.median(gaps) * 1000:.0f} ms (max {max(gaps) * 1000:.0f} ms, 5 starts)"
    )
    print(
        "targets: meta-data and probe <= 1.5x floor; depth-10 monitor <= 2x; SD depth 20 with "
        "10 devices <= 3x; peak <= 20 MiB; start within 200 ms of answering"
    )


if __name__ == "__main__":
    sys.exit(main())
