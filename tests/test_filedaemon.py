"""The bacula-fd agent against real file daemons: bound to a floating address.

What it shares with the other daemon agents is in test_daemon_contract.py.
"""

from __future__ import annotations

from pathlib import Path

from .fixtures_bacula import FILEDAEMON, SiteFactory


def test_floating_address_from_the_configuration(
    site_factory: SiteFactory, rsctmp: Path, ocf_root: Path
) -> None:
    # The file daemon listens on its own address only (a virtual IP; here a second
    # loopback address): the agent checks it there, as FDAddress says.
    site = site_factory(fd_address="127.0.0.2")
    d = FILEDAEMON.on(site)
    d.start(rsctmp)
    assert d.run("monitor", rsctmp, depth=10).code == 0
    # An explicit address that is not where the daemon listens: no answer, named.
    wrong = d.run("monitor", rsctmp, depth=10, params={"address": "127.0.0.1"})
    assert wrong.code == 1 and f"no answer on 127.0.0.1:{site.fd_port}" in wrong.reason
    assert d.run("monitor", rsctmp, depth=0, params={"address": "127.0.0.1"}).code == 0
    assert d.run("stop", rsctmp).code == 0
