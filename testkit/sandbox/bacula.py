"""Bacula configurations for throwaway daemons: a director, storage and file daemons, a console.

A site belongs to one Bacula install (`bacula_ha.bacula.layout`: Debian's 9.6 by default, or
a bacula.org-style prefix such as the 13.0.3 that scripts/build-bacula makes): its programs,
its query file and the driver its Catalog resource names come from there.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from bacula_ha.bacula.layout import DEBIAN, Layout

from .tls import Certificates

# What failover needs (`bacula-ha check`, docs/check.md): keepalives that notice a peer which
# moved within seconds, and backup jobs that are rescheduled after a storage daemon failover
# (the sandbox's failovers take 5-10 s: the first retry, 30 s later, finds the daemon back).
HEARTBEAT = "10 seconds"
# Debian's bacula-common puts the console's query file here; bacula.org's layout keeps it
# among the install's scripts.
DEBIAN_QUERY_FILE = "/etc/bacula/scripts/query.sql"
# How a site's daemons and console secure their connections (BaculaSite.tls): "default" writes
# no TLS directive (9.6: clear text; 11.0 and later: TLS-PSK, negotiated); "psk-off" writes
# `TLS PSK Enable = no` in every resource that talks (11.0 and later: 9.6 has no TLS-PSK);
# "psk-require" writes `TLS Require = yes` there and no certificate: TLS-PSK or nothing (11.0
# and later); "cert" requires certificate TLS everywhere, with BaculaSite.certificates.
TLS_MODES = ("default", "psk-off", "psk-require", "cert")


def _password() -> str:
    return secrets.token_urlsafe(18)


@dataclass(frozen=True)
class CatalogSettings:
    """Where the director's catalog lives (PostgreSQL by default)."""

    dbname: str = "bacula"
    user: str = "bacula"
    password: str = "bacula-catalog-pw"
    address: str = "127.0.0.1"
    port: int = 5432
    name: str = "MyCatalog"
    # DB Driver: "postgresql" or "mysql". Debian's director is built with one backend and
    # needs none ("": not written). A 13.0.3 build with both links the director to the one
    # its install selected (libbaccats-13.0.3.so: PostgreSQL here) and only records the name
    # (docs/upgrade.md); a site on such an install says "postgresql" when none is given.
    driver: str = ""


