"""Fixtures for daemon agent tests: throwaway Bacula sites with a real PostgreSQL catalog."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import DEBIAN, Layout
from bacula_ha.ocf.process import Identity
from testkit.sandbox.bacula import BaculaSite, CatalogSettings
from testkit.sandbox.postgres import CatalogInfo, free_port, make_basedir

from .fixtures_agents import AgentRun, run_agent
from .tiers import slow_fixture

__all__ = ["SiteFactory", "kill_site_daemons", "rsctmp", "site_catalog", "site_factory"]

SiteFactory = Callable[..., BaculaSite]
_DAEMONS = ("bacula-dir", "bacula-sd", "bacula-fd")


def kill_site_daemons(site: BaculaSite) -> list[int]:
    """SIGKILL every Bacula daemon whose command line names one of this site's files.

    Returns the pids it killed (wait_gone waits for them).
    """
    killed: list[int] = []
    confs = [str(p) for p in site.etc.glob("*.conf")]
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        for exe in map(site.binary, _DAEMONS):
            if any(Identity(exe, conf).matches(pid) for conf in confs):
                try:
                    os.kill(pid, signal.SIGCONT)
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
    return killed


@pytest.fixture
@slow_fixture
def site_catalog(request: pytest.FixtureRequest, bacula_install: Layout) -> CatalogInfo:
    """The shared PostgreSQL catalog of the install under test, where site_factory's sites
    keep theirs: pg_catalog (9.6), pg_catalog13 on 13.0.3."""
    name = "pg_catalog" if bacula_install == DEBIAN else "pg_catalog13"
    return request.getfixturevalue(name)  # type: ignore[no-any-return]


@pytest.fixture
def site_factory(bacula_install: Layout, site_catalog: CatalogInfo) -> Iterator[SiteFactory]:
    """Make sites (configs, dirs, free ports) of the install under test (bacula_install) on
    its shared catalog (site_catalog); daemons die at teardown."""
    install = bacula_install
    pg_catalog = site_catalog
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
            "install": install,
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
        # A test that stopped its daemons leaves none: wait only for those killed here.
        wait_gone([pid for site in sites for pid in kill_site_daemons(site)])
        for site in sites:
            shutil.rmtree(site.root, ignore_errors=True)


def bconsole(site: BaculaSite, *commands: str, timeout: float = 20) -> str:
    out = subprocess.run(
        [site.binary("bconsole"), "-n", "-u", "10", "-c", str(site.console_conf)],
        input="".join(f"{c}\n" for c in commands) + "quit\n",
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return out.stdout


@pytest.fixture
def rsctmp(tmp_path: Path) -> Path:
    """The agents' HA_RSCTMP, private to the test."""
    path = tmp_path / "rsctmp"
    path.mkdir()
    return path


def gone(pid: int) -> bool:
    """No such process, or only its zombie (the container's init may not reap it)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, ProcessLookupError):
        return True


def wait_gone(pids: list[int], timeout: float = 10) -> None:
    """Until each of these processes is gone (a SIGKILL is not instant); fails after timeout."""
    deadline = time.monotonic() + timeout
    while not all(gone(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running after {timeout} s: {pids}"
        time.sleep(0.01)


# -- the three daemon agents, described for the tests they share -------------------------------


@dataclass(frozen=True)
class DaemonAgent:
    """What the shared daemon-agent tests need to know of one agent (bacula-dir, -sd, -fd)."""

    short: str  # dir, sd, fd: the agent is bacula-<short>, like the daemon in /usr/sbin
    # Where the daemon (the index-th, for storage daemons) is in a site: its configuration,
    # its port and the name of its working directory (BaculaSite.workdir).
    where: Callable[[BaculaSite, int], tuple[Path, int, str]]
    section: str  # a resource type of its configuration, to break the file with
    longdesc: tuple[str, ...]  # words its meta-data's longdesc holds (case aside)
    extra_params: Callable[[BaculaSite], dict[str, str]] = lambda _: {}  # beyond config
    depths: tuple[int, ...] = (0, 10, 20)  # the monitor depths its meta-data offers
    reloads: bool = False  # advertises reload and reload-agent
    as_bacula: bool = True  # started by hand with -u bacula -g bacula
    no_answer: str = "no answer"  # a depth-10 failure when the daemon does not answer
    optional: tuple[str, ...] = ("user", "group", "address", "port")  # may be set empty

    @property
    def name(self) -> str:
        return f"bacula-{self.short}"

    @property
    def deepest(self) -> int:
        return self.depths[-1]

    def __str__(self) -> str:
        return self.name

    def on(self, site: BaculaSite, index: int = 0) -> Daemon:
        return Daemon(self, site, index)


@dataclass(frozen=True)
class Daemon:
    """One daemon of a site (the `index`-th storage daemon), run through its agent."""

    agent: DaemonAgent
    site: BaculaSite
    index: int = 0

    @property
    def conf(self) -> Path:
        return self.agent.where(self.site, self.index)[0]

    @property
    def port(self) -> int:
        return self.agent.where(self.site, self.index)[1]

    @property
    def workdir(self) -> Path:
        return self.site.workdir(self.agent.where(self.site, self.index)[2])

    @property
    def binary(self) -> str:
        return self.site.binary(self.agent.name)

    def params(self, **extra: str) -> dict[str, str]:
        # The agents' defaults are Debian's: another install is named by its binary.
        own = {} if self.site.install == DEBIAN else {"binary": self.binary}
        return {
            **own,
            "config": str(self.conf),
            **self.agent.extra_params(self.site),
            "check_timeout": "2",
            **extra,
        }

    def pidfile(self) -> Path:
        return next(self.workdir.glob(f"{self.agent.name}.*.pid"))

    def pid(self) -> int:
        return int(self.pidfile().read_text().strip())

    def run(
        self, action: str, tmp: Path, *, params: dict[str, str] | None = None, **kw: object
    ) -> AgentRun:
        return run_agent(
            self.agent.name,
            action,
            self.params(**(params or {})),
            rsctmp=tmp,
            **kw,  # type: ignore[arg-type]
        )

    def start(self, tmp: Path, **kw: object) -> None:
        result = self.run("start", tmp, **kw)  # type: ignore[arg-type]
        assert result.code == 0, result.stderr


DIRECTOR = DaemonAgent(
    short="dir",
    where=lambda site, _: (site.dir_conf, site.dir_port, "dir"),
    section="Director",
    longdesc=("reload tests the configuration", "depth 20 runs bconsole"),
    extra_params=lambda site: {
        "bconsole_config": str(site.console_conf),
        **({} if site.install == DEBIAN else {"bconsole": site.binary("bconsole")}),
    },
    reloads=True,
    no_answer="does not answer",
)
STORAGE = DaemonAgent(
    short="sd",
    where=lambda site, index: (site.sd_conf(index), site.sd_ports[index], f"sd{index}"),
    section="Device",
    longdesc=("no configuration reload",),
    optional=("user", "group", "address", "port", "archive_mounts"),
)
FILEDAEMON = DaemonAgent(
    short="fd",
    where=lambda site, _: (site.fd_conf, site.fd_port, "fd"),
    section="FileDaemon",
    longdesc=("no depth 20", "no reload"),
    depths=(0, 10),  # no depth 20: it falls back to 10
    as_bacula=False,  # the file daemon runs as root
)
DAEMON_AGENTS = (DIRECTOR, STORAGE, FILEDAEMON)
