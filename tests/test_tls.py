"""The daemon agents and `bacula-ha status` against Bacula as sites secure it.

- TLS-PSK turned off (13.0.3; 9.6 has no TLS-PSK): the agents' own client talks to the daemons
  as before, at every depth, and so does status. TLS-PSK required (`TLS Require = yes` without
  certificates): as with certificates below, except that bconsole needs only its password.
- Certificate TLS required everywhere (9.6.7 and 13.0.3, certificates made here with openssl):
  the agents' client, which speaks no TLS, gets the daemon's challenge (ssl=2), so depth 10
  counts the daemon alive, and a SIGSTOPped one still fails; the director's depth 20, its
  commands at stop and status go through bconsole, whose configuration carries the
  certificates; a bconsole that cannot authenticate is said so at depth 20, never a hang.

Each stack has its own catalog on the session's PostgreSQL (what its stop records for the next
start stays its own) and is started once per module by the agents.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import DEBIAN, Layout
from bacula_ha.status.collect import Component, running_jobs
from testkit.sandbox.bacula import BaculaSite, CatalogSettings
from testkit.sandbox.postgres import PostgresServer, free_port, make_basedir
from testkit.sandbox.tls import Certificates, make_certificates

from .fixtures_bacula import (
    DAEMON_AGENTS,
    DIRECTOR,
    FILEDAEMON,
    STORAGE,
    Daemon,
    DaemonAgent,
    bconsole,
    gone,
    kill_site_daemons,
    wait_gone,
)
from .fixtures_db import PG_PASSWORD
from .test_status_paths import cib_with

# 9.6.7 (Debian's) runs in the usual tiers; 13.0.3 in the bacula13 tier.
INSTALLS = [
    pytest.param("9.6", id="9.6.7"),
    pytest.param("13", id="13.0.3", marks=pytest.mark.bacula13),
]


class Stream:
    """A named pipe the site's backup saves (FileSet `readfifo = yes`). While held, every reader
    gets data in small chunks and no end of file: a backup runs until release(). Released, a
    reader gets its end of file at once."""

    def __init__(self, path: Path) -> None:
        os.mkfifo(path, 0o644)
        self.path = path
        self._held = threading.Event()
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream", daemon=True)
        self._thread.start()

    def hold(self) -> None:
        self._held.set()

    def release(self) -> None:
        self._held.clear()

    def close(self) -> None:
        self._closed.set()
        self._held.clear()
        self._thread.join(5)

    def _run(self) -> None:
        chunk = os.urandom(64 << 10)
        while not self._closed.is_set():
            try:  # non-blocking: fails (ENXIO) until a reader has the pipe open
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.02)
                continue
            try:
                while self._held.is_set():
                    try:
                        os.write(fd, chunk)
                    except BlockingIOError:
                        pass
                    except BrokenPipeError:
                        break  # the reader went away
                    time.sleep(0.05)
            finally:
                os.close(fd)  # the reader's end of file
            time.sleep(0.02)


@dataclass
class Stack:
    """A site whose director, storage daemon and file daemon run under their agents; its backup
    saves `stream` too, so that a test can keep a backup running."""

    site: BaculaSite
    rsctmp: Path
    stream: Stream

    @property
    def daemons(self) -> tuple[Daemon, Daemon, Daemon]:
        return DIRECTOR.on(self.site), STORAGE.on(self.site), FILEDAEMON.on(self.site)

    def status_cib_params(self) -> dict[str, str]:
        """The director resource's params as the CIB would hold them."""
        return {
            k: v
            for k, v in DIRECTOR.on(self.site).params().items()
            if k in ("binary", "config", "bconsole", "bconsole_config")
        }


def _install(request: pytest.FixtureRequest, which: str) -> Layout:
    if which == "13":
        return request.getfixturevalue("bacula13_install")  # type: ignore[no-any-return]
    return DEBIAN


