"""The Bacula network client against real 9.6 daemons: auth, rejection, stopped, no traces."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

try:  # tests/ as a package (with conftest.py) or as a plain directory
    from tests.fixtures_db import pg_catalog, pg_server
except ImportError:
    from fixtures_db import (  # type: ignore[no-redef,import-not-found]  # noqa: F401
        pg_catalog,
        pg_server,
    )

from bacula_ha.bacula import protocol
from bacula_ha.bacula.protocol import (
    AuthRejected,
    NoAnswer,
    ProtocolError,
    TLSRequired,
    bacula_base64,
    console_probe,
    director_probe,
)
from testkit.sandbox.bacula import BaculaSite, CatalogSettings
from testkit.sandbox.postgres import CatalogInfo, PostgresServer, free_port

ADDR = "127.0.0.1"

# -- pure functions ---------------------------------------------------------------------------


def test_base64_compatible_matches_bacula_test_vector() -> None:
    # src/lib/base64.c's own unit test (rnddata -> resb16).
    data = bytes.fromhex("a57da3c42ca008e932b9c784f6d3df4f")
    assert bacula_base64(data, compatible=True) == "pX2jxCygCOkyuceE9tPfTw"


def test_base64_default_has_the_sign_extension_quirk() -> None:
    assert bacula_base64(b"Man", compatible=False) == "TWFu"  # ASCII: no quirk
    assert bacula_base64(b"\xff") == "/D"  # (int8_t)0xff: 0x3f then the 2 low bits unshifted
    assert bacula_base64(b"\xff", compatible=True) == "/w"
    # A byte >= 0x80 after leftover bits: its sign extension overwrites them with ones.
    assert bacula_base64(b"\x00\x80") == "A4A"
    assert bacula_base64(b"\x00\x80", compatible=True) == "AIA"


def test_password_key_is_md5_hex_of_the_clear_text() -> None:
    assert protocol.password_key("secret") == b"5ebe2294ecd0e0f08eab7690d2a6ee69"


def test_lz4_block_literals_and_overlapping_match() -> None:
    # token 0x33: 3 literals "abc", then a match of 3+4=7 bytes at offset 3 (overlapping),
    # then a final literals-only sequence "!".
    block = bytes([0x33]) + b"abc" + bytes([3, 0]) + bytes([0x10]) + b"!"
    assert protocol._lz4_block(block) == b"abcabcabca!"
    with pytest.raises(ProtocolError):
        protocol._lz4_block(bytes([0x30]) + b"ab")  # truncated literals
    with pytest.raises(ProtocolError):
        protocol._lz4_block(bytes([0x10]) + b"a" + bytes([9, 0]))  # offset beyond output


def test_closed_port_is_no_answer() -> None:
    port = free_port()
    start = time.monotonic()
    with pytest.raises(NoAnswer):
        console_probe(ADDR, port, "pw", timeout=2.0)
    with pytest.raises(NoAnswer):
        director_probe(ADDR, port, "x-dir", "pw", timeout=2.0, daemon="sd")
    assert time.monotonic() - start < 1.0


def test_silent_listener_is_no_answer_within_timeout() -> None:
    # A socket that accepts (in the kernel backlog) but never answers, like a wedged daemon.
    with socket.socket() as listener:
        listener.bind((ADDR, 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(NoAnswer):
            director_probe(ADDR, port, "x-dir", "pw", timeout=0.5, daemon="fd")
        assert 0.45 <= time.monotonic() - start < 1.0


def _send(conn: socket.socket, text: str) -> None:
    """One Bacula packet: a 4-byte length, then the text."""
    conn.sendall(struct.pack(">i", len(text)) + text.encode())


def _recv(conn: socket.socket) -> str:
    (size,) = struct.unpack(">i", conn.recv(4, socket.MSG_WAITALL))
    return conn.recv(size, socket.MSG_WAITALL).decode().rstrip("\0")


@contextlib.contextmanager
def _fake_daemon(script: Callable[[socket.socket], None]) -> Iterator[int]:
    """A one-session peer on loopback that plays `script` on the connection; its port."""
    with socket.socket() as listener:
        listener.bind((ADDR, 0))
        listener.listen(1)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                script(conn)
                conn.recv(64)  # the client's hang-up

        server = threading.Thread(target=serve, daemon=True)
        server.start()
        yield listener.getsockname()[1]
        server.join(2.0)


def test_a_daemon_that_requires_tls_answered_so_it_is_alive() -> None:
    # The challenge a daemon with `TLS Require = yes` and certificates sends (ssl=2): it
    # answered, so a depth-10 check counts it alive (AuthRejected), and the director agent
    # knows to take bconsole for its commands (TLSRequired).
    def script(conn: socket.socket) -> None:
        _recv(conn)  # the hello
        _send(conn, "auth cram-md5 <123.456@x-dir> ssl=2\n")

    with _fake_daemon(script) as port, pytest.raises(TLSRequired) as caught:
        console_probe(ADDR, port, "pw", timeout=2.0)
    assert isinstance(caught.value, AuthRejected)
    assert "requires TLS" in str(caught.value)


@pytest.mark.parametrize(
    ("daemon", "refusal"),
    [
        (
            "fd",
            'Authorization problem: DIR "c:127.0.0.1" did not advertise required TLS support.\n',
        ),
        ("dir", "1999 You are not authorized.\n"),
    ],
)
def test_a_daemon_that_requires_tls_psk_refuses_after_authentication(
    daemon: str, refusal: str
) -> None:
    # 11.0 and later with `TLS Require = yes` and no certificate (TLS-PSK or nothing): the
    # challenge says ssl=0, both passwords are proven, then the session is refused (the fd and
    # sd say why, the director only "sorry"). Alive, and TLSRequired: bconsole goes further.
    key = protocol.password_key("pw")

    def script(conn: socket.socket) -> None:
        _recv(conn)  # the hello
        _send(conn, "auth cram-md5 <123.456@x-daemon> ssl=0\n")
        _recv(conn)  # our answer: taken as right
        _send(conn, "1000 OK auth\n")
        challenge = _recv(conn).split()[2]  # auth cram-md5 <...> ssl=0
        _send(conn, bacula_base64(protocol._digest(challenge, key)))
        assert _recv(conn) == "1000 OK auth\n"
        _send(conn, refusal)

    with _fake_daemon(script) as port, pytest.raises(TLSRequired) as caught:
        if daemon == "dir":
            console_probe(ADDR, port, "pw", timeout=2.0)
        else:
            director_probe(ADDR, port, "x-dir", "pw", 2.0, "fd")
    assert "TLS" in str(caught.value)


# -- real daemons -----------------------------------------------------------------------------


@dataclass
class Daemons:
    site: BaculaSite
    pids: dict[str, int]

    @property
    def logs(self) -> Path:
        return self.site.root / "log"

    def security_alerts(self) -> list[str]:
        lines: list[str] = []
        for log in sorted(self.logs.glob("*.log")):
            lines += [x for x in log.read_text(errors="replace").splitlines() if "Security" in x]
        return lines

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.logs.glob("*.log")))

    def bconsole(self, command: str) -> str:
        out = subprocess.run(
            ["/usr/sbin/bconsole", "-c", str(self.site.console_conf), "-u", "10"],
            input=command + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return out.stdout


def _wait_answering(
    key: str, probe: Callable[[], str], pidfile: Path, pids: dict[str, int], timeout: float = 30
) -> None:
    # Poll with the probe itself: a bare connect-and-close would be exactly the kind of
    # half-open session that makes a daemon log a security alert.  The pid is recorded
    # as soon as it is known, so that teardown stops a daemon that never answers.
    deadline = time.monotonic() + timeout
    while True:
        if key not in pids and pidfile.exists():
            with contextlib.suppress(ValueError, IndexError):
                pids[key] = int(pidfile.read_text().split()[0])
        if key in pids:
            with contextlib.suppress(NoAnswer):
                probe()
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"daemon of {pidfile} did not come up")
        time.sleep(0.05)


# /proc/net/tcp states in which the listening side has not closed its end yet.
_HELD = {"01": "ESTABLISHED", "03": "SYN_RECV", "08": "CLOSE_WAIT"}


def open_sessions(ports: list[int]) -> list[str]:
    """Connections to these local ports that the daemon has not closed yet."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as handle:
            for line in list(handle)[1:]:
                fields = line.split()
                port = int(fields[1].rsplit(":", 1)[1], 16)
                if port in ports and fields[3] in _HELD:
                    found.append(f"port {port} {_HELD[fields[3]]}")
    return found


