"""The Bacula stack in the lab: agents, Bacula configuration, catalog disk, client, site.

Our agents go into a lab-private OCF tree; every machine gets the same Bacula configuration;
the catalog is created on its loop disk; the client runs bacula-fd; the site's cluster
configuration comes from `bacula-ha generate` and is applied with pcs inside a node.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from bacula_ha.lab import baculaorg, machine
from bacula_ha.lab.baculaorg import Install
from bacula_ha.lab.config import DISK_LABEL_PREFIX, SUBNET, LabConfig
from bacula_ha.lab.errors import LabError

# What examples/lab-site.toml names; the Bacula configuration below must agree with it.
CATALOG_VIP = f"{SUBNET}.20"
DIR_VIP = f"{SUBNET}.21"
SD_VIP = f"{SUBNET}.22"
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_MOUNT = "/var/lib/postgresql"
PGDATA = "/var/lib/postgresql/15/lab"
SD_MOUNT = "/srv/bacula"
ARCHIVE = "/srv/bacula/volumes"
CLIENT_DATA = "/srv/data"
CLIENT_RESTORE = "/srv/restore"
DIR_NAME = "lab-dir"
CLIENT_FD = "client-fd"
BACKUP_JOB = "LabBackup"
RESTORE_JOB = "LabRestore"
# Private per machine as well: Bacula's configuration, state and logs, and /srv.
STACK_DIRS = ("/var/lib/bacula", "/var/log/bacula", "/srv")
# Debian's catalog scripts (the replicated catalog's); a lab's own Bacula: install_of(cfg).
SCRIPTS = Path(baculaorg.DEBIAN.layout.scripts)
# Keepalives that notice within seconds a peer that died with its node (bacula-ha check).
HEARTBEAT = "10 seconds"


def default_site() -> Path:
    """examples/lab-site.toml, as shipped with the package (or of this source tree)."""
    from ..data import data_path

    return data_path("examples", "lab-site.toml")


@dataclass(frozen=True)
class Secrets:
    """Passwords of the lab's Bacula daemons and catalog (kept in the lab directory, 0600)."""

    director: str
    storage: str
    filedaemon: str
    catalog: str

    @classmethod
    def load_or_create(cls, cfg: LabConfig) -> Secrets:
        path = cfg.lab_dir / "bacula-secrets"
        if path.exists():
            d, s, f, c = path.read_text().split()
            return cls(d, s, f, c)
        made = cls(*(secrets.token_hex(16) for _ in range(4)))
        path.write_text(f"{made.director} {made.storage} {made.filedaemon} {made.catalog}\n")
        path.chmod(0o600)
        return made


def director_conf(pw: Secrets, at: Install = baculaorg.DEBIAN) -> str:
    return f"""# bacula-ha lab: identical on every node; the director binds its VIP.
Director {{
  Name = {DIR_NAME}
  DIRport = 9101
  DirAddress = {DIR_VIP}
  QueryFile = "{at.query_file}"
  WorkingDirectory = "{at.working}"
  PidDirectory = "{at.pid_dir}"
  Maximum Concurrent Jobs = 10
  Password = "{pw.director}"
  Messages = Daemon
  Heartbeat Interval = {HEARTBEAT}
}}
Catalog {{
  Name = MyCatalog
  dbname = "bacula"
  dbuser = "bacula"
  dbpassword = "{pw.catalog}"
  DB Address = {CATALOG_VIP}
  DB Port = 5432
}}
Client {{
  Name = {CLIENT_FD}
  Address = {SUBNET}.100
  FDPort = 9102
  Catalog = MyCatalog
  Password = "{pw.filedaemon}"
  File Retention = 30 days
  Job Retention = 6 months
  AutoPrune = yes
  Heartbeat Interval = {HEARTBEAT}
}}
Storage {{
  Name = sd1
  Address = {SD_VIP}
  SDPort = 9103
  Password = "{pw.storage}"
  Device = FileStorage
  Media Type = File
  Maximum Concurrent Jobs = 10
  Heartbeat Interval = {HEARTBEAT}
}}
Pool {{
  Name = File
  Pool Type = Backup
  Recycle = yes
  AutoPrune = yes
  Volume Retention = 365 days
  Maximum Volume Jobs = 1
  Label Format = "Vol-"
  Maximum Volumes = 1000
}}
FileSet {{
  Name = LabSet
  Include {{
    Options {{
      signature = MD5
    }}
    File = {CLIENT_DATA}
  }}
}}
Job {{
  Name = {BACKUP_JOB}
  Type = Backup
  Level = Full
  Client = {CLIENT_FD}
  FileSet = LabSet
  Storage = sd1
  Pool = File
  Messages = Standard
  Write Bootstrap = "{at.working}/%c.bsr"
  # What failover needs (bacula-ha check): a backup cut by a storage daemon failover is run
  # again by Bacula itself; the lab fails over in 5-10 s, so the first retry finds it back.
  Spool Attributes = yes
  Reschedule On Error = yes
  Reschedule Interval = 30 seconds
  Reschedule Times = 3
}}
Job {{
  Name = {RESTORE_JOB}
  Type = Restore
  Client = {CLIENT_FD}
  FileSet = LabSet
  Storage = sd1
  Pool = File
  Messages = Standard
  Where = {CLIENT_RESTORE}
}}
Messages {{
  Name = Standard
  console = all, !skipped, !saved
  append = "{at.log_dir}/bacula.log" = all, !skipped
  catalog = all
}}
Messages {{
  Name = Daemon
  console = all, !skipped, !saved
  append = "{at.log_dir}/bacula.log" = all, !skipped
}}
"""


