"""Helpers the lab tests and the benchmark share: a lab that always comes down, waits, probes."""

from __future__ import annotations

import hashlib
import json
import os
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import bacula_ha
from bacula_ha.lab import cluster, lifecycle, machine, procs
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import NODE_ENV

# Host paths the lab must never change; compared before and after a lab's life.
HOST_PATHS = ("/etc/corosync", "/var/lib/pacemaker", "/etc/hosts", "/etc/hostname")


def host_fingerprint() -> str:
    """A digest of the names and contents (first level) of host paths the lab must not touch."""
    digest = hashlib.sha256()
    for top in HOST_PATHS:
        path = Path(top)
        entries = sorted(path.iterdir()) if path.is_dir() else [path]
        for entry in entries:
            digest.update(str(entry).encode())
            if entry.is_file():
                digest.update(entry.read_bytes())
    return digest.hexdigest()


@contextmanager
def running_lab(
    nodes: int = 2,
    site: Path | None = None,
    lab_dir: Path | None = None,
    remotes: int = 0,
    dcs: int = 1,
    catalog: str = "shared",
    bacula: str = "",
    fresh: bool = False,
) -> Iterator[LabConfig]:
    """A fresh lab for the block; torn down afterwards even if the block fails, then checked.

    bacula: the prefix of a bacula.org build to run instead of Debian's (lifecycle.baculaorg);
    fresh: the machines only, as just installed (docs/deploy.md)."""
    cfg = LabConfig(
        nodes=nodes,
        lab_dir=lab_dir or LabConfig().lab_dir,
        remotes=remotes,
        dcs=dcs,
        catalog=catalog,
        bacula=bacula,
        fresh=fresh,
    )
    lifecycle.down(cfg.lab_dir)
    try:
        lifecycle.up(cfg, site=site)
        yield cfg
    finally:
        lifecycle.down(cfg.lab_dir)
        left = lifecycle.leftovers(cfg.lab_dir)
        if not left.empty:
            raise LabError(f"lab down left {left.describe()}")


def wait_until(
    what: str, predicate: Callable[[], bool], timeout: float, step: float = 0.1
) -> float:
    """Poll predicate until true; return seconds waited; raise LabError on timeout."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)
    return time.monotonic() - start


def fresh_client_data(cfg: LabConfig, tag: str, size: int = 2_500_000) -> None:
    """Fresh random files in the client's backup set (and an empty restore directory)."""
    from bacula_ha.lab.stack import CLIENT_DATA, CLIENT_RESTORE

    script = (
        f"rm -rf {CLIENT_DATA} {CLIENT_RESTORE} && mkdir -p {CLIENT_DATA}/sub"
        f" && head -c {size} /dev/urandom > {CLIENT_DATA}/blob-{tag}"
        f" && echo {tag} > {CLIENT_DATA}/sub/note.txt"
    )
    machine.run_in(cfg, "client", ["sh", "-c", script])


def restore_differences(cfg: LabConfig) -> str:
    """What `diff -r` finds between the client's backup set and its restored copy ("": none)."""
    from bacula_ha.lab.stack import CLIENT_DATA, CLIENT_RESTORE

    restored = f"{CLIENT_RESTORE}{CLIENT_DATA}"
    proc = machine.run_in(cfg, "client", ["diff", "-r", CLIENT_DATA, restored], check=False)
    return "" if proc.returncode == 0 else (proc.stdout + proc.stderr)[-800:] or "differ"


def client_pings(cfg: LabConfig, address: str) -> bool:
    proc = machine.run_in(cfg, "client", ["ping", "-c1", "-W1", address], check=False)
    return proc.returncode == 0


def vip_holder(cfg: LabConfig, vip_name: str) -> list[str]:
    return lifecycle.vip_holders(cfg)[vip_name]


def resource_nodes(cfg: LabConfig, rid: str) -> tuple[str, ...]:
    view = cluster.view(cfg, cluster.any_live_node(cfg))
    role, nodes = view.resources.get(rid, ("", ()))
    return nodes if role == "Started" else ()


def pcs(cfg: LabConfig, *args: str, timeout: float = 60) -> str:
    """Run pcs inside a live node."""
    node = cluster.any_live_node(cfg)
    return machine.run_in(cfg, node, ["pcs", *args], timeout=timeout).stdout


def powered_off(cfg: LabConfig) -> list[str]:
    inits = procs.machine_inits(cfg.lab_dir)
    return [m.name for m in cfg.servers if m.name not in inits]


