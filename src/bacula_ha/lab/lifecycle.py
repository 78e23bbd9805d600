"""Bringing the lab up and down, looking at it, breaking it and healing it.

Over 600 lines on purpose, for now: one section per group of `bacula-ha lab` verbs (state,
up/down, looking at it, faults), all reading and writing the one state file of the lab
directory; the sections are where it would split.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bacula_ha.lab import (
    baculaorg,
    cluster,
    disks,
    machine,
    procs,
    remote,
    replicated,
    ssh,
    stack,
    twodc,
)
from bacula_ha.lab import upgrade as upgrademod
from bacula_ha.lab.config import (
    DEFAULT_LAB_DIR,
    DISK_LABEL_PREFIX,
    NS_PREFIX,
    SUBNET,
    LabConfig,
    Machine,
)
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.run import NODE_ENV, run
from bacula_ha.progress import Progress, quiet

Log = Callable[[str], None]

# Fixed names for addresses the site and the tests use, written to every /etc/hosts.
VIPS = {
    "test-vip": f"{SUBNET}.50",
    "catalog-vip": f"{SUBNET}.20",
    "dir-vip": f"{SUBNET}.21",
    "sd1-vip": f"{SUBNET}.22",
}
FAIL_MODES = (
    "crash",
    "partition",
    "uplink",
    "hang-dir",
    "hang-sd",
    "kill-dir",
    "unmount-sd",
    "catalog-readonly",
)
GATEWAY_FAIL_MODES = ("crash", "partition")
# Signals sent to a daemon by a failure mode: (process name, signal).
_SIGNAL_MODES = {
    "hang-dir": ("bacula-dir", "STOP"),
    "hang-sd": ("bacula-sd", "STOP"),
    "kill-dir": ("bacula-dir", "KILL"),
}


def _quiet(_: str) -> None:
    pass


# --- state -------------------------------------------------------------------------------


def _write_state(cfg: LabConfig, **values: object) -> None:
    state = read_state(cfg.lab_dir)
    state.update(values)
    tmp = cfg.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1))
    tmp.rename(cfg.state_file)


def read_state(lab_dir: Path) -> dict[str, object]:
    try:
        data = json.loads((lab_dir / "state.json").read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def load(lab_dir: Path) -> LabConfig:
    """The configuration of the lab that is up (its node count comes from its state)."""
    state = read_state(lab_dir)
    nodes = state.get("nodes")
    if not isinstance(nodes, int):
        raise LabError(f"no lab is up (no state in {lab_dir}); run `bacula-ha lab up`")
    remotes = state.get("remotes", 0)
    dcs = state.get("dcs", 1)
    return LabConfig(
        nodes=nodes,
        lab_dir=lab_dir,
        remotes=remotes if isinstance(remotes, int) else 0,
        dcs=dcs if isinstance(dcs, int) else 1,
        catalog=str(state.get("catalog", "shared")),
        bacula=str(state.get("bacula", "")),
        fresh=state.get("fresh") is True,
    )


@dataclass(frozen=True)
class Leftovers:
    """Everything of a lab found on the host, whether or not its state was recorded."""

    inits: dict[str, int] = field(default_factory=dict)
    supervisors: tuple[int, ...] = ()
    namespaces: tuple[str, ...] = ()
    loops: tuple[str, ...] = ()
    lab_dir_exists: bool = False

    @property
    def empty(self) -> bool:
        return not (
            self.inits or self.supervisors or self.namespaces or self.loops or self.lab_dir_exists
        )

    def describe(self) -> str:
        parts = []
        if self.inits:
            parts.append("machines " + ", ".join(f"{n} (PID {p})" for n, p in self.inits.items()))
        if self.supervisors:
            parts.append("supervisor PIDs " + ", ".join(map(str, self.supervisors)))
        if self.namespaces:
            parts.append("namespaces " + ", ".join(self.namespaces))
        if self.loops:
            parts.append("loop devices " + ", ".join(self.loops))
        if self.lab_dir_exists:
            parts.append("the lab directory")
        return "; ".join(parts) or "nothing"


def leftovers(lab_dir: Path) -> Leftovers:
    return Leftovers(
        inits=procs.machine_inits(lab_dir),
        supervisors=tuple(procs.supervisors(lab_dir)),
        namespaces=tuple(n for n in machine.netns_list() if n.startswith(NS_PREFIX)),
        loops=tuple(disks.attached(lab_dir)),
        lab_dir_exists=lab_dir.exists(),
    )


def healthy(cfg: LabConfig) -> bool:
    state = read_state(cfg.lab_dir)
    if state.get("phase") != "up" or state.get("nodes") != cfg.nodes:
        return False
    if state.get("remotes", 0) != cfg.remotes or state.get("dcs", 1) != cfg.dcs:
        return False
    if state.get("bacula", "") != cfg.bacula or (state.get("fresh") is True) != cfg.fresh:
        return False
    inits = procs.machine_inits(cfg.lab_dir)
    return all(m.name in inits for m in cfg.machines) and bool(procs.supervisors(cfg.lab_dir))


# --- up / down ---------------------------------------------------------------------------


def hosts_file(cfg: LabConfig) -> str:
    """/etc/hosts of every machine: names of the cluster's machines on the cluster network.

    As on real clusters whose node names resolve to their dedicated network: what nodes say
    to each other by name (config sync's rsync over ssh, pcs) keeps working when a node loses
    only the clients' network, while the VIPs and the ping target live on that one.
    """
    lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback"]
    linked = {m.name for m in cfg.cluster_link_machines}
    lines += [
        f"{m.cluster_address if m.name in linked else m.address} {m.name}" for m in cfg.machines
    ]
    lines += [f"{addr} {name}" for name, addr in VIPS.items()]
    return "\n".join(lines) + "\n"


def _all_online(
    cfg: LabConfig, fencing: bool = True, remotes: bool = True
) -> Callable[[cluster.ClusterView], bool]:
    """Every node online (remote nodes too, unless the site is not applied yet), fencing up."""
    names = {m.name for m in (cfg.servers if remotes else cfg.cluster_nodes)}
    # crm_mon counts a remote node online while its connection is still starting.
    connections = {m.name for m in cfg.remote_nodes} if remotes else set()

    def check(v: cluster.ClusterView) -> bool:
        # Each server's own device (a site may add more: fence heuristics).
        fenced = all(v.resources.get(f"fence-{m.name}", ("",))[0] == "Started" for m in cfg.servers)
        connected = all(v.resources.get(c, ("",))[0] == "Started" for c in connections)
        online = names <= set(v.online) and connected
        return v.dc is not None and v.quorate and online and (fenced or not fencing)

    return check


def _all_started(v: cluster.ClusterView) -> bool:
    # Instances of a promotable clone (the replicated catalog) run as Promoted or Unpromoted.
    running = ("Started", "Promoted", "Unpromoted")
    return bool(v.resources) and all(role in running for role, _ in v.resources.values())


def boot_node(cfg: LabConfig, m: Machine) -> None:
    """Boot a cluster node: its PID-1, sshd, corosync, pacemakerd."""
    m.power_file.write_text("on")  # exactly "on", no newline: fence_dummy compares it
    machine.boot(cfg, m)
    ssh.start(cfg, m.name)
    if cfg.fresh:
        # A fresh machine's admin decides what a boot starts (systemctl enable).
        machine.run_in(cfg, m.name, ["systemctl", "lab-boot"], timeout=90)
        return
    cluster.start_node(cfg, m)
    if cfg.dcs > 1:
        twodc.start_qdevice(cfg, m)


def _site_text(cfg: LabConfig, site: Path) -> str:
    """The site to apply: the file itself, or with the lab's further nodes added.

    The site must name the lab's first nodes; nodes it does not name (a 2-node site on a
    3-node lab) are added as quorum nodes with their fence_dummy device: fencing and
    placement come from the site, so no lab node may be left out of it. A site written for
    the default lab gets this lab's power files and disk labels: fencing must never reach
    another lab's machines, nor a mount another lab's disk.
    """
    try:
        text = site.read_text()
        data = tomllib.loads(text)
    except OSError as exc:
        raise LabError(f"cannot read site file {site}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise LabError(f"site file {site} is not valid TOML: {exc}") from exc
    text = text.replace(f"{DEFAULT_LAB_DIR}/power/", f"{cfg.lab_dir}/power/")
    text = text.replace("--label=bhl-", "--label=" + DISK_LABEL_PREFIX)
    names = [n.get("name", "") for n in data.get("node", []) if isinstance(n, dict)]
    wanted = [m.name for m in cfg.cluster_nodes]
    if names != wanted[: len(names)] or not names:
        raise LabError(
            f"site {site} describes nodes {', '.join(names) or 'none'}, the lab has "
            f"{', '.join(wanted)}: use a site for these nodes, or --bare"
        )
    for m in cfg.cluster_nodes[len(names) :]:
        text += (
            f"\n# Added by `bacula-ha lab up --nodes {cfg.nodes}`: a quorum node.\n"
            f'[[node]]\nname = "{m.name}"\naddress = "{m.address}"\n'
            f'fence = {{ agent = "fence_dummy", params = {{ type = "file", '
            f'status_file = "{m.power_file}", pcmk_reboot_action = "off" }} }}\n'
        )
    if cfg.bacula:
        text = baculaorg.site_text(text)
    return text + remote.site_additions(cfg, data, site)


def up(
    cfg: LabConfig,
    site: Path | None = None,
    log: Log = _quiet,
    progress: Progress | None = None,
) -> float:
    """Build the lab and wait until it runs; return the seconds taken (0 if it was already up).

    Without a site: the bare cluster, fencing seeded. With a site: the Bacula stack, its
    configuration generated by `bacula-ha generate` and applied with pcs, everything Started.
    `progress` hears of each stage finished (`bacula-ha lab up` on a terminal).
    """
    start = time.monotonic()
    progress = progress or quiet()
    if cfg.bacula and site is None:
        raise LabError("a bare lab runs no Bacula: --bacula needs the Bacula stack")
    # The site is checked before anything is torn down or built.
    site_toml = _site_text(cfg, site) if site is not None else None
    site_text = str(site.resolve()) if site else ""
    if cfg.remotes:
        remote.remoted_binary()
    found = leftovers(cfg.lab_dir)
    if not found.empty:
        state = read_state(cfg.lab_dir)
        same = state.get("site") == site_text and state.get("catalog", "shared") == cfg.catalog
        if healthy(cfg) and same:
            log("the lab is already up")
            return 0.0
        log(f"removing leftovers of an earlier lab: {found.describe()}")
        down(cfg.lab_dir)
        progress.step("leftovers removed")
    cfg.lab_dir.mkdir(parents=True)
    cfg.lab_dir.chmod(0o755)  # hacluster-run fence agents read the power files under it
    _write_state(
        cfg,
        nodes=cfg.nodes,
        remotes=cfg.remotes,
        dcs=cfg.dcs,
        catalog=cfg.catalog,
        phase="building",
        site=site_text,
        bacula=cfg.bacula,
        fresh=cfg.fresh,
    )
    for sub in ("log", "power", "machines"):
        (cfg.lab_dir / sub).mkdir()
    log("starting the supervisor (power switch)")
    machine.start_supervisor(cfg)
    log("network: switch, veths, 10.99.0.0/24")
    machine.create_switch()
    if cfg.dcs > 1:
        log(f"data centres: {cfg.dcs} bridges behind WAN links ({twodc.LINK_DELAY_MS} ms each way)")
        twodc.create_network(cfg)
    linked = {m.name for m in cfg.cluster_link_machines}
    for m in cfg.machines:
        machine.create_machine_net(m, cluster_link=m.name in linked)
    # The gateway is a network namespace only: the kernel answers its pings, nothing runs.
    machine.create_machine_net(cfg.gateway)
    log("shared disks (loop devices)" + (", not formatted" if cfg.fresh else ""))
    disks.create(cfg, mkfs=not cfg.fresh)
    ssh.prepare(cfg, root_keys=not cfg.fresh)
    if cfg.fresh:
        _boot_fresh(cfg, log)
        elapsed = time.monotonic() - start
        _write_state(cfg, phase="up", up_seconds=round(elapsed, 2))
        log(f"fresh machines up in {elapsed:.1f} s: follow docs/deploy.md with `lab exec`")
        return elapsed
    conf = cluster.corosync_conf(cfg, cfg.lab_dir)
    if cfg.dcs > 1:
        conf = twodc.with_qdevice(conf, site_toml)
    authkey = cfg.lab_dir / "authkey"
    run(["corosync-keygen", "-k", str(authkey)])
    cib = cluster.seed_cib(cfg, cfg.lab_dir, fencing=site is None)
    if cfg.remotes and site is None:
        remote.seed(cfg, cib)
    hosts = hosts_file(cfg)
    binds: list[tuple[str, str]] = []
    if site is not None:
        log("agents and Bacula configuration for every machine")
        if cfg.bacula:
            log(f"Bacula {baculaorg.release(cfg.bacula)} from {cfg.bacula} at {baculaorg.OPT}")
        stack.prepare_files(cfg)
        binds = stack.extra_binds(cfg)
    dirs = stack.STACK_DIRS + (replicated.PRIVATE_DIRS if cfg.catalog == "replicated" else ())
    dirs += baculaorg.PRIVATE_DIRS if cfg.bacula else ()
    ro = baculaorg.ro_binds(cfg)
    for m in cfg.machines:
        machine.write_spec(cfg, m, hosts, extra_dirs=dirs, extra_binds=binds, ro_binds=ro)
    for m in cfg.cluster_nodes:
        cluster.install_cluster_files(cfg, m, conf, authkey, cib)
    if cfg.remotes:
        pcmk_key = remote.make_authkey(cfg)
        for m in cfg.servers:
            remote.install_authkey(m, pcmk_key)
    if cfg.dcs > 1:
        log("quorum device: heuristics, certificates (arbiter and nodes)")
        twodc.prepare_qdevice(cfg)
    progress.step("network, disks and machine files ready")
    log("booting " + ", ".join(m.name for m in cfg.machines))
    machine.boot(cfg, cfg.client)
    if cfg.dcs > 1:
        twodc.boot_arbiter(cfg)
    for m in cfg.cluster_nodes:
        boot_node(cfg, m)
    for m in cfg.remote_nodes:
        remote.boot(cfg, m)
    progress.step("machines up")
    log("waiting for the cluster (DC, quorum" + (", fencing)" if site is None else ")"))
    bare = site is None
    cluster.wait_for(
        cfg, "node1", "the cluster to form", _all_online(cfg, bare, remotes=bare), timeout=90
    )
    progress.step("cluster formed")
    if site is not None:
        if cfg.catalog == "replicated":
            log("catalog on node1, a base backup of it on node2; volume directory on its disk")
            replicated.provision(cfg)
        else:
            log("catalog (PostgreSQL + Bacula tables) and volume directory on their disks")
            stack.provision_disks(cfg)
        stack.start_client(cfg)
        progress.step("catalog and volumes provisioned")
        applied = site
        if site_toml != site.read_text():
            applied = cfg.lab_dir / "site.toml"
            applied.write_text(site_toml or "")
        log(f"applying {applied} (bacula-ha generate --format pcs)")
        stack.apply_site(cfg, applied)
        progress.step("site applied")
        log("waiting for every resource to start")
        cluster.wait_for(cfg, "node1", "every resource Started", _all_started, timeout=180)
        if cfg.catalog == "replicated":
            replicated.wait_replicating(cfg, "node1")
        progress.step("every resource started")
    elapsed = time.monotonic() - start
    _write_state(cfg, phase="up", up_seconds=round(elapsed, 2))
    log(f"lab up in {elapsed:.1f} s")
    return elapsed


def _boot_fresh(cfg: LabConfig, log: Log) -> None:
    """Two servers and a client as just installed: Debian's packages and their stock
    configuration, sshd, unformatted shared disks; no cluster, no Bacula set up, no keys.

    `systemctl` in them is the lab's stand-in for systemd (bacula_ha.lab.systemctl)."""
    from bacula_ha.lab import systemctl

    stack.prepare_ocf(cfg, agents=False)
    sbin = cfg.lab_dir / "sbin"
    sbin.mkdir()
    (sbin / "systemctl").write_text(systemctl.script())
    (sbin / "systemctl").chmod(0o755)
    binds = [*stack.extra_binds(cfg), (str(sbin), "/usr/local/sbin")]
    hosts = hosts_file(cfg)
    for m in cfg.machines:
        machine.write_spec(cfg, m, hosts, extra_dirs=stack.STACK_DIRS, extra_binds=binds)
        for path in stack.STACK_DIRS:
            # Empty, as the packages leave them: their owner and mode matter (the director
            # runs as bacula and writes its working directory).
            host, private = os.stat(path), m.dir / "fs" / path.strip("/")
            os.chown(private, host.st_uid, host.st_gid)
            private.chmod(host.st_mode & 0o7777)
    log("booting " + ", ".join(m.name for m in cfg.machines))
    machine.boot(cfg, cfg.client)
    for m in cfg.cluster_nodes:
        boot_node(cfg, m)