def storage_conf(pw: Secrets, at: Install = baculaorg.DEBIAN) -> str:
    return f"""# bacula-ha lab: the storage daemon binds its VIP; volumes live on the sd1 disk.
Storage {{
  Name = sd1
  SDPort = 9103
  SDAddress = {SD_VIP}
  WorkingDirectory = "{at.working}"
  Pid Directory = "{at.pid_dir}"
  Maximum Concurrent Jobs = 20
  Heartbeat Interval = {HEARTBEAT}
}}
Director {{
  Name = {DIR_NAME}
  Password = "{pw.storage}"
}}
Device {{
  Name = FileStorage
  Media Type = File
  Archive Device = {ARCHIVE}
  LabelMedia = yes
  Random Access = yes
  AutomaticMount = yes
  RemovableMedia = no
  AlwaysOpen = no
  Maximum Concurrent Jobs = 5
}}
Messages {{
  Name = Standard
  director = {DIR_NAME} = all
}}
"""


def filedaemon_conf(pw: Secrets, at: Install = baculaorg.DEBIAN) -> str:
    return f"""# bacula-ha lab: the backup client, in the client namespace.
Director {{
  Name = {DIR_NAME}
  Password = "{pw.filedaemon}"
}}
FileDaemon {{
  Name = {CLIENT_FD}
  FDport = 9102
  FDAddress = {SUBNET}.100
  WorkingDirectory = {at.working}
  Pid Directory = {at.pid_dir}
  Maximum Concurrent Jobs = 20
  Heartbeat Interval = {HEARTBEAT}
}}
Messages {{
  Name = Standard
  director = {DIR_NAME} = all, !skipped, !restored
}}
"""


def console_conf(pw: Secrets) -> str:
    return f"""Director {{
  Name = {DIR_NAME}
  DIRport = 9101
  address = {DIR_VIP}
  Password = "{pw.director}"
}}
"""


def _ids(user: str, group: str) -> tuple[int, int]:
    return pwd.getpwnam(user).pw_uid, grp.getgrnam(group).gr_gid


