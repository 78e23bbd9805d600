"""The two-DC lab's description without a lab: who is in which data centre, corosync.conf."""

from __future__ import annotations

import pytest

from bacula_ha.lab import lifecycle, twodc
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.errors import LabError

PCS_QUORUM = "quorum {\n    provider: corosync_votequorum\n}\n"


def test_four_nodes_in_two_dcs_and_an_arbiter() -> None:
    cfg = LabConfig(nodes=4, dcs=2)
    assert [cfg.dc_of(i) for i in range(1, 5)] == ["dc1", "dc1", "dc2", "dc2"]
    assert [m.bridge for m in cfg.cluster_nodes] == ["brdc1", "brdc1", "brdc2", "brdc2"]
    assert twodc.dcs(cfg) == ("dc1", "dc2")
    assert [m.name for m in twodc.dc_nodes(cfg, "dc2")] == ["node3", "node4"]
    assert twodc.dc_of_node(cfg, "node2") == "dc1"
    assert cfg.arbiter is not None and cfg.arbiter.address == "10.99.0.200"
    # The client and the arbiter are in the third place: the core bridge.
    assert cfg.client.bridge == cfg.arbiter.bridge == "br0"
    assert [m.name for m in cfg.machines][-2:] == ["client", "arbiter"]
    # Machines on the cluster network are known by their address there.
    assert "10.99.1.200 arbiter" in lifecycle.hosts_file(cfg)
    assert "10.99.0.100 client" in lifecycle.hosts_file(cfg)
    assert [m.cluster_bridge for m in cfg.cluster_nodes] == ["brkdc1", "brkdc1", "brkdc2", "brkdc2"]
    assert cfg.arbiter.cluster_bridge == "brk" and cfg.arbiter.cluster_address == "10.99.1.200"
    assert [m.name for m in cfg.cluster_link_machines] == [
        "node1", "node2", "node3", "node4", "arbiter"
    ]  # fmt: skip
    assert twodc.is_target(cfg, "dc1") and twodc.is_target(cfg, "arbiter")
    assert not twodc.is_target(cfg, "node1")
    with pytest.raises(LabError, match="no data centre 'dc3'"):
        twodc.dc_nodes(cfg, "dc3")


def test_one_dc_lab_has_two_networks_and_a_gateway() -> None:
    cfg = LabConfig(nodes=3)
    assert cfg.arbiter is None
    assert {m.bridge for m in cfg.machines} == {"br0"}
    assert not twodc.is_target(cfg, "dc1")
    # corosync's own network on eth1 for the cluster nodes only; the client has eth0 alone.
    assert [(m.cluster_address, m.cluster_bridge) for m in cfg.cluster_link_machines] == [
        ("10.99.1.1", "brk"), ("10.99.1.2", "brk"), ("10.99.1.3", "brk")
    ]  # fmt: skip
    assert cfg.gateway.address == "10.99.0.254" and cfg.gateway.bridge == "br0"
    assert "10.99.1.2 node2" in lifecycle.hosts_file(cfg)


@pytest.mark.parametrize(("nodes", "dcs", "message"), [(3, 2, "has 4 nodes"), (4, 3, "1 or 2")])
def test_bad_shapes_are_refused(nodes: int, dcs: int, message: str) -> None:
    with pytest.raises(LabError, match=message):
        LabConfig(nodes=nodes, dcs=dcs)


def test_corosync_conf_gets_the_sites_quorum_device() -> None:
    # The bare lab takes the two-DC site's [quorum_device], as the generator writes it.
    conf = twodc.with_qdevice("totem {\n}\n" + PCS_QUORUM, None)
    for line in (
        "model: net",
        "votes: 1",
        "host: 10.99.1.200",  # the arbiter on the cluster network: an uplink loss keeps it
        "algorithm: ffsplit",
        "tie_breaker: lowest",
        "tls: on",
        "timeout: 3000",
        "mode: sync",
        "exec_ping: /usr/bin/ping -q -n -c 1 -W 1 10.99.0.254",
        f"exec_holds_director: {twodc.HEURISTIC}",
    ):
        assert f" {line}\n" in conf, line
    assert conf.startswith("totem {\n}\n")
    with pytest.raises(LabError, match="no plain votequorum section"):
        twodc.with_qdevice("totem {\n}\n", None)
    site = twodc.default_site().read_text().replace("[quorum_device]", "[quorum_devise]")
    with pytest.raises(LabError):
        twodc.with_qdevice(PCS_QUORUM, site)


def test_the_arbiters_vote_is_read_from_quorumtool() -> None:
    counted = (
        "    Nodeid      Votes    Qdevice Name\n         1          1    A,V,NMW node1 (local)\n"
    )
    counted += "         0          1            Qdevice\n"
    lost = counted.replace(
        "0          1            Qdevice", "0          0            Qdevice (votes 1)"
    )
    assert twodc.votes_in(counted) and not twodc.votes_in(lost)


def test_two_dc_site_puts_every_standby_in_the_other_dc() -> None:
    import tomllib

    site = tomllib.loads(twodc.default_site().read_text())
    dc = {n["name"]: n["dc"] for n in site["node"]}
    assert dc == {"node1": "dc1", "node2": "dc1", "node3": "dc2", "node4": "dc2"}
    parts = [*site["director"], *(d["catalog"] for d in site["director"]), *site["storage"]]
    for part in parts:
        preferred = part.get("preferred", site["director"][0]["preferred"])
        standby = part.get("standby", site["director"][0]["standby"])
        assert dc[preferred] != dc[standby], part["name"]


def test_heuristic_passes_only_where_the_director_vip_is() -> None:
    assert "grep -q ' 10.99.0.21/'" in twodc.HEURISTIC_SCRIPT
    assert twodc.HEURISTIC_SCRIPT.startswith("#!/bin/sh\n")
