"""Benchmark bacula-confsync against bare `rsync -a` over the same ssh: 10,000 files, 2 peers.

Run: .venv/bin/python bench/bench_confsync.py [--files 10000] [--rounds 5] [--json FILE]

Both sides push the same tree to the same two sshd peers (127.0.0.2, 127.0.0.3), into
separate roots. The agent is the installed executable, run as Pacemaker runs it (start,
then monitors), so its figures include the interpreter start-up and everything else. Bare
rsync pushes to one peer after the other, the way a cron job or a hand-written loop does;
it opens a new ssh connection each time. A second bare figure reuses a warm ssh control
connection, to show how much of the difference is the connection alone. After each agent
run the benchmark waits for the peers' background work (pruning, building the next stage)
so that it is not billed to the next measurement; the agent's figures do not include it
(it is about 0.3 s of CPU per peer after a push, at nice 19, nobody waiting).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# The unshipped test kit (testkit/) is at the checkout's top, beside src/.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bacula_ha.bacula.confsync import remote
from bacula_ha.install import install, provider_dir
from testkit.sandbox import sshd

PEERS = (("p1", "127.0.0.2"), ("p2", "127.0.0.3"))


def make_tree(root: Path, files: int) -> None:
    """/etc/bacula of a large site: one small file per client, included by bacula-dir.conf."""
    clients = root / "clients"
    clients.mkdir(parents=True)
    includes = []
    for i in range(files):
        name = f"client{i:05d}"
        (clients / f"{name}.conf").write_text(
            f"Client {{\n  Name = {name}-fd\n  Address = {name}.example.org\n  FDPort = 9102\n"
            f'  Catalog = MyCatalog\n  Password = "pw-{i}"\n  File Retention = 60 days\n'
            "  Job Retention = 6 months\n  AutoPrune = yes\n}\n"
        )
        includes.append(f"@{clients}/{name}.conf\n")
    base = Path("/etc/bacula/bacula-dir.conf").read_text()
    (root / "bacula-dir.conf").write_text(base + "".join(includes))
    os.chmod(root / "bacula-dir.conf", 0o640)


def timed(action: Callable[[], None]) -> float:
    began = time.perf_counter()
    action()
    return time.perf_counter() - began


def check(proc: subprocess.CompletedProcess[str], what: str, ok: tuple[int, ...] = (0,)) -> None:
    if proc.returncode not in ok:
        raise SystemExit(f"{what} failed ({proc.returncode}): {proc.stderr[-800:]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default="")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench-confsync-"))
    servers: list[sshd.RunningSshd] = []
    mux = tempfile.mkdtemp(prefix="bcm-", dir="/tmp")
    try:
        key = sshd.make_key(str(tmp / "id"))
        clients: dict[str, sshd.SshClient] = {}
        for name, address in PEERS:
            setup = sshd.prepare(
                str(tmp / f"{name}-sshd"),
                address=address,
                authorized_keys=[key.public],
                quiet_shell=True,
            )
            servers.append(sshd.start(setup))
            clients[name] = setup.client(key.private, str(tmp / f"{name}-kh"))
            (tmp / f"{name}-ours").mkdir()
            (tmp / f"{name}-bare").mkdir()
        config = sshd.write_ssh_config(str(tmp / "ssh_config"), clients)
        source = tmp / "src" / "etc" / "bacula"
        make_tree(source, args.files)

        ocf_root = tmp / "ocf"
        install(ocf_root, sys.executable)
        agent = str(provider_dir(ocf_root) / "bacula-confsync")
        rsctmp = tmp / "rsctmp"
        rsctmp.mkdir()
        params = {
            "paths": str(source),
            "targets": " ".join(n for n, _ in PEERS),
            "ssh_config": config,
            "peer_root": str(tmp / "%n-ours"),
            "config_check": "none",
        }

        def settle() -> None:
            """Wait for the peers' background work (pruning, next stage) of the last push,
            so that it is not billed to whatever is measured next."""
            end = time.monotonic() + 60
            for name, _ in PEERS:
                ready = Path(remote.ready_path(f"{tmp}/{name}-ours{source}"))
                while not ready.exists() and time.monotonic() < end:
                    time.sleep(0.05)

        def ocf(action: str, check_mode: str = "none") -> None:
            env = {
                "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
                "HA_RSCTMP": str(rsctmp),
                "OCF_ROOT": str(ocf_root),
                "OCF_RESOURCE_INSTANCE": "confsync",
                "OCF_RESKEY_CRM_meta_timeout": "300000",
                **{f"OCF_RESKEY_{k}": v for k, v in params.items()},
                "OCF_RESKEY_config_check": check_mode,
            }
            if action == "monitor":
                env["OCF_RESKEY_CRM_meta_interval"] = "60000"
            proc = subprocess.run([agent, action], env=env, capture_output=True, text=True)
            check(proc, f"agent {action}")
            if action != "stop":
                settle_after.append(True)

        ssh = ["/usr/bin/ssh", "-F", config, "-o", "BatchMode=yes"]
        ssh_mux = [*ssh, "-o", "ControlMaster=auto", "-o", f"ControlPath={mux}/%C"]
        ssh_mux += ["-o", "ControlPersist=300"]

        def bare(ssh_argv: list[str]) -> None:
            for name, _ in PEERS:
                dest = f"{name}:{tmp}/{name}-bare{source}/"
                argv = ["/usr/bin/rsync", "-a", "--mkpath", "-e", " ".join(ssh_argv)]
                proc = subprocess.run(
                    [*argv, f"{source}/", dest],
                    capture_output=True,
                    text=True,
                )
                check(proc, "bare rsync")

        victim = source / "clients" / "client00042.conf"
        counter = [0]

        def touch_one() -> None:
            counter[0] += 1
            victim.write_text(victim.read_text() + f"# edit {counter[0]}\n")

        results: dict[str, list[float]] = {}

        settle_after: list[bool] = []

        def record(label: str, seconds: float) -> None:
            results.setdefault(label, []).append(seconds)
            if settle_after:
                settle()
                settle_after.clear()

        # Full first sync (one round: it needs empty peers).
        record("full: bare rsync -a", timed(lambda: bare(ssh)))
        record("full: bacula-confsync start", timed(lambda: ocf("start")))
        bare(ssh_mux)  # warms the control connection for the "warm ssh" figures
        for _ in range(args.rounds):
            record("no change: bare rsync -a", timed(lambda: bare(ssh)))
            record("no change: bare rsync -a, warm ssh", timed(lambda: bare(ssh_mux)))
            record("no change: bacula-confsync monitor", timed(lambda: ocf("monitor")))
        for _ in range(args.rounds):
            touch_one()
            record("one file: bare rsync -a", timed(lambda: bare(ssh)))
            touch_one()
            record("one file: bare rsync -a, warm ssh", timed(lambda: bare(ssh_mux)))
            touch_one()
            record("one file: bacula-confsync monitor", timed(lambda: ocf("monitor")))
        for _ in range(max(1, args.rounds // 2)):
            touch_one()
            record(
                "one file: bacula-confsync monitor, config_check=parse",
                timed(lambda: ocf("monitor", "parse")),
            )
        ocf("stop")
        for name, _ in PEERS:
            diff = subprocess.run(
                ["/usr/bin/diff", "-r", str(source), f"{tmp}/{name}-ours{source}"],
                capture_output=True,
                text=True,
            )
            check(diff, f"final comparison with {name}")

        medians = {label: statistics.median(values) for label, values in results.items()}
        print(f"{args.files} files, 2 peers, median of {args.rounds} rounds (full: 1 round)")
        for label, value in medians.items():
            print(f"  {label:58} {value:7.3f} s")
        for case in ("no change", "one file"):
            ours = medians[f"{case}: bacula-confsync monitor"]
            base = medians[f"{case}: bare rsync -a"]
            print(f"  {case}: bacula-confsync / bare rsync = {ours / base:.2f}x (target <= 1.3x)")
        if args.json:
            Path(args.json).write_text(json.dumps({"files": args.files, **medians}, indent=1))
        return 0
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(mux, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
