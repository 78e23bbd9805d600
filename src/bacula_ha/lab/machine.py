"""Lab machines as namespaces: switch, veths, booting a machine's PID-1, power-off, exec."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bacula_ha.lab import procs
from bacula_ha.lab.config import (
    BRIDGE,
    CLUSTER_BRIDGE,
    NS_PREFIX,
    PREFIX_LEN,
    SWITCH_NS,
    LabConfig,
    Machine,
)
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import NODE_ENV, nsenter_argv, run

# Host paths each machine gets a private, initially empty, directory for (bind mounts inside
# its mount namespace): the host's own cluster state is never touched. /etc is a full private
# copy (see prepare_root), so tools that replace whole directories there (confsync swaps
# /etc/bacula with one rename) work as on a real machine and never reach the host.
PRIVATE_DIRS = (
    "/var/lib/corosync",
    "/var/lib/pacemaker",
    "/var/log/corosync",
    "/var/log/pacemaker",
    "/var/lib/pcsd",
    "/root",
)
# libqb's ring buffers in /dev/shm are created by hacluster as well as root: sticky 1777.
TMPFS = (("/run", "0755"), ("/dev/shm", "1777"), ("/tmp", "1777"))
# Made after /run is a fresh tmpfs: (path, user, group, mode).
RUN_DIRS = (
    ("/run/crm", "hacluster", "haclient", "0750"),
    ("/run/lock", "root", "root", "1777"),
    ("/run/resource-agents", "root", "root", "0755"),
    ("/run/sshd", "root", "root", "0755"),
    ("/run/bacula", "bacula", "bacula", "0755"),
    ("/run/postgresql", "postgres", "postgres", "2775"),
    ("/var/lib/pacemaker/cib", "hacluster", "haclient", "0750"),
    ("/var/lib/pacemaker/pengine", "hacluster", "haclient", "0750"),
    ("/var/lib/pacemaker/blackbox", "hacluster", "haclient", "0750"),
    ("/var/lib/pacemaker/cores", "hacluster", "haclient", "0750"),
    ("/var/log/pacemaker", "hacluster", "haclient", "0770"),
    ("/root", "root", "root", "0700"),
)


# --- supervisor ------------------------------------------------------------------------


def supervisor_request(cfg: LabConfig, request: dict[str, Any]) -> dict[str, Any]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(cfg.supervisor_socket))
            sock.sendall(json.dumps(request).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        raise LabError(
            f"the lab supervisor does not answer ({exc}); run `bacula-ha lab down`"
        ) from exc
    answer: dict[str, Any] = json.loads(data)
    if not answer.get("ok"):
        raise LabError(f"lab supervisor: {answer.get('error')}")
    return answer


def start_supervisor(cfg: LabConfig) -> int:
    """Start the power switch / subreaper, detached from the caller's session."""
    cfg.log_dir.mkdir(parents=True, exist_ok=True)
    with open(cfg.log_dir / "supervisor.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", procs.SUPERVISOR_MODULE, str(cfg.lab_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise LabError(f"the lab supervisor exited; see {cfg.log_dir / 'supervisor.log'}")
        try:
            supervisor_request(cfg, {"op": "ping"})
            return proc.pid
        except LabError:
            time.sleep(0.05)
    raise LabError("the lab supervisor did not come up within 15 s")


# --- network -----------------------------------------------------------------------------


def netns_list() -> list[str]:
    out = run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def create_switch() -> None:
    """The switch namespace with the clients' bridge and the cluster network's bridge."""
    run(["ip", "netns", "add", SWITCH_NS])
    run(["ip", "-n", SWITCH_NS, "link", "set", "lo", "up"])
    add_bridge(BRIDGE)
    add_bridge(CLUSTER_BRIDGE)


def add_bridge(name: str) -> None:
    run(["ip", "-n", SWITCH_NS, "link", "add", name, "type", "bridge"])
    run(["ip", "-n", SWITCH_NS, "link", "set", name, "up"])


def create_machine_net(m: Machine, cluster_link: bool = False) -> None:
    """A netns for the machine, a veth from its eth0 to a port on the bridge, its address.

    With cluster_link, an eth1 on the cluster network too (corosync's second link).
    """
    run(["ip", "netns", "add", m.netns])
    run(["ip", "-n", m.netns, "link", "set", "lo", "up"])
    _plug(m, "eth0", m.port, m.bridge, m.address)
    if cluster_link:
        _plug(m, "eth1", m.cluster_port, m.cluster_bridge, m.cluster_address)


def _plug(m: Machine, nic: str, port: str, bridge: str, address: str) -> None:
    # Both ends are born inside their namespaces: no veth ever appears on the host.
    run(
        [
            *("ip", "-n", SWITCH_NS, "link", "add", port, "type", "veth"),
            *("peer", "name", nic, "netns", m.netns),
        ]
    )
    run(["ip", "-n", SWITCH_NS, "link", "set", port, "master", bridge, "up"])
    run(["ip", "-n", m.netns, "addr", "add", f"{address}/{PREFIX_LEN}", "dev", nic])
    run(["ip", "-n", m.netns, "link", "set", nic, "up"])


def reset_net(m: Machine) -> None:
    """What a reboot does to the network: only the machine's own address is left on eth0.

    The network namespace outlives the machine's processes, so addresses a dead machine held
    (a VIP) would otherwise still answer after it boots again.
    """
    run(["ip", "-n", m.netns, "addr", "flush", "dev", "eth0"])
    run(["ip", "-n", m.netns, "addr", "add", f"{m.address}/{PREFIX_LEN}", "dev", "eth0"])
    run(["ip", "-n", m.netns, "link", "set", "eth0", "up"])
    # The cluster network's cable too (a replication VIP lives there).
    if run(["ip", "-n", m.netns, "addr", "flush", "dev", "eth1"], check=False).returncode == 0:
        address = f"{m.cluster_address}/{PREFIX_LEN}"
        run(["ip", "-n", m.netns, "addr", "add", address, "dev", "eth1"])
        run(["ip", "-n", m.netns, "link", "set", "eth1", "up"])


def set_port(name: str, up: bool, uplink_only: bool = False) -> None:
    """Plug (or pull) the machine's cables: eth0's and, unless uplink_only, eth1's.

    A machine without an eth1 (client, remote node, gateway) has only the one.
    """
    state = "up" if up else "down"
    run(["ip", "-n", SWITCH_NS, "link", "set", NS_PREFIX + "p-" + name, state])
    if uplink_only:
        return
    done = run(["ip", "-n", SWITCH_NS, "link", "set", NS_PREFIX + "k-" + name, state], check=False)
    if done.returncode and "Cannot find device" not in done.stderr:
        raise LabError(f"cannot set {name}'s cluster link {state}: {done.stderr.strip()}")


def port_up(name: str, cluster_link: bool = False) -> bool:
    """Whether the machine's cable (eth0's, or with cluster_link eth1's) is plugged in."""
    port = NS_PREFIX + ("k-" if cluster_link else "p-") + name
    out = run(["ip", "-n", SWITCH_NS, "-o", "link", "show", "dev", port], check=False).stdout
    flags = out.partition("<")[2].partition(">")[0].split(",")
    return "UP" in flags


def addresses(m: Machine) -> list[str]:
    """IPv4 addresses on the machine's eth0 (its own and any VIP it holds)."""
    out = run(["ip", "-n", m.netns, "-4", "-o", "addr", "show", "dev", "eth0"], check=False)
    return [line.split()[3].split("/")[0] for line in out.stdout.splitlines() if "inet" in line]


# --- machines ----------------------------------------------------------------------------


def write_private(path: Path, text: str) -> None:
    """Replace a file of a machine's private tree; a copied symlink is replaced, never followed."""
    path.unlink(missing_ok=True)
    path.write_text(text)


def prepare_root(m: Machine) -> None:
    """Give the machine its private copy of the host's /etc (once; a reboot keeps it)."""
    etc = m.dir / "fs" / "etc"
    if not etc.exists():
        etc.parent.mkdir(parents=True, exist_ok=True)
        run(["cp", "-a", "/etc", str(etc)])


def write_spec(
    cfg: LabConfig,
    m: Machine,
    hosts: str,
    extra_dirs: Sequence[str] = (),
    extra_binds: Sequence[tuple[str, str]] = (),
    ro_binds: Sequence[tuple[str, str]] = (),
) -> None:
    """Prepare the machine's private directories and the spec its PID-1 applies.

    ro_binds are bound read-only after every other mount, from sources opened before any
    (so a source the private mounts hide, such as a Bacula under the host's /opt, still
    reaches the machine)."""
    prepare_root(m)
    # /etc first: the other binds may lie below it.
    binds: list[tuple[str, str]] = [(str(m.dir / "fs" / "etc"), "/etc"), *extra_binds]
    for path in (*PRIVATE_DIRS, *extra_dirs):
        private = m.dir / "fs" / path.strip("/")
        private.mkdir(parents=True, exist_ok=True)
        binds.append((str(private), path))
    write_private(m.dir / "fs/etc/hosts", hosts)
    write_private(m.dir / "fs/etc/hostname", m.name + "\n")
    spec = {
        "hostname": m.name,
        "tmpfs": [list(t) for t in TMPFS],
        "binds": binds,
        "ro_binds": [list(b) for b in ro_binds],
        "dirs": [list(d) for d in RUN_DIRS],
        # Where this source tree and its interpreter live: agents and tools run from there.
        "keep": [str(Path(__file__).resolve().parents[3]), sys.prefix],
    }
    (m.dir / "spec.json").write_text(json.dumps(spec, indent=1))


def boot(cfg: LabConfig, m: Machine, timeout: float = 15.0) -> int:
    """Start the machine's PID-1 under the supervisor; return its host PID once set up."""
    ready = m.dir / "ready"
    ready.unlink(missing_ok=True)
    reset_net(m)
    argv = ["ip", "netns", "exec", m.netns, "unshare", "--pid", "--fork", "--mount", "--uts"]
    argv += ["--propagation", "private", "--mount-proc"]
    argv += [sys.executable, "-m", procs.INIT_MODULE, str(cfg.lab_dir), m.name]
    supervisor_request(cfg, {"op": "spawn", "argv": argv, "log": str(m.dir / "init.log")})
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready.exists():
            status = ready.read_text()
            if status != "ok":
                raise LabError(f"{m.name} could not be set up: {status}")
            pid = procs.machine_inits(cfg.lab_dir).get(m.name)
            if pid is None:
                raise LabError(f"{m.name} reported ready but its PID-1 is gone")
            return pid
        time.sleep(0.02)
    raise LabError(f"{m.name} did not boot within {timeout:.0f} s; see {m.dir / 'init.log'}")


def power_off(lab_dir: Path, name: str) -> None:
    """What pulling the plug does: the link drops, then every process of the machine dies."""
    set_port(name, up=False)
    pid = procs.machine_inits(lab_dir).get(name)
    if pid is not None and procs.kill_and_wait([pid]):
        raise LabError(f"{name}'s PID-1 {pid} survived SIGKILL")
    # The kernel kills the rest of the PID namespace after its init: wait for all of it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        left = run(["ip", "netns", "pids", NS_PREFIX + name], check=False).stdout.split()
        if not [p for p in left if procs.alive(int(p))]:
            # Powered off holds no address; boot() gives the machine its own back.
            for nic in ("eth0", "eth1"):
                run(["ip", "-n", NS_PREFIX + name, "addr", "flush", "dev", nic], check=False)
            return
        time.sleep(0.02)
    raise LabError(f"processes of {name} survive its power-off")


def init_pid(cfg: LabConfig, name: str) -> int:
    pid = procs.machine_inits(cfg.lab_dir).get(name)
    if pid is None:
        raise LabError(f"{name} is not running (powered off or the lab is down)")
    return pid


def exec_argv(cfg: LabConfig, name: str, argv: Sequence[str]) -> list[str]:
    return nsenter_argv(init_pid(cfg, name), argv)


def run_in(
    cfg: LabConfig,
    name: str,
    argv: Sequence[str],
    *,
    check: bool = True,
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a machine with a clean environment and capture its output."""
    full_env = {**NODE_ENV, **(env or {})}
    return run(
        exec_argv(cfg, name, argv),
        check=check,
        timeout=timeout,
        env=full_env,
        input_text=input_text,
    )


def start_daemon(
    cfg: LabConfig, name: str, argv: Sequence[str], log: str, env: dict[str, str] | None = None
) -> None:
    """Start a long-running process inside a machine, detached: the machine's PID-1 adopts it."""
    script = 'exec setsid -f "$@" >>"$LOG" 2>&1 </dev/null'
    run_in(cfg, name, ["sh", "-c", script, "sh", *argv], env={**(env or {}), "LOG": log})


def wait_power_switch(cfg: LabConfig, m: Machine, timeout: float = 15.0) -> None:
    """If the machine's power file says "off", wait until the power switch has acted on it.

    Fencing writes the file; the supervisor notices within 50 ms and powers the machine off,
    which takes a few hundred ms on a busy host. Booting the machine in between (a heal right
    after fencing) races it: the switch would then take the new machine's link down and its
    address away, leaving it booted but cut off.
    """
    try:
        if m.power_file.read_text() != "off":
            return
        since = m.power_file.stat().st_mtime
    except OSError:
        return
    log = cfg.log_dir / "power.log"
    deadline = time.monotonic() + timeout
    while True:
        try:
            lines = log.read_text().splitlines()
        except OSError:
            lines = []
        for line in reversed(lines):
            stamp, _, what = line.partition(" ")
            acted = what == f"powered off {m.name}" or what.startswith(f"power off {m.name} ")
            # The log's stamps have ms precision; the file's mtime has ns.
            if acted and float(stamp) >= since - 0.002:
                return
        if time.monotonic() > deadline:
            raise LabError(f"the power switch did not act on {m.name} within {timeout:.0f} s")
        time.sleep(0.02)
