"""`bacula-ha check` on Bacula 13.0.3's own sample configuration (what `make install` puts in
/opt/bacula/etc), read by 13's own parsers through `--prefix`: what an admin who starts from
the stock files is told before a failover can work. Marked `bacula13`."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import Layout
from bacula_ha.check.findings import EXIT_FINDINGS

from .test_check import LAB_SITE, replace, run, site_variant

pytestmark = pytest.mark.bacula13

FILES = ("bacula-dir.conf", "bacula-sd.conf", "bacula-fd.conf")


def stock_prefix(install: Layout, where: Path, log: Path) -> tuple[Path, str]:
    """A copy of the build's etc/ under `where`, with bin/ running 13.0.3's b*json (through a
    wrapper that logs its arguments to `log`); and the host name the sample configuration was
    made for."""
    (where / "bin").mkdir(parents=True)
    (where / "etc").mkdir()
    for tool in ("bdirjson", "bsdjson", "bfdjson"):
        wrapper = where / "bin" / tool
        wrapper.write_text(f'#!/bin/sh\necho "$0 $*" >> {log}\nexec {install.tool(tool)} "$@"\n')
        wrapper.chmod(0o755)
    for name in FILES:
        shutil.copy(install.conf(name), where / "etc" / name)
    # Bacula's configure writes the build machine's name (`hostname`) into the samples: made
    # `localhost`, as on a one-machine install, so the findings do not depend on who built it.
    dir_conf = where / "etc" / "bacula-dir.conf"
    text = dir_conf.read_text()
    found = re.search(r"(?m)^\s*Name = (\S+)-dir\s*$", text)
    assert found, text[:2000]
    host = found[1]
    text, n = re.subn(rf"(?m)^(\s*Address = ){re.escape(host)}\b", r"\1localhost", text)
    assert n == 3, text  # the Client and both Autochangers
    dir_conf.write_text(text)
    return where, host


def test_the_stock_13_configuration(bacula13_install: Layout, tmp_path: Path) -> None:
    log = tmp_path / "ran.log"
    prefix, host = stock_prefix(bacula13_install, tmp_path / "opt" / "bacula", log)
    configs = [str(prefix / "etc" / name) for name in FILES]
    status, doc = run(LAB_SITE, configs, "--prefix", str(prefix))
    # Read without a parser error, each by its own 13.0.3 parser.
    assert doc["status"] == "errors" and status == EXIT_FINDINGS, doc
    assert [(c["file"], c["daemon"]) for c in doc["checked"]] == [
        (configs[0], "director"),
        (configs[1], "storage"),
        (configs[2], "filedaemon"),
    ]
    ran = log.read_text().splitlines()
    for tool, conf in zip(("bdirjson", "bsdjson", "bfdjson"), configs, strict=True):
        assert any(r.startswith(f"{prefix}/bin/{tool} ") and conf in r for r in ran), ran
    found = [
        (f["code"], f["severity"], f["resource_type"], f["resource_name"], f["directive"])
        for f in doc["findings"]
    ]
    heartbeat = ("heartbeat-interval-missing", "warning")
    assert found == [
        # The storage daemon the director and the clients are sent to is this node itself.
        ("storage-address-not-vip", "error", "Storage", "File1", "Address"),
        ("storage-address-not-vip", "error", "Storage", "File2", "Address"),
        # Volumes in /tmp, not on the storage's disk (/srv/bacula): left behind on a failover.
        *(
            (
                "archive-device-not-on-disk",
                "error",
                "Device",
                f"FileChgr{c}-Dev{d}",
                "Archive Device",
            )
            for c in (1, 2)
            for d in (1, 2)
        ),
        (*heartbeat, "Director", f"{host}-dir", "Heartbeat Interval"),
        (*heartbeat, "Storage", "File1", "Heartbeat Interval"),
        (*heartbeat, "Storage", "File2", "Heartbeat Interval"),
        # The client is whichever node the director runs on.
        ("client-address-loopback", "warning", "Client", f"{host}-fd", "Address"),
        (*heartbeat, "Client", f"{host}-fd", "Heartbeat Interval"),
        ("reschedule-on-error-missing", "warning", "Job", "BackupCatalog", "Reschedule On Error"),
        ("reschedule-on-error-missing", "warning", "Job", "BackupClient1", "Reschedule On Error"),
        (*heartbeat, "Storage", f"{host}-sd", "Heartbeat Interval"),
        (*heartbeat, "FileDaemon", f"{host}-fd", "Heartbeat Interval"),
    ]
    # What the stock files get right for a cluster: WorkingDirectory and PidDirectory in the
    # install's own working/ (node-local), spooled attributes (DefaultJob), and the catalog on
    # the local socket (no DB Address), which is right while the director runs beside it ...
    assert all(
        f["directive"] not in ("WorkingDirectory", "PidDirectory", "Spool Attributes")
        for f in doc["findings"]
    )
    # ... and wrong when the director runs apart from its catalog.
    apart = site_variant(tmp_path, replace("with_catalog = true", "with_catalog = false"))
    status, doc = run(apart, configs[:1], "--prefix", str(prefix))
    catalog = [f for f in doc["findings"] if f["resource_type"] == "Catalog"]
    assert [(f["code"], f["severity"], f["value"]) for f in catalog] == [
        ("catalog-address-not-vip", "error", None)
    ]
    assert "DB Address = 10.99.0.20" in catalog[0]["fix"]