@pytest.fixture(scope="module")
def certificates() -> Iterator[Certificates]:
    """A CA and a certificate for localhost/127.0.0.1, readable by the bacula group."""
    base = make_basedir("bacula", prefix="bacula-ha-tls-")
    try:
        yield make_certificates(base / "tls")
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _stack(
    pg_server: PostgresServer, install: Layout, name: str, rsctmp: Path, **site: object
) -> Iterator[Stack]:
    """A site on a catalog of its own, its sd0, fd and director started by the agents; at the
    end stopped by the agents (each stop must be 0), whatever is left killed, all removed."""
    db = f"bacula_{name}"
    info = pg_server.create_bacula_catalog(db, "bacula", PG_PASSWORD, install=install)
    root = make_basedir("bacula", prefix=f"bacula-ha-{name}-")
    stack = Stack(
        BaculaSite(
            root,
            install=install,
            name=name,
            catalog=CatalogSettings(dbname=db, user="bacula", password=PG_PASSWORD, port=info.port),
            dir_port=free_port(),
            fd_port=free_port(),
            sd_ports=(free_port(),),
            **site,  # type: ignore[arg-type]
        ).write(),
        rsctmp,
        Stream(root / "stream"),
    )
    # readfifo reads only a pipe the FileSet names itself.
    conf = stack.site.dir_conf
    data = f'    File = "{stack.site.data_dir}"\n'
    text = conf.read_text().replace("signature = MD5\n", "signature = MD5\n      readfifo = yes\n")
    conf.write_text(text.replace(data, f'{data}    File = "{stack.stream.path}"\n'))
    rsctmp.mkdir()
    try:
        d, sd, fd = stack.daemons
        for each in (sd, fd, d):
            each.start(rsctmp)
        yield stack
        stops = {each.agent.name: each.run("stop", rsctmp).code for each in (d, fd, sd)}
        assert stops == {"bacula-dir": 0, "bacula-fd": 0, "bacula-sd": 0}
    finally:
        stack.stream.close()
        wait_gone(kill_site_daemons(stack.site))
        shutil.rmtree(root, ignore_errors=True)
        pg_server.psql(f"DROP DATABASE IF EXISTS {db}", check=False)