def _put(path: Path, text: str, mode: int, owner: tuple[int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chown(path, *owner)
    path.chmod(mode)


def prepare_ocf(cfg: LabConfig, agents: bool = True) -> None:
    """The machines' OCF tree: the host's, without any bacula agents; this tree's installed
    unless a fresh machine's admin is to install them (`bacula-ha install`)."""
    ocf = cfg.lab_dir / "ocf"
    if not (ocf / "resource.d").exists():
        # The host's own ocf:bacula agents (whatever another test left there) are not copied:
        # the lab runs the agents of this source tree, installed below.
        # The same for lib/ (the alert agent lives in lib/bacula): a host's copy may name an
        # interpreter a machine cannot see (another clone's virtualenv under /tmp).
        for sub in ("resource.d", "lib"):
            top = Path("/usr/lib/ocf") / sub
            shutil.copytree(
                top,
                ocf / sub,
                symlinks=True,
                ignore=lambda d, names, top=top: ["bacula"] if Path(d) == top else [],
            )
        if agents:
            from bacula_ha.install import install

            install(ocf, sys.executable)


def prepare_files(cfg: LabConfig) -> None:
    """Before boot: agents in a private OCF tree, Bacula files in every machine's private dirs."""
    prepare_ocf(cfg)
    pw = Secrets.load_or_create(cfg)
    bacula = _ids("root", "bacula")
    owned = _ids("bacula", "bacula")
    at = baculaorg.install_of(cfg)
    for m in cfg.machines:
        fs = m.dir / "fs"
        machine.prepare_root(m)
        etc = fs / "etc/bacula"
        # Only the lab's files: the host's sample configuration is not part of the lab. With
        # a bacula.org install there is no /etc/bacula at all: whatever still looked there
        # would fail instead of finding Debian's.
        shutil.rmtree(etc, ignore_errors=True)
        if cfg.bacula:
            etc = baculaorg.prepare(m, owned)
        else:
            etc.mkdir(parents=True)
        etc.chmod(0o755)
        if m.name == "client":
            _put(etc / "bacula-fd.conf", filedaemon_conf(pw, at), 0o640, bacula)
            data = fs / "srv/data"
            data.mkdir(parents=True, exist_ok=True)
            # Something to back up in the demo (the tests write their own files).
            (data / "hello.txt").write_text("hello from the bacula-ha lab client\n")
            (data / "random.bin").write_bytes(os.urandom(1 << 20))
            (fs / "srv/restore").mkdir(parents=True, exist_ok=True)
        else:
            _put(etc / "bacula-dir.conf", director_conf(pw, at), 0o640, bacula)
            _put(etc / "bacula-sd.conf", storage_conf(pw, at), 0o640, bacula)
            if not cfg.bacula:  # bacula.org's build brings its own
                _put(etc / "scripts/query.sql", "", 0o644, bacula)
            (fs / SD_MOUNT.strip("/")).mkdir(parents=True, exist_ok=True)
        _put(etc / "bconsole.conf", console_conf(pw), 0o640, bacula)
        for sub in ("var/lib/bacula", "var/log/bacula"):
            (fs / sub).mkdir(parents=True, exist_ok=True)
            os.chown(fs / sub, *owned)
            (fs / sub).chmod(0o750)


def tool(cfg: LabConfig, name: str) -> str:
    """A Bacula program of the lab's install, inside a machine (bconsole, bacula-fd...)."""
    return baculaorg.install_of(cfg).layout.tool(name)


def conf(cfg: LabConfig, name: str) -> str:
    """A configuration file of the lab's install, inside a machine (bconsole.conf...)."""
    return baculaorg.install_of(cfg).layout.conf(name)


def extra_binds(cfg: LabConfig) -> list[tuple[str, str]]:
    ocf = cfg.lab_dir / "ocf"
    return [(str(ocf / sub), f"/usr/lib/ocf/{sub}") for sub in ("resource.d", "lib")]


CATALOG_SCRIPT = r"""
set -eu
mount -L {label}catalog {mnt}
trap 'umount {mnt}' EXIT
mkdir -p {mnt}/15
chown -R postgres:postgres {mnt}
runuser -u postgres -- {bin}/initdb -D {pgdata} -A peer -E UTF8 --locale=C.UTF-8 >/dev/null
cat >>{pgdata}/postgresql.conf <<END
listen_addresses = '*'
port = 5432
unix_socket_directories = '/run/postgresql'
END
cat >{pgdata}/pg_hba.conf <<END
local all all peer
host bacula bacula {subnet}.0/24 scram-sha-256
host all all 127.0.0.0/8 scram-sha-256
END
runuser -u postgres -- {bin}/pg_ctl -D {pgdata} -w -l /tmp/pg-provision.log start >/dev/null
cd /tmp
for s in create_postgresql_database make_postgresql_tables grant_postgresql_privileges; do
    runuser -u postgres -- env db_name=bacula db_user=bacula db_password=placeholder \
        PGHOST=/run/postgresql sh {scripts}/$s >/tmp/$s.log 2>&1
    if grep -q ERROR: /tmp/$s.log; then cat /tmp/$s.log >&2; exit 1; fi
done
runuser -u postgres -- {bin}/psql -h /run/postgresql -q -v ON_ERROR_STOP=1 \
    -c "ALTER ROLE bacula PASSWORD '$CATALOG_PW'"
test "$(runuser -u postgres -- {bin}/psql -h /run/postgresql -At -d bacula \
    -c 'SELECT versionid FROM version')" = {schema}
runuser -u postgres -- {bin}/pg_ctl -D {pgdata} -w -m fast stop >/dev/null
"""

SD_DISK_SCRIPT = """
set -eu
mount -L {label}sd1 {mnt}
trap 'umount {mnt}' EXIT
mkdir -p {archive}
chown bacula:bacula {archive}
chmod 0750 {archive}
"""


def provision_disks(cfg: LabConfig, on: str = "node1") -> None:
    """Initialise the catalog (PostgreSQL + Bacula tables, made by the lab's Bacula's own
    scripts) and the volume directory on disk."""
    pw = Secrets.load_or_create(cfg)
    script = CATALOG_SCRIPT.format(
        mnt=PG_MOUNT,
        bin=PG_BIN,
        pgdata=PGDATA,
        subnet=SUBNET,
        scripts=baculaorg.install_of(cfg).layout.scripts,
        label=DISK_LABEL_PREFIX,
        schema=baculaorg.catalog_schema(cfg),
    )
    # Runs inside the node (its own /tmp and /run): nothing of this touches the host.
    machine.run_in(cfg, on, ["sh", "-c", script], env={"CATALOG_PW": pw.catalog}, timeout=120)
    script = SD_DISK_SCRIPT.format(mnt=SD_MOUNT, archive=ARCHIVE, label=DISK_LABEL_PREFIX)
    machine.run_in(cfg, on, ["sh", "-c", script], timeout=60)


def start_client(cfg: LabConfig) -> None:
    """The backup client: bacula-fd in the client namespace."""
    fd, fd_conf = tool(cfg, "bacula-fd"), conf(cfg, "bacula-fd.conf")
    machine.run_in(cfg, "client", [fd, "-t", "-c", fd_conf])
    machine.start_daemon(cfg, "client", [fd, "-f", "-c", fd_conf], "/run/bacula-fd.log")


def apply_site(cfg: LabConfig, site: Path, on: str = "node1") -> Path:
    """Generate the site's pcs script with `bacula-ha generate` and run it inside a node."""
    out = cfg.lab_dir / "site.pcs.sh"
    cli = Path(sys.executable).with_name("bacula-ha")

    argv = [str(cli), "generate", str(site), "--format", "pcs", "-o", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise LabError(f"bacula-ha generate failed:\n{proc.stderr.strip()}")
    machine.run_in(cfg, on, ["sh", str(out)], timeout=300)
    return out


def bconsole(cfg: LabConfig, commands: str, on: str = "client", timeout: float = 60) -> str:
    """Run bconsole commands from a machine against the director's VIP."""
    argv = [tool(cfg, "bconsole"), "-c", conf(cfg, "bconsole.conf"), "-u", "10"]
    return machine.run_in(cfg, on, argv, input_text=commands, timeout=timeout).stdout


def catalog_read_only(cfg: LabConfig, node: str, read_only: bool) -> None:
    """Make the Bacula database refuse writes for every new session (or allow them again)."""
    value = "SET default_transaction_read_only = on" if read_only else "RESET ALL"
    sql = f"ALTER DATABASE bacula {value}"
    argv = ["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-h", "/run/postgresql"]
    argv += ["-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
    machine.run_in(cfg, node, argv, timeout=30)


def director_answers(cfg: LabConfig, timeout: float = 3.0) -> bool:
    """True if the director behind its VIP answers a console `status dir` from the client."""
    argv = ["timeout", str(timeout + 2), tool(cfg, "bconsole"), "-c", conf(cfg, "bconsole.conf")]
    argv += ["-u", str(int(timeout))]
    proc = machine.run_in(
        cfg, "client", argv, input_text="status dir\n", check=False, timeout=timeout + 10
    )
    return "Daemon started" in proc.stdout


def run_job(cfg: LabConfig, command: str, timeout: float = 120) -> tuple[int, str]:
    """Run a job through bconsole from the client, wait for it; return (jobid, jobstatus)."""
    out = bconsole(cfg, f"{command}\nwait\n", timeout=timeout)
    match = re.search(r"Job queued\. JobId=(\d+)", out)
    if not match:
        raise LabError(f"the director did not queue the job:\n{out[-1500:]}")
    jobid = int(match.group(1))
    listing = bconsole(cfg, f"llist jobid={jobid}\n", timeout=60)
    status = re.search(r"jobstatus:\s*(\S+)", listing, re.IGNORECASE)
    return jobid, status.group(1) if status else "?"


def backup(cfg: LabConfig) -> tuple[int, str]:
    return run_job(cfg, f"run job={BACKUP_JOB} yes")


def restore(cfg: LabConfig, jobid: int) -> tuple[int, str]:
    """Restore every file of a backup job into the client's restore directory."""
    command = f"restore jobid={jobid} client={CLIENT_FD} where={CLIENT_RESTORE} all done yes"
    return run_job(cfg, command)
