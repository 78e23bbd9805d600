"""A throwaway OpenSSH server with its own host key, user key and known_hosts (tests, lab)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

SSHD = "/usr/sbin/sshd"
SSH_KEYGEN = "/usr/bin/ssh-keygen"
SSH = "/usr/bin/ssh"
UNSHARE = "/usr/bin/unshare"
# sshd refuses to start without its privilege separation directory, which the ssh
# package's service unit would create; there is no service manager here.
PRIVSEP_DIR = "/run/sshd"


class SshdError(RuntimeError):
    """The sandbox sshd could not be prepared or did not come up."""


@dataclass(frozen=True)
class KeyPair:
    """An ed25519 key pair on disk."""

    private: str
    public: str  # the one-line public key, "ssh-ed25519 AAAA... comment"


def make_key(path: str, comment: str = "bacula-ha-sandbox") -> KeyPair:
    """Create an unencrypted ed25519 key at `path` (and `path`.pub)."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path + ".pub")
    subprocess.run(
        [SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", path],
        check=True,
        stdin=subprocess.DEVNULL,
        capture_output=True,
    )
    with open(path + ".pub", encoding="ascii") as handle:
        return KeyPair(private=path, public=handle.read().strip())


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on `address` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class SshClient:
    """Everything an ssh client needs to reach one sandbox sshd, without ~/.ssh or /etc/ssh."""

    host: str
    port: int
    user: str
    identity: str
    known_hosts: str

    def options(self) -> list[str]:
        """ssh command-line options: use with `ssh <options> host` (or rsync -e)."""
        return [
            "-F",
            "/dev/null",
            "-p",
            str(self.port),
            "-l",
            self.user,
            "-i",
            self.identity,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
        ]

    def config_block(self, alias: str) -> str:
        """A `Host` block for an ssh_config file: `ssh -F FILE alias` then reaches this server."""
        return (
            f"Host {alias}\n"
            f"  HostName {self.host}\n"
            f"  Port {self.port}\n"
            f"  User {self.user}\n"
            f"  IdentityFile {self.identity}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {self.known_hosts}\n"
            "  StrictHostKeyChecking yes\n"
            "  BatchMode yes\n"
        )


def write_ssh_config(path: str, clients: dict[str, SshClient]) -> str:
    """Write an ssh_config with one `Host` block per alias; returns `path`."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("".join(c.config_block(a) for a, c in clients.items()))
    return path


@dataclass(frozen=True)
class SshdSetup:
    """The files of one sandbox sshd, written by `prepare`; `argv` starts it in the foreground."""

    workdir: str
    address: str
    port: int
    config: str
    host_key: KeyPair
    authorized_keys: str
    log: str
    argv: tuple[str, ...]

    def known_hosts_line(self, *names: str) -> str:
        """A known_hosts line for this server under `[address]:port` and any extra names."""
        hosts = [f"[{self.address}]:{self.port}", *(f"[{n}]:{self.port}" for n in names)]
        key = " ".join(self.host_key.public.split()[:2])
        return f"{','.join(hosts)} {key}\n"

    def client(self, identity: str, known_hosts: str, user: str = "root") -> SshClient:
        """A client description for this server (writes the known_hosts file if absent)."""
        if not os.path.exists(known_hosts):
            with open(known_hosts, "w", encoding="ascii") as handle:
                handle.write(self.known_hosts_line())
        return SshClient(self.address, self.port, user, identity, known_hosts)


def prepare(
    workdir: str,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    authorized_keys: Sequence[str] = (),
    quiet_shell: bool = False,
    extra_config: Sequence[str] = (),
) -> SshdSetup:
    """Write host key, authorized_keys and sshd_config under `workdir`.

    `quiet_shell` starts sshd in a private mount namespace where root's ~/.bashrc is an
    empty file: bash sources ~/.bashrc for every ssh command, and a developer's shell
    set-up (pyenv here) would otherwise add hundreds of milliseconds to each one.
    """
    os.makedirs(workdir, exist_ok=True)
    port = port or free_port(address)
    host_key = make_key(os.path.join(workdir, "ssh_host_ed25519_key"), "sandbox-host")
    authorized = os.path.join(workdir, "authorized_keys")
    with open(authorized, "w", encoding="ascii") as handle:
        handle.write("".join(k.strip() + "\n" for k in authorized_keys))
    log = os.path.join(workdir, "sshd.log")
    config = os.path.join(workdir, "sshd_config")
    lines = [
        f"ListenAddress {address}:{port}",
        f"HostKey {host_key.private}",
        f"AuthorizedKeysFile {authorized}",
        "PidFile none",
        "PermitRootLogin prohibit-password",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        # The key files live in a test's tmp dir, whose modes sshd must not judge.
        "StrictModes no",
        "PrintMotd no",
        "PrintLastLog no",
        "UseDNS no",
        # Tests and benchmarks open many connections at once (and multiplex over them).
        "MaxStartups 200",
        "MaxSessions 50",
        "LogLevel VERBOSE",
        "Subsystem sftp internal-sftp",
        *extra_config,
    ]
    with open(config, "w", encoding="ascii") as handle:
        handle.write("\n".join(lines) + "\n")
    argv: tuple[str, ...] = (SSHD, "-D", "-f", config, "-E", log)
    if quiet_shell:
        empty = os.path.join(workdir, "empty-bashrc")
        open(empty, "w").close()
        bashrc = os.path.expanduser("~root/.bashrc")
        script = 'mount --bind "$1" "$2" 2>/dev/null; shift 2; exec "$@"'
        argv = (
            UNSHARE,
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            script,
            "sh",
            empty,
            bashrc,
            *argv,
        )
    return SshdSetup(workdir, address, port, config, host_key, authorized, log, argv)


@dataclass
class RunningSshd:
    """A started sandbox sshd; `stop` (or the context manager) ends it by its pid."""

    setup: SshdSetup
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """End the server and every session it serves, as if the machine went away.

        sshd puts each connection in a session of its own, so its process group is not
        enough: the descendants are found through /proc before the listener goes.
        """
        sessions = descendants(self.process.pid)
        for pid in sessions:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Sessions run in their own process groups: end what is left of ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def pause(self) -> None:
        """Freeze the server and its open sessions (a machine that hangs: TCP is still
        accepted by the kernel, nothing answers)."""
        os.killpg(self.process.pid, signal.SIGSTOP)
        self._signal_sessions(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal_sessions(signal.SIGCONT)
        os.killpg(self.process.pid, signal.SIGCONT)

    def _signal_sessions(self, sig: int) -> None:
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children, ...), from /proc."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The parent pid is the second field after the parenthesised command name.
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        parents.setdefault(ppid, []).append(int(name))
    found: list[int] = []
    pending = [pid]
    while pending:
        for child in parents.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def start(setup: SshdSetup, timeout: float = 10.0) -> RunningSshd:
    """Start sshd and return once it answers with its SSH banner."""
    os.makedirs(PRIVSEP_DIR, mode=0o755, exist_ok=True)
    process = subprocess.Popen(
        list(setup.argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    running = RunningSshd(setup, process)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if process.poll() is not None:
            raise SshdError(f"sshd exited with {process.returncode}: {_tail(setup.log)}")
        if _banner(setup.address, setup.port):
            return running
        time.sleep(0.02)
    running.stop()
    raise SshdError(f"sshd on {setup.address}:{setup.port} did not answer in {timeout}s")


@contextlib.contextmanager
def sshd(
    workdir: str,
    *,
    address: str = "127.0.0.1",
    port: int | None = None,
    authorized_keys: Sequence[str] = (),
    quiet_shell: bool = False,
) -> Iterator[RunningSshd]:
    """prepare + start, stopped on exit even when the body fails."""
    running = start(
        prepare(
            workdir,
            address=address,
            port=port,
            authorized_keys=authorized_keys,
            quiet_shell=quiet_shell,
        )
    )
    try:
        yield running
    finally:
        running.stop()


def _banner(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5) as sock:
            return sock.recv(64).startswith(b"SSH-")
    except OSError:
        return False


def _tail(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return " | ".join(handle.read().strip().splitlines()[-3:])
    except OSError:
        return "(no log)"
