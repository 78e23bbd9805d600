"""Fixtures for daemon agent tests: throwaway Bacula sites with a real PostgreSQL catalog."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from bacula_ha.ocf.process import Identity
from bacula_ha.sandbox.bacula import BaculaSite, CatalogSettings
from bacula_ha.sandbox.postgres import CatalogInfo, free_port, make_basedir

__all__ = ["SiteFactory", "kill_site_daemons", "site_factory"]

SiteFactory = Callable[..., BaculaSite]
_DAEMONS = ("/usr/sbin/bacula-dir", "/usr/sbin/bacula-sd", "/usr/sbin/bacula-fd")


def kill_site_daemons(site: BaculaSite) -> None:
    """SIGKILL every Bacula daemon whose command line names one of this site's files."""
    confs = [str(p) for p in site.etc.glob("*.conf")]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        for exe in _DAEMONS:
            if any(Identity(exe, conf).matches(pid) for conf in confs):
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


@pytest.fixture
def site_factory(pg_catalog: CatalogInfo) -> Iterator[SiteFactory]:
    """Make sites (configs, dirs, free ports) on the shared catalog; daemons die at teardown."""
    sites: list[BaculaSite] = []

    def make(**kwargs: object) -> BaculaSite:
        root = make_basedir("bacula", prefix="bacula-ha-site-")
        n_sd = int(kwargs.pop("n_sd", 1))  # type: ignore[call-overload]
        catalog = CatalogSettings(
            dbname=pg_catalog.db_name,
            user=pg_catalog.db_user,
            password=pg_catalog.db_password,
            address="127.0.0.1",
            port=pg_catalog.port,
        )
        defaults: dict[str, object] = {
            "catalog": catalog,
            "dir_port": free_port(),
            "fd_port": free_port(),
            "sd_ports": tuple(free_port() for _ in range(n_sd)),
        }
        defaults.update(kwargs)
        site = BaculaSite(root, **defaults).write()  # type: ignore[arg-type]
        sites.append(site)
        return site

    try:
        yield make
    finally:
        for site in sites:
            kill_site_daemons(site)
        time.sleep(0.1)
        for site in sites:
            shutil.rmtree(site.root, ignore_errors=True)


def dir_params(site: BaculaSite, **extra: str) -> dict[str, str]:
    return {
        "config": str(site.dir_conf),
        "bconsole_config": str(site.console_conf),
        "check_timeout": "2",
        **extra,
    }


def bconsole(site: BaculaSite, *commands: str, timeout: float = 20) -> str:
    out = subprocess.run(
        ["/usr/sbin/bconsole", "-n", "-u", "10", "-c", str(site.console_conf)],
        input="".join(f"{c}\n" for c in commands) + "quit\n",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout
