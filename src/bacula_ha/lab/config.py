"""Names, addresses, paths and timings of the lab: one frozen description, no state."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from bacula_ha.lab.errors import LabError


def _lab_id() -> str:
    """BACULA_HA_LAB_ID: a short tag that lets several labs live side by side on one host.

    Every host-wide name of a lab (namespaces, disk labels, the default directory) carries
    it; addresses need not, since each lab has its own switch namespace.
    """
    value = os.environ.get("BACULA_HA_LAB_ID", "")
    if not re.fullmatch(r"[a-z0-9]{0,4}", value):
        # Read at import, before any command could catch a LabError: a plain message.
        raise SystemExit(f"BACULA_HA_LAB_ID={value!r}: use up to 4 lower-case letters or digits")
    return value


LAB_ID = _lab_id()
# The lab subnet exists only inside namespaces this code creates: no route leads out of it.
SUBNET = "10.99.0"
PREFIX_LEN = 24
CLIENT_HOST = 100
NS_PREFIX = f"bhl{LAB_ID}-"
SWITCH_NS = NS_PREFIX + "sw"
BRIDGE = "br0"
# The cluster's own network (corosync's second knet link, as real clusters are built): a
# separate bridge and subnet, so that losing the clients' network (the uplink) does not split
# the cluster. Cluster nodes and the arbiter have an eth1 there; clients and remote nodes not.
CLUSTER_SUBNET = "10.99.1"
CLUSTER_BRIDGE = "brk"
# The clients' network's gateway: the ping target of every lab site ([connectivity]), a
# namespace of the lab's own on the clients' bridge that answers pings and nothing else.
GATEWAY_HOST = 254
# Disks are found by label (mount -L); the prefix keeps two labs' disks apart.
DISK_LABEL_PREFIX = NS_PREFIX
# Sites in examples/ name power files under the plain default; the lab rewrites them.
DEFAULT_LAB_DIR = Path("/var/lib/bacula-ha-lab")
CLUSTER_NAME = "bacula-lab"
MAX_NODES = 5
# pacemaker_remote machines (`lab up --remote N`): remote1.. at .11, .12, ...
MAX_REMOTES = 4
REMOTE_HOST_BASE = 10
# A two-DC lab (see bacula_ha.lab.twodc): the quorum arbiter's address in the third place.
ARBITER_HOST = 200


@dataclass(frozen=True)
class Machine:
    """One namespace machine of the lab: a cluster node, a remote node or the client."""

    name: str
    address: str
    lab_dir: Path
    # The switch namespace's bridge the machine's port is on (a two-DC lab has one per DC).
    bridge: str = BRIDGE
    # The same for its eth1 on the cluster network (cluster nodes and the arbiter only).
    cluster_bridge: str = CLUSTER_BRIDGE

    @property
    def netns(self) -> str:
        return NS_PREFIX + self.name

    @property
    def port(self) -> str:
        """The machine's veth end on the bridge, in the switch namespace."""
        return NS_PREFIX + "p-" + self.name

    @property
    def cluster_port(self) -> str:
        """The veth end of the machine's eth1 on the cluster bridge (cluster nodes, arbiter)."""
        return NS_PREFIX + "k-" + self.name

    @property
    def cluster_address(self) -> str:
        """The machine's address on the cluster network: the same host number as on eth0."""
        return f"{CLUSTER_SUBNET}.{self.address.rsplit('.', 1)[1]}"

    @property
    def dir(self) -> Path:
        return self.lab_dir / "machines" / self.name

    @property
    def power_file(self) -> Path:
        """The fence_dummy status file: "on" or "off", no newline."""
        return self.lab_dir / "power" / self.name