def down(lab_dir: Path, log: Log = _quiet) -> Leftovers:
    """Remove everything the lab made, recorded or not; return what was found."""
    found = leftovers(lab_dir)
    if procs.kill_and_wait(list(found.inits.values())):
        raise LabError("a machine's PID-1 survived SIGKILL")
    for ns in found.namespaces:
        # Processes started in a netns outside any machine (should be none) would keep it.
        pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
        procs.kill_and_wait([int(p) for p in pids])
        run(["ip", "netns", "delete", ns], check=False)
    left_ns = [n for n in machine.netns_list() if n.startswith(NS_PREFIX)]
    if left_ns:
        raise LabError(f"could not delete namespaces {', '.join(left_ns)}")
    _unmount_under(lab_dir)
    disks.detach_all(lab_dir)
    procs.kill_and_wait(list(procs.supervisors(lab_dir)))
    if lab_dir.exists():
        run(["rm", "-rf", "--one-file-system", str(lab_dir)])
    log(f"removed: {found.describe()}")
    return found


def _unmount_under(lab_dir: Path) -> None:
    """Unmount host mounts under the lab directory (none are made; a crashed tool may leave one)."""
    for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
        target = line.split()[4]
        if target.startswith(str(lab_dir) + "/"):
            run(["umount", "-l", target], check=False)


