"""Benchmark of bacula-catalog: median wall time per depth next to a bare client call.

Run: .venv/bin/python bench/bench_catalog.py [--runs 30] [--mariadb]
Starts a throwaway PostgreSQL (and MariaDB with --mariadb) with a Bacula catalog, then times
the agent's monitor at depth 0, 10 and 20 as Pacemaker runs it (a fresh `python -I` each
time), the bare `psql -c 'select 1'` (Debian's /usr/bin/psql wrapper and PostgreSQL's own
binary) and the interpreter start alone. Target: depth 0 <= 1.5 x psql + interpreter start.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bacula_ha.bacula.catalog import default_client  # noqa: E402
from testkit.sandbox.postgres import CatalogInfo, PostgresServer, make_basedir  # noqa: E402
from testkit.sandbox.server import SandboxServer  # noqa: E402
from tests.catalog_helpers import CatalogEntry, write_director_conf  # noqa: E402

AGENT = ROOT / "agents" / "bacula-catalog"


def timed_round_robin(
    commands: Mapping[str, tuple[Sequence[str], Mapping[str, str]]], runs: int
) -> dict[str, float]:
    """Median seconds per command, the commands interleaved so that the load of a busy
    machine falls on all of them alike (one warm-up round first, each run must succeed)."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(runs + 1):
        for name, (argv, env) in commands.items():
            started = time.perf_counter()
            proc = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(f"{name} failed ({proc.returncode}): {proc.stderr[-300:]}")
            if i:
                samples[name].append(elapsed)
    return {name: statistics.median(values) for name, values in samples.items()}


def agent_env(params: Mapping[str, str], rsctmp: Path, depth: int) -> dict[str, str]:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "OCF_ROOT": "/usr/lib/ocf",
        "OCF_RESOURCE_INSTANCE": "bench",
        "HA_RSCTMP": str(rsctmp),
        "OCF_CHECK_LEVEL": str(depth),
        "OCF_RESKEY_CRM_meta_timeout": "20000",
        "OCF_RESKEY_CRM_meta_interval": "30000",
    }
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    return env


def bench_backend(
    label: str, info: CatalogInfo, params: dict[str, str], floors: dict[str, list[str]], runs: int
) -> None:
    python = [sys.executable, "-I"]
    with tempfile.TemporaryDirectory() as tmp:
        rsctmp = Path(tmp)
        start = subprocess.run(
            [*python, str(AGENT), "start"],
            env=agent_env(params, rsctmp, 0),
            capture_output=True,
            text=True,
        )
        if start.returncode != 0:
            raise SystemExit(f"start failed: {start.stderr}")
        passfile = rsctmp / "floor.pass"
        passfile.write_text(f"*:*:*:*:{info.db_password}\n")
        passfile.chmod(0o600)
        myconf = rsctmp / "floor.cnf"
        myconf.write_text(f'[client]\npassword="{info.db_password}"\n')
        myconf.chmod(0o600)
        floor_env = {
            "PATH": "/usr/bin:/bin",
            "PGPASSFILE": str(passfile),
            "PGHOST": "127.0.0.1",
            "PGPORT": str(info.port),
            "PGUSER": info.db_user,
            "PGDATABASE": info.db_name,
        }
        commands: dict[str, tuple[Sequence[str], Mapping[str, str]]] = {
            "python -I -c pass": ([*python, "-c", "pass"], {"PATH": "/usr/bin"}),
            "agent meta-data (start + imports)": (
                [*python, str(AGENT), "meta-data"],
                agent_env(params, rsctmp, 0),
            ),
        }
        for name, argv in floors.items():
            commands[name] = ([a.replace("@CNF@", str(myconf)) for a in argv], floor_env)
        for depth in (0, 10, 20):
            commands[f"agent monitor depth {depth}"] = (
                [*python, str(AGENT), "monitor"],
                agent_env(params, rsctmp, depth),
            )
        results = timed_round_robin(commands, runs)
        interp = results["python -I -c pass"]
        imports = results["agent meta-data (start + imports)"]
    floor = min(v for k, v in results.items() if k in floors)
    print(f"\n{label} (median of {runs} runs, after one warm-up)")
    for name, value in results.items():
        print(f"  {name:<34} {value * 1000:8.1f} ms")
    depth0 = results["agent monitor depth 0"]
    for label_start, start_cost in (("bare interpreter", interp), ("agent imports", imports)):
        budget = 1.5 * floor + start_cost
        verdict = "OK" if depth0 <= budget else "OVER"
        print(
            f"  target ({label_start}): depth 0 <= 1.5 x {floor * 1000:.1f} +"
            f" {start_cost * 1000:.1f} = {budget * 1000:.1f} ms -> {depth0 * 1000:.1f} ms {verdict}"
        )


def bench_server(
    label: str,
    server: SandboxServer,
    params: Mapping[str, str],
    floors: Callable[[CatalogInfo], dict[str, list[str]]],
    runs: int,
) -> None:
    """Start `server`, give it a catalog behind a director configuration, bench, clean up."""
    try:
        server.start()
        info = server.create_bacula_catalog("bacula", "bacula", "bench-Secret")
        entry = CatalogEntry(
            "MyCatalog", "bacula", "bacula", "bench-Secret", "127.0.0.1", info.port
        )
        with tempfile.TemporaryDirectory() as tmp:
            conf = write_director_conf(Path(tmp) / "bacula-dir.conf", [entry])
            bench_backend(label, info, {"config": str(conf), **params}, floors(info), runs)
    finally:
        server.cleanup()


def postgres_floors(info: CatalogInfo) -> dict[str, list[str]]:
    """The bare clients: Debian's /usr/bin/psql wrapper and PostgreSQL's own binary."""
    return {
        f"{client} -c 'select 1'": [client, "-X", "-c", "select 1"]
        for client in ("/usr/bin/psql", default_client("postgresql"))
    }


def mariadb_floors(info: CatalogInfo) -> dict[str, list[str]]:
    """The bare client, its password in a file (@CNF@) as the agent passes it."""
    return {
        "mariadb -e 'select 1'": [
            "/usr/bin/mariadb",
            "--defaults-extra-file=@CNF@",
            "--host=127.0.0.1",
            f"--port={info.port}",
            "--user=bacula",
            "bacula",
            "-e",
            "select 1",
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--mariadb", action="store_true", help="also benchmark MariaDB")
    args = parser.parse_args()
    print(f"python: {sys.executable}  cpus: {os.cpu_count()}")

    pg = PostgresServer(make_basedir("postgres", prefix="bacula-ha-bench-"))
    bench_server("PostgreSQL 15", pg, {}, postgres_floors, args.runs)
    if args.mariadb:
        from testkit.sandbox.mariadb import MariaDBServer

        my = MariaDBServer(make_basedir("mysql", prefix="bacula-ha-bench-"))
        bench_server("MariaDB 10.11", my, {"backend": "mysql"}, mariadb_floors, args.runs)


if __name__ == "__main__":
    main()