@dataclass(frozen=True)
class BaculaSite:
    """One director with its storage daemon(s), a file daemon and a console, under `root`.

    Every daemon gets its own working and pid directory so that several sites (or several
    daemons of one kind) run side by side on one machine.
    """

    root: Path
    catalog: CatalogSettings = CatalogSettings()
    install: Layout = DEBIAN  # whose daemons, console and query file
    address: str = "127.0.0.1"
    dir_port: int = 19101
    fd_port: int = 19102
    sd_ports: tuple[int, ...] = (19103,)
    fd_address: str | None = None  # where the director reaches the file daemon
    sd_addresses: tuple[str, ...] = ()  # where the director/fd reach each storage daemon
    devices_per_sd: int = 1
    name: str = "sandbox"
    dir_password: str = field(default_factory=_password)
    sd_password: str = field(default_factory=_password)
    fd_password: str = field(default_factory=_password)
    tls: str = "default"  # one of TLS_MODES
    certificates: Certificates | None = None  # the CA, certificate and key of tls="cert"

    def __post_init__(self) -> None:
        if self.tls not in TLS_MODES:
            raise ValueError(f"tls must be one of {', '.join(TLS_MODES)}, not {self.tls!r}")
        if self.tls == "cert" and self.certificates is None:
            raise ValueError('tls="cert" needs certificates (sandbox.tls.make_certificates)')
        if self.tls.startswith("psk-") and self.install == DEBIAN:
            raise ValueError("Bacula 9.6 has no TLS-PSK")

    # -- paths ---------------------------------------------------------------------------
    def binary(self, program: str) -> str:
        """A program of the site's install: bacula-dir, bacula-sd, bacula-fd, bconsole..."""
        return self.install.tool(program)

    @property
    def query_file(self) -> str:
        if self.install == DEBIAN:
            return DEBIAN_QUERY_FILE
        return os.path.join(self.install.scripts, "query.sql")

    @property
    def db_driver(self) -> str:
        """What the Catalog resource's DB Driver says ("" when it says nothing)."""
        if self.catalog.driver or self.install == DEBIAN:
            return self.catalog.driver
        return "postgresql"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def dir_conf(self) -> Path:
        return self.etc / "bacula-dir.conf"

    @property
    def fd_conf(self) -> Path:
        return self.etc / "bacula-fd.conf"

    @property
    def console_conf(self) -> Path:
        return self.etc / "bconsole.conf"

    def sd_conf(self, index: int = 0) -> Path:
        return self.etc / (f"bacula-sd{index}.conf" if index else "bacula-sd.conf")

    def workdir(self, daemon: str) -> Path:
        return self.root / "work" / daemon

    def archive_dir(self, sd: int = 0, device: int = 0) -> Path:
        return self.root / "archive" / f"sd{sd}" / f"dev{device}"

    @property
    def restore_dir(self) -> Path:
        return self.root / "restore"

    @property
    def data_dir(self) -> Path:
        """What the sandbox's backup job saves."""
        return self.root / "data"

    def dir_name(self) -> str:
        return f"{self.name}-dir"

    def sd_name(self, index: int = 0) -> str:
        return f"{self.name}-sd{index}"

    # -- writing -------------------------------------------------------------------------
    def write(self, owner: str | None = "bacula") -> BaculaSite:
        """Write every configuration file and create the directories; return self."""
        dirs = [self.etc, self.restore_dir, self.data_dir, self.root / "log"]
        dirs += [self.workdir(d) for d in ("dir", "fd", *self._sd_keys())]
        dirs += [
            self.archive_dir(s, d)
            for s in range(len(self.sd_ports))
            for d in range(self.devices_per_sd)
        ]
        for path in dirs:
            path.mkdir(parents=True, exist_ok=True)
        self.dir_conf.write_text(self._director())
        self.fd_conf.write_text(self._file_daemon())
        self.console_conf.write_text(self._console())
        for index, port in enumerate(self.sd_ports):
            self.sd_conf(index).write_text(self._storage(index, port))
        (self.data_dir / "hello.txt").write_text("hello from the sandbox\n")
        for conf in self.etc.iterdir():
            conf.chmod(0o640)
        if owner is not None:
            import grp
            import pwd

            uid, gid = pwd.getpwnam(owner).pw_uid, grp.getgrnam(owner).gr_gid
            os.chown(self.root, uid, gid)
            for path in [*dirs, *self.etc.iterdir()]:
                os.chown(path, 0 if path.parent == self.etc else uid, gid)
                for parent in path.parents:
                    if parent == self.root:
                        break
                    os.chown(parent, uid, gid)
        return self

    def _sd_keys(self) -> list[str]:
        return [f"sd{i}" for i in range(len(self.sd_ports))]

    def _tls(self, server: bool = False) -> str:
        """The TLS directives of one resource that talks (`server`: one that others connect
        to, and that then checks their certificates), each line indented, or ""."""
        if self.tls == "psk-off":
            return "  TLS PSK Enable = no\n"
        if self.tls == "psk-require":
            return "  TLS Require = yes\n"
        if self.tls != "cert" or self.certificates is None:
            return ""
        c = self.certificates
        lines = [
            "TLS Enable = yes",
            "TLS Require = yes",
            f'TLS CA Certificate File = "{c.ca}"',
            f'TLS Certificate = "{c.certificate}"',
            f'TLS Key = "{c.key}"',
        ]
        if server:
            lines.append("TLS Verify Peer = yes")
        return "".join(f"  {line}\n" for line in lines)

    def _messages(self, name: str) -> str:
        log = self.root / "log" / f"{name}.log"
        return f'Messages {{\n  Name = Standard\n  append = "{log}" = all, !skipped\n}}\n'

    def _director(self) -> str:
        c = self.catalog
        driver = f'  dbdriver = "{self.db_driver}"\n' if self.db_driver else ""
        fd_addr = self.fd_address or self.address
        storages = "".join(
            f"""Storage {{
  Name = {self.sd_name(i)}
  Address = {self.sd_addresses[i] if i < len(self.sd_addresses) else self.address}
  SDPort = {port}
  Password = "{self.sd_password}"
  Device = {self.sd_name(i)}-dev0
  Media Type = File{i}
  Maximum Concurrent Jobs = 10
  Heartbeat Interval = {HEARTBEAT}
{self._tls()}}}
"""
            for i, port in enumerate(self.sd_ports)
        )
        return f"""# Written by testkit.sandbox: a throwaway director.
Director {{
  Name = {self.dir_name()}
  DIRport = {self.dir_port}
  DirAddress = {self.address}
  QueryFile = "{self.query_file}"
  WorkingDirectory = "{self.workdir("dir")}"
  PidDirectory = "{self.workdir("dir")}"
  Maximum Concurrent Jobs = 10
  Password = "{self.dir_password}"
  Messages = Standard
  Heartbeat Interval = {HEARTBEAT}
{self._tls(server=True)}}}
Catalog {{
  Name = {c.name}
  dbname = "{c.dbname}"; dbuser = "{c.user}"; dbpassword = "{c.password}"
  DB Address = "{c.address}"; DB Port = {c.port}
{driver}}}
Client {{
  Name = {self.name}-fd
  Address = {fd_addr}
  FDPort = {self.fd_port}
  Catalog = {c.name}
  Password = "{self.fd_password}"
  File Retention = 30 days
  Job Retention = 6 months
  AutoPrune = yes
  Heartbeat Interval = {HEARTBEAT}
{self._tls()}}}
{storages}Pool {{
  Name = Default
  Pool Type = Backup
  Recycle = yes
  AutoPrune = yes
  Volume Retention = 365 days
  Maximum Volume Jobs = 1
  Label Format = "Vol-"
}}
FileSet {{
  Name = SandboxSet
  Include {{
    Options {{
      signature = MD5
    }}
    File = "{self.data_dir}"
  }}
}}
Job {{
  Name = BackupSandbox
  Type = Backup
  Level = Full
  Client = {self.name}-fd
  FileSet = SandboxSet
  Storage = {self.sd_name(0)}
  Pool = Default
  Messages = Standard
  Write Bootstrap = "{self.workdir("dir")}/%c.bsr"
  Spool Attributes = yes
  Reschedule On Error = yes
  Reschedule Interval = 30 seconds
  Reschedule Times = 5
}}
Job {{
  Name = RestoreSandbox
  Type = Restore
  Client = {self.name}-fd
  FileSet = SandboxSet
  Storage = {self.sd_name(0)}
  Pool = Default
  Messages = Standard
  Where = "{self.restore_dir}"
}}
{self._messages("dir")}"""

    def _storage(self, index: int, port: int) -> str:
        devices = "".join(
            f"""Device {{
  Name = {self.sd_name(index)}-dev{d}
  Media Type = File{index}
  Archive Device = "{self.archive_dir(index, d)}"
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
}}
"""
            for d in range(self.devices_per_sd)
        )
        key = f"sd{index}"
        return f"""# Written by testkit.sandbox: a throwaway storage daemon.
Storage {{
  Name = {self.sd_name(index)}
  SDPort = {port}
  SDAddress = {self.address}
  WorkingDirectory = "{self.workdir(key)}"
  PidDirectory = "{self.workdir(key)}"
  Maximum Concurrent Jobs = 20
  Heartbeat Interval = {HEARTBEAT}
{self._tls(server=True)}}}
Director {{
  Name = {self.dir_name()}
  Password = "{self.sd_password}"
{self._tls(server=True)}}}
{devices}{self._messages(key)}"""

    def _file_daemon(self) -> str:
        return f"""# Written by testkit.sandbox: a throwaway file daemon.
FileDaemon {{
  Name = {self.name}-fd
  FDport = {self.fd_port}
  FDAddress = {self.fd_address or self.address}
  WorkingDirectory = "{self.workdir("fd")}"
  Pid Directory = "{self.workdir("fd")}"
  Maximum Concurrent Jobs = 20
  Heartbeat Interval = {HEARTBEAT}
{self._tls()}}}
Director {{
  Name = {self.dir_name()}
  Password = "{self.fd_password}"
{self._tls(server=True)}}}
Messages {{
  Name = Standard
  director = {self.dir_name()} = all, !skipped, !restored
}}
"""

    def _console(self) -> str:
        return f"""Director {{
  Name = {self.dir_name()}
  DIRport = {self.dir_port}
  address = {self.address}
  Password = "{self.dir_password}"
{self._tls()}}}
"""