@dataclass(frozen=True)
class LabConfig:
    """What a lab is made of; derived entirely from the node counts and the lab directory."""

    nodes: int = 2
    lab_dir: Path = field(default_factory=lambda: lab_dir_from_env())
    # token 1000 ms halves the 3-node failover time measured in lab.md (9.2 s to 4.7 s);
    # dc-deadtime 2 s takes a cold start from 22 s to about 3 s.
    token_ms: int = 1000
    dc_deadtime: str = "2s"
    # The node running resources wins a fence race after a partition.
    priority_fencing_delay: str = "1s"
    # pacemaker_remote nodes (bacula_ha.lab.remote): run resources, no vote, no corosync.
    remotes: int = 0
    # 2: nodes split over two data centres with a quorum arbiter in a third (lab/twodc.py).
    dcs: int = 1
    # "shared": the catalog on a loop disk under ocf:heartbeat:pgsql; "replicated": PostgreSQL
    # streaming replication between node1 and node2 under PAF (bacula_ha.lab.replicated).
    catalog: str = "shared"
    # A bacula.org build of Bacula (the host path of its prefix, see bacula_ha.lab.baculaorg)
    # that every machine runs as an install at /opt/bacula; "": Debian's packages.
    bacula: str = ""
    # Fresh machines only (docs/deploy.md): network, disks, sshd, no cluster, no Bacula set up.
    fresh: bool = False

    def __post_init__(self) -> None:
        if not 2 <= self.nodes <= MAX_NODES:
            raise LabError(f"a lab has 2 to {MAX_NODES} nodes, not {self.nodes}")
        if not 0 <= self.remotes <= MAX_REMOTES:
            raise LabError(f"a lab has 0 to {MAX_REMOTES} remote nodes, not {self.remotes}")
        if self.dcs not in (1, 2):
            raise LabError(f"a lab has 1 or 2 data centres, not {self.dcs}")
        if self.dcs == 2 and self.nodes != 4:
            raise LabError(f"a two-DC lab has 4 nodes (two per data centre), not {self.nodes}")
        if self.dcs == 2 and self.remotes:
            # Each shape has its own site and tests; together they would need a third site.
            raise LabError("a two-DC lab has no remote nodes: use --dcs 2 or --remote N")
        if self.catalog not in ("shared", "replicated"):
            raise LabError(f"catalog {self.catalog!r}: use shared or replicated")
        if self.catalog == "replicated" and (self.dcs > 1 or self.remotes):
            # The replicated site is a 2-node site; the two-DC and remote sites share a disk.
            raise LabError("a replicated catalog lab has neither --dcs 2 nor remote nodes")
        if self.bacula and (self.catalog != "shared" or self.dcs > 1 or self.remotes):
            # Only the shared-catalog lab is made and tested with another Bacula so far.
            raise LabError(
                "--bacula goes with the shared catalog's lab only (not --catalog replicated,"
                " --dcs 2 or --remote)"
            )

        if self.fresh and (self.nodes != 2 or self.remotes or self.dcs > 1 or self.bacula):
            # The deployment guide is written for two servers and Debian's packages.
            raise LabError("fresh machines are two nodes and a client, with Debian's Bacula")

    def dc_of(self, index: int) -> str:
        """The data centre of node number index (from 1): dc1 holds the first half."""
        return f"dc{1 + (index - 1) * self.dcs // self.nodes}" if self.dcs > 1 else ""

    @property
    def cluster_nodes(self) -> tuple[Machine, ...]:
        return tuple(
            Machine(
                f"node{i}",
                f"{SUBNET}.{i}",
                self.lab_dir,
                bridge=f"br{self.dc_of(i)}" if self.dcs > 1 else BRIDGE,
                cluster_bridge=f"brk{self.dc_of(i)}" if self.dcs > 1 else CLUSTER_BRIDGE,
            )
            for i in range(1, self.nodes + 1)
        )

    @property
    def arbiter(self) -> Machine | None:
        """The quorum device's host (corosync-qnetd) of a two-DC lab, on the core bridge."""
        return (
            Machine("arbiter", f"{SUBNET}.{ARBITER_HOST}", self.lab_dir) if self.dcs > 1 else None
        )

    @property
    def gateway(self) -> Machine:
        """The clients' network's gateway: pinged, never booted (the kernel answers)."""
        return Machine("gateway", f"{SUBNET}.{GATEWAY_HOST}", self.lab_dir)

    @property
    def cluster_link_machines(self) -> tuple[Machine, ...]:
        """The machines with an eth1 on the cluster network: cluster nodes and the arbiter."""
        extra = (self.arbiter,) if self.arbiter is not None else ()
        return (*self.cluster_nodes, *extra)

    @property
    def remote_nodes(self) -> tuple[Machine, ...]:
        return tuple(
            Machine(f"remote{i}", f"{SUBNET}.{REMOTE_HOST_BASE + i}", self.lab_dir)
            for i in range(1, self.remotes + 1)
        )

    @property
    def servers(self) -> tuple[Machine, ...]:
        """The machines that run resources and are fenced: cluster and remote nodes."""
        return (*self.cluster_nodes, *self.remote_nodes)

    def server(self, name: str) -> Machine:
        for m in self.servers:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.servers)
        raise LabError(f"no cluster node {name!r} in this lab (known: {known})")

    @property
    def client(self) -> Machine:
        return Machine("client", f"{SUBNET}.{CLIENT_HOST}", self.lab_dir)

    @property
    def machines(self) -> tuple[Machine, ...]:
        extra = (self.arbiter,) if self.arbiter is not None else ()
        return (*self.cluster_nodes, *self.remote_nodes, self.client, *extra)

    def machine(self, name: str) -> Machine:
        for m in self.machines:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.machines)
        raise LabError(f"no machine {name!r} in this lab (known: {known})")

    def node(self, name: str) -> Machine:
        for m in self.cluster_nodes:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.cluster_nodes)
        raise LabError(f"no cluster node {name!r} in this lab (known: {known})")

    @property
    def state_file(self) -> Path:
        return self.lab_dir / "state.json"

    @property
    def supervisor_socket(self) -> Path:
        return self.lab_dir / "supervisor.sock"

    @property
    def disks_dir(self) -> Path:
        return self.lab_dir / "disks"

    @property
    def log_dir(self) -> Path:
        return self.lab_dir / "log"


def lab_dir_from_env() -> Path:
    """The lab directory: BACULA_HA_LAB_DIR if set (tests may use their own), else the default."""
    value = os.environ.get("BACULA_HA_LAB_DIR")
    return Path(value) if value else Path(f"{DEFAULT_LAB_DIR}{LAB_ID}")