@pytest.fixture(scope="module", params=INSTALLS)
def cert_stack(
    request: pytest.FixtureRequest,
    certificates: Certificates,
    pg_server: PostgresServer,
    ocf_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Certificate TLS required by every daemon and the console (TLS Require = yes)."""
    install = _install(request, request.param)
    tag = request.param.replace(".", "")
    rsctmp = tmp_path_factory.mktemp(f"tls{tag}") / "rsctmp"
    yield from _stack(
        pg_server, install, f"tlscert{tag}", rsctmp, tls="cert", certificates=certificates
    )


def _run_job(site: BaculaSite, *args: str) -> int:
    out = bconsole(site, "run job=BackupSandbox " + " ".join((*args, "yes")))
    assert "Job queued. JobId=" in out, out
    job_id = out.split("Job queued. JobId=")[1].split()[0]
    assert job_id.isdigit(), out
    return int(job_id)


def _wait_running(site: BaculaSite, job_id: int) -> None:
    deadline = time.monotonic() + 15
    while f" {job_id} " not in bconsole(site, "status dir").partition("Running Jobs:")[2]:
        assert time.monotonic() < deadline, f"JobId {job_id} never showed as running"
        time.sleep(0.2)


def _security_alerts(site: BaculaSite) -> list[str]:
    """The daemons' Security Alert lines so far (a console session first: the director writes
    the messages it queued outside a job when a console comes)."""
    bconsole(site, "messages")
    return [
        line
        for log in sorted((site.root / "log").glob("*.log"))
        for line in log.read_text().splitlines()
        if "Security Alert" in line
    ]


def _running_job(stack: Stack) -> int:
    """A backup that runs until stack.stream.release(), once it runs."""
    stack.stream.hold()
    job_id = _run_job(stack.site)
    _wait_running(stack.site, job_id)
    return job_id


# -- TLS-PSK turned off, or required (13.0.3) ---------------------------------------------------


@pytest.fixture(params=["psk-off", "psk-require"])
def psk_stack(
    request: pytest.FixtureRequest,
    bacula13_install: Layout,
    pg_server: PostgresServer,
    ocf_root: Path,
    tmp_path: Path,
) -> Iterator[Stack]:
    """TLS-PSK turned off in every daemon and the console, or required (`TLS Require = yes`
    without certificates: TLS-PSK or nothing)."""
    name = "tls" + request.param.replace("-", "")
    yield from _stack(pg_server, bacula13_install, name, tmp_path / "rsctmp", tls=request.param)


@pytest.mark.bacula13
def test_psk_every_depth_status_and_stop_with_a_running_job(
    psk_stack: Stack, tmp_path: Path
) -> None:
    """TLS-PSK off: the agents' own client does everything. TLS-PSK required: the agents read
    it in the daemons' configuration and stop at their challenge (alive at depth 10; going on
    would end in a refusal); the director's commands and status go through bconsole (TLS-PSK
    on its password)."""
    stack = psk_stack
    site = stack.site
    required = stack.site.tls == "psk-require"
    line = "TLS Require = yes" if required else "TLS PSK Enable = no"
    for conf in (site.dir_conf, site.sd_conf(), site.fd_conf, site.console_conf):
        assert line in conf.read_text() and "TLS Enable" not in conf.read_text(), conf
    for each in stack.daemons:
        for depth in (0, 10, 20):
            result = each.run("monitor", stack.rsctmp, depth=depth)
            assert result.code == 0, (each.agent.name, depth, result.stderr)
    # Knowing from the configuration that TLS is required, the checks stop at the challenge:
    # the director does not log the refused session as a security alert (two lines a check).
    assert _security_alerts(site) == []
    job_id = _running_job(stack)
    jobs = running_jobs(
        cib_with(stack.status_cib_params()), Component(rsc="dir1-dir", role="director")
    )
    assert jobs.startswith(f"JobId {job_id} "), jobs
    log = tmp_path / "ha.log"
    d = DIRECTOR.on(site)
    pid = d.pid()
    stop = d.run("stop", stack.rsctmp, extra_env={"HA_LOGFILE": str(log), "HA_debug": "1"})
    assert stop.code == 0, stop.stderr
    assert gone(pid)
    text = log.read_text()
    assert f"JobId {job_id} (BackupSandbox" in text and "stopped to be resumed" in text, text
    assert ("'stop' through bconsole" in text) == required, text
    stack.stream.release()


# -- certificate TLS required (9.6.7 and 13.0.3) ------------------------------------------------


def test_cert_sites_require_tls_everywhere(cert_stack: Stack) -> None:
    site = cert_stack.site
    for conf in (site.dir_conf, site.sd_conf(), site.fd_conf, site.console_conf):
        text = conf.read_text()
        assert "TLS Require = yes" in text and "TLS Key" in text, conf
        assert "PSK" not in text
    assert "TLS Verify Peer = yes" in site.dir_conf.read_text()


@pytest.mark.parametrize("agent", DAEMON_AGENTS, ids=str)
def test_cert_every_depth_passes(cert_stack: Stack, agent: DaemonAgent) -> None:
    d = agent.on(cert_stack.site)
    before = _security_alerts(cert_stack.site)
    for depth in (0, 10, 20):
        result = d.run("monitor", cert_stack.rsctmp, depth=depth)
        assert result.code == 0, (depth, result.stderr)
    assert _security_alerts(cert_stack.site) == before


@pytest.mark.parametrize("agent", DAEMON_AGENTS, ids=str)
def test_cert_sigstop_still_fails_depth_10(cert_stack: Stack, agent: DaemonAgent) -> None:
    """Counting a TLS challenge as alive is no false pass: a stopped daemon sends none."""
    d = agent.on(cert_stack.site)
    pid = d.pid()
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        hung = d.run("monitor", cert_stack.rsctmp, depth=10)
        took = time.monotonic() - start
    finally:
        os.kill(pid, signal.SIGCONT)
    assert hung.code == 1, hung.stderr
    assert d.agent.no_answer in hung.reason, hung.reason
    assert took < 2 + 3, took  # check_timeout=2, and the interpreter
    again = d.run("monitor", cert_stack.rsctmp, depth=10)
    assert again.code == 0, again.stderr


def _ends_T(site: BaculaSite, job_id: int, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while "jobstatus: T" not in (record := bconsole(site, f"llist jobid={job_id}")):
        assert time.monotonic() < deadline, record
        assert "jobstatus: f" not in record and "jobstatus: E" not in record, record
        time.sleep(0.3)


def test_cert_backup_ends_T(cert_stack: Stack) -> None:
    _ends_T(cert_stack.site, _run_job(cert_stack.site))


def test_cert_depth_20_says_bconsole_cannot_authenticate(cert_stack: Stack, tmp_path: Path) -> None:
    """A bconsole.conf without the certificates, or with another password: depth 10 passes
    (the director answers), depth 20 fails with a reason that says so, not a hang.

    On 13.0.3 a console without certificates still gets in by TLS-PSK (on by default, and
    `TLS Require` accepts it), unless its configuration turns TLS-PSK off."""
    site = cert_stack.site
    d = DIRECTOR.on(site)
    good = site.console_conf.read_text()
    no_certs = "".join(line + "\n" for line in good.splitlines() if "TLS" not in line)
    psk_only = site.install != DEBIAN
    if psk_only:
        conf = tmp_path / "bconsole-psk.conf"
        conf.write_text(no_certs)
        by_psk = d.run(
            "monitor", cert_stack.rsctmp, depth=20, params={"bconsole_config": str(conf)}
        )
        assert by_psk.code == 0, by_psk.stderr
        no_certs = no_certs.replace("}", "  TLS PSK Enable = no\n}")
    cases = {
        "no-certificates": (no_certs, "TLS"),
        "wrong-password": (good.replace(site.dir_password, "not-the-password"), "password"),
    }
    for label, (text, cause) in cases.items():
        conf = tmp_path / f"bconsole-{label}.conf"
        conf.write_text(text)
        params = {"bconsole_config": str(conf)}
        alive = d.run("monitor", cert_stack.rsctmp, depth=10, params=params)
        assert alive.code == 0, (label, alive.stderr)
        start = time.monotonic()
        deep = d.run("monitor", cert_stack.rsctmp, depth=20, params=params)
        took = time.monotonic() - start
        assert deep.code == 1, (label, deep.stderr)
        assert deep.reason.startswith("bconsole cannot authenticate to the director: "), (
            label,
            deep.reason,
        )
        assert cause in deep.reason.partition(": ")[2], (label, deep.reason)
        assert "answer" not in deep.reason, (label, deep.reason)
        # The director makes a console with a wrong password wait 5 s: within the bound.
        assert took < 10, (label, took)


def test_cert_status_and_stop_with_a_running_job(cert_stack: Stack, tmp_path: Path) -> None:
    """status lists the running job and the director's stop lists it, stops it and records
    it, all through bconsole; the stop is 0 and the next start brings the job back."""
    site = cert_stack.site
    job_id = _running_job(cert_stack)
    jobs = running_jobs(
        cib_with(cert_stack.status_cib_params()), Component(rsc="dir1-dir", role="director")
    )
    assert jobs.startswith(f"JobId {job_id} "), jobs
    d = DIRECTOR.on(site)
    pid = d.pid()
    log = tmp_path / "ha.log"
    env = {"HA_LOGFILE": str(log), "HA_debug": "1"}
    stop = d.run("stop", cert_stack.rsctmp, extra_env=env)
    assert stop.code == 0, stop.stderr
    assert gone(pid)
    text = log.read_text()
    assert "the director requires TLS: 'status' through bconsole" in text, text
    assert "'stop' through bconsole" in text, text
    assert f"JobId {job_id} (BackupSandbox" in text and "stopped to be resumed" in text, text
    # Started again, the director brings the job back through bconsole, and it ends: resumed
    # (9.6.7: the stop left it Incomplete) or re-run from the start (13.0.3: it was canceled).
    start = d.run("start", cert_stack.rsctmp, extra_env=env)
    assert start.code == 0, start.stderr
    text = log.read_text()
    assert "the director requires TLS: 'restart' through bconsole" in text, text
    back = text.partition(f"JobId {job_id} (BackupSandbox): ")[2].split(" (attempt")[0]
    assert back.startswith(("resumed as JobId ", "re-run from the start as JobId ")), text
    cert_stack.stream.release()
    _ends_T(site, int(back.rsplit(" ", 1)[1]))