# --- looking at it -----------------------------------------------------------------------


def vip_holders(cfg: LabConfig) -> dict[str, list[str]]:
    """Which machines have each VIP configured right now."""
    inits = procs.machine_inits(cfg.lab_dir)
    holders: dict[str, list[str]] = {name: [] for name in VIPS}
    by_addr = {addr: name for name, addr in VIPS.items()}
    for m in cfg.servers:
        if m.name not in inits:
            continue
        for addr in machine.addresses(m):
            if addr in by_addr:
                holders[by_addr[addr]].append(m.name)
    return holders


def status(cfg: LabConfig) -> str:
    inits = procs.machine_inits(cfg.lab_dir)
    lines = []
    linked = {m.name for m in cfg.cluster_link_machines}
    for m in cfg.machines:
        power = m.power_file.read_text() if m.power_file.exists() else "-"
        state = f"running (PID-1 {inits[m.name]})" if m.name in inits else "powered off"
        lines.append(f"{m.name:8} {m.address:12} {state}  power-file={power}{_cables(m, linked)}")
    gateway = cfg.gateway
    reach = "answers" if machine.port_up(gateway.name) else "CUT (no node reaches it)"
    lines.append(f"{gateway.name:8} {gateway.address:12} ping target: {reach}")
    if read_state(cfg.lab_dir).get("site"):
        lines.append(f"{'bacula':8} {baculaorg.describe(cfg)}")
        for node, prefix in sorted(upgrademod.upgraded_nodes(read_state(cfg.lab_dir)).items()):
            release = baculaorg.release(prefix)
            lines.append(f"{'':8} {node}: {release} in place over Debian's (from {prefix})")
    if cfg.dcs > 1:
        live = [m.name for m in cfg.cluster_nodes if m.name in inits]
        lines += twodc.status_lines(cfg, live[0] if live else None)
    lines.append("")
    for name, nodes in vip_holders(cfg).items():
        lines.append(f"{name:12} {VIPS[name]:12} on: {', '.join(nodes) or '-'}")
    lines.append("")
    try:
        via = cluster.any_live_node(cfg)
        # The site's own view (bacula-ha status) as an admin on that node would see it, then
        # Pacemaker's, which also shows what is not Bacula's (the lab's test VIP).
        for argv in (["bacula-ha", "status"], ["crm_mon", "-1", "-r", "-f"]):
            done = machine.run_in(cfg, via, argv, check=False)
            lines.append(f"{' '.join(argv)} on {via}:\n{done.stdout or done.stderr}")
    except LabError as exc:
        lines.append(str(exc))
    return "\n".join(lines)