class ArpWatch:
    """An ARP probe running in the client for a fixed time; result() waits for its verdict.

    Returns once the probe is probing (its "ready" line), so a fault injected next is watched."""

    def __init__(
        self, cfg: LabConfig, address: str, seconds: float, until_answer: bool = False
    ) -> None:
        probe = [sys.executable, "-m", "bacula_ha.lab.probe", "arp", address, str(seconds)]
        argv = machine.exec_argv(cfg, "client", probe + (["first"] if until_answer else []))
        # The directory bacula_ha is imported from (src/ in a checkout), for the node's python.
        env = {**NODE_ENV, "PYTHONPATH": str(Path(bacula_ha.__file__).resolve().parents[1])}
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self._seconds = seconds
        assert self._proc.stderr is not None
        started = select.select([self._proc.stderr], [], [], 30)[0]
        line = self._proc.stderr.readline() if started else ""
        if line.strip() != "ready":
            self.kill()
            raise LabError(f"ARP probe did not start: {line.strip() or 'no answer in 30 s'}")

    def result(self) -> dict[str, Any]:
        out, _ = self._proc.communicate(timeout=self._seconds + 30)
        if self._proc.returncode != 0:
            raise LabError(f"ARP probe failed ({self._proc.returncode})")
        data: dict[str, Any] = json.loads(out)
        return data

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


class BaculaWatch:
    """A probe in the client timing when the director and the storage daemon answer again."""

    def __init__(self, cfg: LabConfig, seconds: float, targets: str = "dir,sd") -> None:
        from bacula_ha.lab.stack import Secrets

        pw = Secrets.load_or_create(cfg)
        argv = machine.exec_argv(
            cfg,
            "client",
            [sys.executable, "-m", "bacula_ha.lab.probe", "bacula", targets, str(seconds)],
        )
        env = {**NODE_ENV, "BHL_DIR_PW": pw.director, "BHL_SD_PW": pw.storage}
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
        self._seconds = seconds

    def result(self) -> dict[str, float | None]:
        out, _ = self._proc.communicate(timeout=self._seconds + 30)
        if self._proc.returncode != 0:
            raise LabError(f"Bacula probe failed ({self._proc.returncode})")
        data: dict[str, float | None] = json.loads(out)
        return data

    def kill(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


def failed_actions(cfg: LabConfig) -> tuple[str, ...]:
    return cluster.view(cfg, cluster.any_live_node(cfg)).failed_actions


def started_on(cfg: LabConfig, rid: str) -> tuple[str, ...]:
    """Nodes where resource rid is Started (empty if stopped or the cluster is unreachable)."""
    try:
        return resource_nodes(cfg, rid)
    except LabError:
        return ()


def arp_probing(address: str) -> bool:
    """An ARP probe of `address` runs and holds its packet socket open: it is probing."""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        proc = Path("/proc", pid)
        try:
            argv = proc.joinpath("cmdline").read_bytes().split(b"\0")
            if b"bacula_ha.lab.probe" not in argv or address.encode() not in argv:
                continue
            # Packet sockets of the probe's network namespace, by inode; the probe's own
            # descriptors name their sockets by the same inode.
            table = proc.joinpath("net", "packet").read_text().splitlines()[1:]
            sockets = {f"socket:[{line.split()[-1]}]" for line in table if line.split()}
            held = {os.readlink(fd) for fd in proc.joinpath("fd").iterdir()}
        except OSError:
            continue
        if sockets & held:
            return True
    return False


def power_offs(cfg: LabConfig) -> list[str]:
    """The machines the power switch powered off (fencing acted on), oldest first."""
    try:
        lines = (cfg.lab_dir / "log" / "power.log").read_text().splitlines()
    except FileNotFoundError:
        return []
    return [line.split(" powered off ", 1)[1] for line in lines if " powered off " in line]


def connectivity(cfg: LabConfig, attribute: str = "pingd") -> set[str]:
    """The cluster nodes whose connectivity attribute (ocf:pacemaker:ping's) is 1 or more."""
    via = cluster.any_live_node(cfg)
    connected = set()
    for m in cfg.cluster_nodes:
        argv = ["crm_attribute", "-N", m.name, "-n", attribute, "-l", "reboot", "-G", "-q"]
        done = machine.run_in(cfg, via, argv, check=False, timeout=20)
        value = done.stdout.strip()
        if done.returncode == 0 and value.isdigit() and int(value) >= 1:
            connected.add(m.name)
    return connected


def evidence(cfg: LabConfig, words: tuple[str, ...] = (), lines: int = 150) -> str:
    """What a failed lab test shows: the cluster as crm_mon sees it, and each node's last
    Pacemaker log lines (those naming one of `words`, when given): the lab is gone after."""
    parts = []
    for m in cfg.cluster_nodes:
        try:
            shown = machine.run_in(cfg, m.name, ["crm_mon", "-1rf"], check=False, timeout=20)
            parts.append(f"--- crm_mon on {m.name} (rc {shown.returncode})\n{shown.stdout}")
        except LabError as e:  # powered off: its log still tells
            parts.append(f"--- crm_mon on {m.name}: {e}")
        log = m.dir / "fs/var/log/pacemaker/pacemaker.log"
        try:
            text = log.read_text(errors="replace").splitlines()
        except OSError as e:
            parts.append(f"--- {log}: {e}")
            continue
        if words:
            text = [line for line in text if any(w in line for w in words)]
        parts.append(f"--- {m.name}'s pacemaker.log\n" + "\n".join(text[-lines:]))
    return "\n".join(parts)
