"""bacula-confsync of a bacula.org /opt/bacula/etc tree on Bacula 13.0.3: the test before the
push reads PREFIX/etc with PREFIX/bin's parsers (layout.of_config_dir), here 13.0.3's, over the
real ssh and rsync of test_confsync_agent's sandbox peers. Marked `bacula13`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import Layout

from .test_confsync_agent import rsctmp, run
from .test_confsync_fixtures import Lab, lab, tree_state

__all__ = ["lab", "rsctmp"]

pytestmark = pytest.mark.bacula13

FILES = ("bacula-dir.conf", "bacula-sd.conf", "bacula-fd.conf", "bconsole.conf")


def test_an_opt_bacula_etc_tree_is_tested_by_13_before_the_push(
    lab: Lab, rsctmp: Path, ocf_root: Path, bacula13_install: Layout
) -> None:
    # PREFIX/bin holds 13.0.3's parsers, PREFIX/etc its stock configuration.
    prefix = lab.tmp / "opt" / "bacula"
    (prefix / "bin").mkdir(parents=True)
    etc = prefix / "etc"
    etc.mkdir()
    for tool in ("bdirjson", "bsdjson", "bfdjson"):
        (prefix / "bin" / tool).symlink_to(bacula13_install.tool(tool))
    for name in FILES:
        shutil.copy(bacula13_install.conf(name), etc / name)
    # Debian's 9.6 parser refuses 13's stock bacula-fd.conf (a message type 9.6 lacks): only
    # 13's lets it through.
    debian = subprocess.run(
        ["/usr/sbin/bfdjson", "-c", str(etc / "bacula-fd.conf")], capture_output=True, text=True
    )
    assert debian.returncode != 0 and "verified not found" in debian.stdout + debian.stderr
    params = {"paths": str(etc), "config_check": "parse"}

    # A broken director configuration is refused before anything is pushed (the start itself
    # succeeds, as the agent's starts do, and says so; the monitor is degraded).
    good = (etc / "bacula-dir.conf").read_text()
    (etc / "bacula-dir.conf").write_text(good + "Job {\n  Name = Broken\n  Type = \n")
    started = run(lab, "start", rsctmp, **params)
    assert started.code == 0, started.stderr
    assert "nothing pushed: bacula-dir.conf: Config error" in started.stderr
    degraded = run(lab, "monitor", rsctmp, **params)
    assert degraded.code == 190 and "bacula-dir.conf" in degraded.reason, degraded.stderr
    for peer in ("p1", "p2"):
        assert not lab.peer_path(peer, etc).exists()

    # Mended: the next monitor pushes the tree, which arrives identical on every peer.
    (etc / "bacula-dir.conf").write_text(good)
    assert run(lab, "monitor", rsctmp, **params).code == 0
    for peer in ("p1", "p2"):
        assert tree_state(lab.peer_path(peer, etc)) == tree_state(etc)

    # Broken under a running instance: degraded, not pushed; the peers keep the good files.
    (etc / "bacula-sd.conf").write_text("Storage {\n  Name = half\n")
    degraded = run(lab, "monitor", rsctmp, **params)
    assert degraded.code == 190 and "not pushed" in degraded.reason, degraded.stderr
    assert "bacula-sd.conf" in degraded.reason
    for peer in ("p1", "p2"):
        sd_conf = lab.peer_path(peer, etc) / "bacula-sd.conf"
        assert sd_conf.read_bytes() == Path(bacula13_install.conf("bacula-sd.conf")).read_bytes()
    assert run(lab, "stop", rsctmp, **params).code == 0