def _cables(m: Machine, linked: set[str]) -> str:
    """What `lab status` says of a machine's cables when one is pulled ("" when all are in)."""
    uplink = machine.port_up(m.name)
    cluster_link = machine.port_up(m.name, cluster_link=True) if m.name in linked else uplink
    if uplink and cluster_link:
        return ""
    if not uplink and not cluster_link:
        return "  cables: all cut (partition)"
    return "  cables: UPLINK CUT" if not uplink else "  cables: cluster link cut"


# --- faults ------------------------------------------------------------------------------


def fail(cfg: LabConfig, node: str, mode: str) -> None:
    """Break a node: crash, partition, or one of the Bacula faults (see FAIL_MODES).

    In a two-DC lab, `node` may also name a data centre or the arbiter (see lab/twodc.py).
    """
    if twodc.is_target(cfg, node):
        twodc.fail(cfg, node, mode)
        return
    if node == cfg.gateway.name:
        # The ping target goes away for every node at once: nothing may move, nobody be fenced.
        if mode not in GATEWAY_FAIL_MODES:
            raise LabError(f"the gateway fails by {' or '.join(GATEWAY_FAIL_MODES)}, not {mode!r}")
        machine.set_port(node, up=False)
        return
    m = cfg.server(node)
    if mode not in FAIL_MODES:
        raise LabError(f"unknown failure mode {mode!r} (known: {', '.join(FAIL_MODES)})")
    if mode == "crash":
        machine.power_off(cfg.lab_dir, m.name)
    elif mode == "partition":
        # Every cable: the clients' network and the cluster's own.
        machine.set_port(m.name, up=False)
    elif mode == "uplink":
        # The clients' network (and the ping targets on it) only: corosync keeps its link.
        machine.set_port(m.name, up=False, uplink_only=True)
    elif mode in _SIGNAL_MODES:
        name, sig = _SIGNAL_MODES[mode]
        script = f'p=$(pgrep -x {name}) || {{ echo "no {name} runs on {node}" >&2; exit 1; }}; '
        script += f"kill -{sig} $p"
        machine.run_in(cfg, m.name, ["sh", "-c", script])
    elif mode == "unmount-sd":
        # Lazily, as an admin's or a broken automounter's umount would: the daemon keeps running.
        machine.run_in(cfg, m.name, ["umount", "-l", stack.SD_MOUNT])
    else:  # catalog-readonly
        stack.catalog_read_only(cfg, m.name, True)


