"""The Bacula stack on a 3-node lab: the 2-node site plus a quorum node, crash of the active."""

from __future__ import annotations

import os

import pytest

from bacula_ha.lab import lifecycle, stack
from testkit.lab import BaculaWatch, running_lab, started_on, wait_until

pytestmark = [
    pytest.mark.lab,
    pytest.mark.skipif(os.geteuid() != 0, reason="the lab needs root"),
]


def test_three_node_stack_fails_over_to_the_standby_only() -> None:
    with running_lab(nodes=3, site=stack.default_site()) as cfg:
        applied = (cfg.lab_dir / "site.toml").read_text()
        assert 'name = "node3"' in applied and "power/node3" in applied
        assert started_on(cfg, "fence-node3")
        (active,) = started_on(cfg, "dir1-dir")
        lifecycle.fail(cfg, active, "crash")
        answered = BaculaWatch(cfg, 90).result()
        assert answered["dir"] is not None and answered["sd"] is not None
        # The director answers just before Pacemaker records its start as done.
        wait_until(
            "the director's start recorded", lambda: len(started_on(cfg, "dir1-dir")) == 1, 30
        )
        # node3 only gives quorum: the site keeps every group on its preferred/standby pair.
        (holder,) = started_on(cfg, "dir1-dir")
        assert holder not in (active, "node3")
        assert started_on(cfg, "sd1-sd") == (holder,)
        _, status = stack.backup(cfg)
        assert status == "T"