def _stop(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def _running_site(catalog: CatalogInfo, name: str) -> Iterator[Daemons]:
    """A director, a storage daemon and a file daemon on free ports, stopped at the end."""
    root = Path(tempfile.mkdtemp(prefix="bacula-ha-proto-", dir="/tmp"))
    root.chmod(0o755)
    site = BaculaSite(
        root,
        catalog=CatalogSettings(
            dbname=catalog.db_name,
            user=catalog.db_user,
            password=catalog.db_password,
            address=ADDR,
            port=catalog.port,
        ),
        dir_port=free_port(),
        fd_port=free_port(),
        sd_ports=(free_port(),),
        name=name,
    ).write()
    pids: dict[str, int] = {}
    try:
        runs = {
            "dir": (["/usr/sbin/bacula-dir", "-c", str(site.dir_conf)], site.dir_port),
            "sd": (["/usr/sbin/bacula-sd", "-c", str(site.sd_conf(0))], site.sd_ports[0]),
            "fd": (["/usr/sbin/bacula-fd", "-c", str(site.fd_conf)], site.fd_port),
        }
        probes: dict[str, Callable[[], str]] = {
            "dir": lambda: console_probe(ADDR, site.dir_port, site.dir_password, 2),
            "sd": lambda: director_probe(
                ADDR, site.sd_ports[0], site.dir_name(), site.sd_password, 2, "sd"
            ),
            "fd": lambda: director_probe(
                ADDR, site.fd_port, site.dir_name(), site.fd_password, 2, "fd"
            ),
        }
        names = {"dir": "bacula-dir", "sd": "bacula-sd", "fd": "bacula-fd"}
        workdirs = {"dir": site.workdir("dir"), "sd": site.workdir("sd0"), "fd": site.workdir("fd")}
        for key, (argv, port) in runs.items():
            # The file daemon runs as root, as Debian's unit does (it must read every file).
            drop = [] if key == "fd" else ["-u", "bacula", "-g", "bacula"]
            subprocess.run([*argv, *drop], check=True, timeout=30)
            pidfile = workdirs[key] / f"{names[key]}.{port}.pid"
            _wait_answering(key, probes[key], pidfile, pids)
        yield Daemons(site, pids)
    finally:
        for pid in pids.values():
            _stop(pid)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def daemons(pg_server: PostgresServer, pg_catalog: CatalogInfo) -> Iterator[Daemons]:
    """Daemons that only ever see good probes: their logs must stay free of alerts."""
    with _running_site(pg_catalog, "sandbox") as running:
        yield running


@pytest.fixture(scope="module")
def noisy_daemons(pg_server: PostgresServer, pg_catalog: CatalogInfo) -> Iterator[Daemons]:
    """Daemons for wrong passwords and SIGSTOP: these leave (expected) alerts behind."""
    with _running_site(pg_catalog, "noisy") as running:
        yield running


def test_console_probe_authenticates_and_runs_a_command(daemons: Daemons) -> None:
    site = daemons.site
    greeting = console_probe(ADDR, site.dir_port, site.dir_password, timeout=5)
    assert greeting.startswith(f"1000 OK: 103 {site.dir_name()} Version: 9.6")
    out = console_probe(ADDR, site.dir_port, site.dir_password, timeout=5, command="version")
    assert f"{site.dir_name()} Version: 9.6" in out
    out = console_probe(ADDR, site.dir_port, site.dir_password, 5, command=".status dir running")
    assert "Running Jobs:" in out and "No Jobs running." in out
    assert out.count("Console connected") == 1  # this very session


def test_interactive_command_is_protocol_error_and_ends_cleanly(daemons: Daemons) -> None:
    site = daemons.site
    with pytest.raises(ProtocolError, match="asks for input") as caught:
        console_probe(ADDR, site.dir_port, site.dir_password, 5, command="status")
    assert not isinstance(caught.value, NoAnswer | AuthRejected)
    out = console_probe(ADDR, site.dir_port, site.dir_password, 5, command=".status dir running")
    assert out.count("Console connected") == 1  # the prompting session is gone


def test_console_probe_decodes_compressed_answers(daemons: Daemons) -> None:
    # Announcing a console version (as bconsole does: 100) makes the director LZ4-compress
    # every answer longer than 20 bytes: the long `status dir` output exercises the decoder.
    site = daemons.site
    plain = console_probe(ADDR, site.dir_port, site.dir_password, 5, command="status dir")
    packed = protocol._console(
        ADDR, site.dir_port, site.dir_password, 5, "*UserAgent*", "status dir", 100
    )
    assert "Daemon started" in packed
    assert packed.splitlines()[:2] == plain.splitlines()[:2]


def test_director_probe_authenticates_to_sd_and_fd(daemons: Daemons) -> None:
    site = daemons.site
    sd = director_probe(ADDR, site.sd_ports[0], site.dir_name(), site.sd_password, 5, "sd")
    assert re.fullmatch(r"3000 OK Hello \d+", sd)
    fd = director_probe(ADDR, site.fd_port, site.dir_name(), site.fd_password, 5, "fd")
    assert re.fullmatch(r"2000 OK Hello \d+", fd)


def test_probes_leave_no_sessions_and_no_security_alerts(daemons: Daemons) -> None:
    site = daemons.site
    timings: list[float] = []
    for _ in range(5):
        start = time.monotonic()
        console_probe(ADDR, site.dir_port, site.dir_password, 5, command=".status dir running")
        timings.append(time.monotonic() - start)
        director_probe(ADDR, site.sd_ports[0], site.dir_name(), site.sd_password, 5, "sd")
        director_probe(ADDR, site.fd_port, site.dir_name(), site.fd_password, 5, "fd")
    start = time.monotonic()
    console_probe(ADDR, site.dir_port, site.dir_password, 5)
    bare = time.monotonic() - start
    print(
        f"\nconsole probe with .status dir running: min {min(timings) * 1000:.1f} ms, "
        f"max {max(timings) * 1000:.1f} ms; auth only: {bare * 1000:.1f} ms"
    )
    status = daemons.bconsole("status dir")
    connected = [x for x in status.splitlines() if "Console connected" in x]
    assert len(connected) == 1, status  # bconsole itself, nothing of ours lingers
    # A daemon logs what it has to say about a session before it closes its end: once no
    # session is open on its port, the log holds everything about our probes.
    ports = [site.dir_port, site.sd_ports[0], site.fd_port]
    deadline = time.monotonic() + 10
    while open_sessions(ports):
        assert time.monotonic() < deadline, f"sessions still open: {open_sessions(ports)}"
        time.sleep(0.02)
    # These daemons only ever saw good probes (this module's other tests included): their
    # logs must hold no alert and no complaint at all.
    assert daemons.security_alerts() == []
    log = daemons.log_text()
    assert not re.search(r"(?i)error|fatal|alert|authenticat|connection", log), log


def test_wrong_password_is_auth_rejected(noisy_daemons: Daemons) -> None:
    site = noisy_daemons.site
    start = time.monotonic()
    with pytest.raises(AuthRejected):
        console_probe(ADDR, site.dir_port, "wrong", timeout=5)
    with pytest.raises(AuthRejected):
        director_probe(ADDR, site.sd_ports[0], site.dir_name(), "wrong", 5, "sd")
    with pytest.raises(AuthRejected):
        director_probe(ADDR, site.fd_port, site.dir_name(), "wrong", 5, "fd")
    with pytest.raises(AuthRejected):  # an unknown named console
        console_probe(ADDR, site.dir_port, site.dir_password, 5, console_name="nobody")
    # The daemons answer "1999 ..." at once and only sleep afterwards.
    assert time.monotonic() - start < 2.0


def test_unknown_director_name_is_auth_rejected(noisy_daemons: Daemons) -> None:
    # The storage daemon waits 5 s before it hangs up on an unknown director.
    site = noisy_daemons.site
    with pytest.raises(AuthRejected):
        director_probe(ADDR, site.sd_ports[0], "stranger-dir", site.sd_password, 8, "sd")
    with pytest.raises(NoAnswer):  # with a shorter timeout it cannot be told from a hang
        director_probe(ADDR, site.sd_ports[0], "stranger-dir", site.sd_password, 1, "sd")


@pytest.mark.parametrize("which", ["dir", "sd", "fd"])
def test_stopped_daemon_is_no_answer_within_timeout(noisy_daemons: Daemons, which: str) -> None:
    site = noisy_daemons.site
    pid = noisy_daemons.pids[which]

    def probe(timeout: float) -> str:
        if which == "dir":
            return console_probe(ADDR, site.dir_port, site.dir_password, timeout)
        if which == "sd":
            return director_probe(
                ADDR, site.sd_ports[0], site.dir_name(), site.sd_password, timeout, "sd"
            )
        return director_probe(ADDR, site.fd_port, site.dir_name(), site.fd_password, timeout, "fd")

    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with pytest.raises(NoAnswer):
            probe(1.0)
        elapsed = time.monotonic() - start
        assert 0.95 <= elapsed < 1.5
    finally:
        os.kill(pid, signal.SIGCONT)
    assert probe(10)  # resumed, it answers again