def heal(cfg: LabConfig, log: Log = _quiet, timeout: float = 60) -> None:
    """Reconnect every node, boot every powered-off one, wait until all are back online."""
    if cfg.dcs > 1:
        twodc.heal_network(cfg)
    inits = procs.machine_inits(cfg.lab_dir)
    machine.set_port(cfg.gateway.name, up=True)
    for m in cfg.cluster_nodes:
        if m.name in inits:
            machine.set_port(m.name, up=True)
    for m in cfg.cluster_nodes:
        if m.name not in inits:
            log(f"booting {m.name}")
            machine.wait_power_switch(cfg, m)
            if cfg.catalog == "replicated":
                # Its database must become a standby before Pacemaker sees it (pg_rewind).
                log(replicated.boot_node(cfg, m) or f"{m.name} holds no catalog")
            else:
                boot_node(cfg, m)
            machine.set_port(m.name, up=True)
    booted = []
    for m in cfg.remote_nodes:
        if m.name in inits:
            machine.set_port(m.name, up=True)
        else:
            log(f"booting {m.name}")
            machine.wait_power_switch(cfg, m)
            remote.boot(cfg, m)
            machine.set_port(m.name, up=True)
            booted.append(m.name)
    if cfg.client.name not in inits:
        machine.boot(cfg, cfg.client)
        machine.set_port(cfg.client.name, up=True)
        if cfg.fresh:
            machine.run_in(cfg, cfg.client.name, ["systemctl", "lab-boot"], timeout=60)
        elif read_state(cfg.lab_dir).get("site"):
            stack.start_client(cfg)
    via = cluster.any_live_node(cfg)
    for name in booted:
        # Its connection reconnects by itself (reconnect_interval); a connection that gave
        # up (start failures, or a site without reconnect_interval) is told to try again.
        machine.run_in(cfg, via, ["crm_resource", "--cleanup", "--resource", name], check=False)
    cluster.wait_for(cfg, via, "all nodes online", _all_online(cfg), timeout)
    if not read_state(cfg.lab_dir).get("site"):
        return
    # The Bacula faults: wake stopped daemons, make the catalog writable, forget failures.
    for m in cfg.servers:
        script = "for p in $(pgrep -x 'bacula-(dir|sd)'); do kill -CONT $p; done; true"
        machine.run_in(cfg, m.name, ["sh", "-c", script])
    db_nodes = cluster.view(cfg, via).resources.get("cat1-db", ("", ()))[1]
    if cfg.catalog == "replicated":
        db_nodes = replicated.primaries(cfg)  # a standby is read-only anyway
    for node in db_nodes:
        stack.catalog_read_only(cfg, node, False)
    machine.run_in(cfg, via, ["crm_resource", "--cleanup"], timeout=60)
    log("waiting for every resource to start")
    cluster.wait_for(cfg, via, "every resource Started", _all_started, timeout=120)
    if cfg.catalog == "replicated":
        replicated.wait_replicating(cfg, via)


def upgrade(cfg: LabConfig, node: str, prefix: str) -> upgrademod.Upgraded:
    """Upgrade NODE's Bacula in place to the build at PREFIX (bacula_ha.lab.upgrade)."""

    def save(upgraded: dict[str, str]) -> None:
        _write_state(cfg, **{upgrademod.STATE_KEY: upgraded})

    return upgrademod.upgrade(cfg, node, prefix, read_state(cfg.lab_dir), save)


def exec_in(cfg: LabConfig, name: str, argv: Sequence[str]) -> int:
    """Run a command inside a machine with the caller's terminal; return its exit status."""
    cfg.machine(name)
    return subprocess.run(machine.exec_argv(cfg, name, argv), env=dict(NODE_ENV)).returncode
