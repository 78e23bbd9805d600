"""Fixtures for the confsync tests: two real sshd peers on loopback, each with its own root."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.bacula import confsync
from bacula_ha.bacula.confsync import remote, replace
from bacula_ha.ocf.deadline import Deadline
from testkit.sandbox import sshd

from .tiers import slow_fixture

__all__ = ["Lab", "make_tree", "sync_lab", "tree_state"]

PEERS = (("p1", "127.0.0.2"), ("p2", "127.0.0.3"))


@dataclass(frozen=True)
class Lab:
    """A source tree and two peers reachable over real ssh, each with a separate root."""

    tmp: Path
    source: Path  # the synced path on the source node (…/src/etc/bacula)
    roots: dict[str, Path]  # peer name -> the directory standing for its "/"
    servers: dict[str, sshd.RunningSshd]
    ssh_config: Path
    identity: str
    mux_dir: str

    def peer_path(self, peer: str, path: Path | None = None) -> Path:
        """Where `path` (default: the source tree) lives on `peer`."""
        return Path(str(self.roots[peer]) + str(path or self.source))

    def config(self, **overrides: object) -> confsync.SyncConfig:
        cfg = confsync.SyncConfig(
            paths=(str(self.source),),
            peers=tuple(confsync.Peer(n, n) for n, _ in PEERS),
            ssh_config=str(self.ssh_config),
            peer_root=str(self.tmp / "%n-root"),
            check="none",
            connect_timeout=3,
            mux_dir=self.mux_dir,
        )
        return replace(cfg, **overrides)  # type: ignore[arg-type]

    def params(self, **overrides: str) -> dict[str, str]:
        """The same set-up as agent parameters."""
        params = {
            "paths": str(self.source),
            "targets": " ".join(n for n, _ in PEERS),
            "ssh_config": str(self.ssh_config),
            "peer_root": str(self.tmp / "%n-root"),
            "config_check": "none",
            "connect_timeout": "3",
        }
        params.update(overrides)
        return params


def make_tree(root: Path, files: int = 20, content: str = "v1") -> None:
    """A small Bacula-like tree: a top file, a password file, a clients directory."""
    (root / "clients").mkdir(parents=True, exist_ok=True)
    (root / "bacula-dir.conf.inc").write_text(f"# {content}\n")
    secret = root / "passwords.conf"
    secret.write_text(f"Password = {content}\n")
    # The bacula group reads password files: group and mode must survive the copy.
    os.chown(secret, 0, _bacula_gid())
    secret.chmod(0o640)
    for i in range(files):
        (root / "clients" / f"c{i:04d}.conf").write_text(f"Client {{ Name = c{i} }} # {content}\n")


def _bacula_gid() -> int:
    import grp

    try:
        return grp.getgrnam("bacula").gr_gid
    except KeyError:
        return 0


def tree_state(path: Path) -> dict[str, tuple[str, bytes | None]]:
    """Each entry's metadata key and (for files) content: equal states mean equal trees."""
    entries = remote.walk(str(path), list(confsync.DEFAULT_EXCLUDES)) or {}
    out: dict[str, tuple[str, bytes | None]] = {}
    for rel, key in entries.items():
        full = path if rel == "." else path / rel
        data = full.read_bytes() if key.startswith("f") else None
        # The top directory's own key is left out: its parent (and so its name) differs.
        out[rel] = ("top" if rel == "." else key, data)
    return out


def sync_lab(lab: Lab, cfg: confsync.SyncConfig, state: dict[str, object]) -> confsync.SyncReport:
    from bacula_ha.ocf.log import Logger

    log = Logger("confsync-test", to_stderr=True, debug_enabled=True)
    return confsync.sync(cfg, Deadline.after(60), log, state)  # type: ignore[arg-type]


@pytest.fixture
@slow_fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    key = sshd.make_key(str(tmp_path / "id_ed25519"))
    # ssh control sockets must fit in a sockaddr_un (108 bytes): pytest's tmp paths do not.
    mux_dir = tempfile.mkdtemp(prefix="bcs-mux-", dir="/tmp")
    servers: dict[str, sshd.RunningSshd] = {}
    clients: dict[str, sshd.SshClient] = {}
    roots: dict[str, Path] = {}
    try:
        for name, address in PEERS:
            setup = sshd.prepare(
                str(tmp_path / f"{name}-sshd"),
                address=address,
                authorized_keys=[key.public],
                quiet_shell=True,
            )
            servers[name] = sshd.start(setup)
            clients[name] = setup.client(key.private, str(tmp_path / f"{name}-known_hosts"))
            roots[name] = tmp_path / f"{name}-root"
            roots[name].mkdir()
        config = sshd.write_ssh_config(str(tmp_path / "ssh_config"), clients)
        source = tmp_path / "src" / "etc" / "bacula"
        make_tree(source)
        yield Lab(tmp_path, source, roots, servers, Path(config), key.private, mux_dir)
    finally:
        for name, server in servers.items():
            cfg = confsync.SyncConfig(
                paths=(), peers=(), ssh_config=str(tmp_path / "ssh_config"), mux_dir=mux_dir
            )
            with contextlib.suppress(Exception):
                confsync.close_connection(cfg, confsync.Peer(name, name), Deadline.after(5))
            server.stop()
        shutil.rmtree(mux_dir, ignore_errors=True)
