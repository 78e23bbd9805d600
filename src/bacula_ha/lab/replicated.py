"""The lab's replicated catalog: PostgreSQL streaming replication between two nodes, under PAF.

`bacula-ha lab up --catalog replicated` gives every node its own /var/lib/postgresql; node1
gets the catalog (initdb, Bacula's tables), node2 a base backup of it; both are then stopped
and Pacemaker (PAF's pgsqlms, from examples/lab-replicated-site.toml) starts them as standbys
and promotes one. What differs per node lives outside the data directory, in the node's own
/etc (base backups and pg_rewind copy the data directory's configuration files): the
application_name PAF requires in primary_conninfo, pg_hba.conf, the synchronous standbys.
`lab heal` turns a node that was fenced back into a standby before it rejoins the cluster
(pg_rewind, else a new base backup), as docs/replicated-catalog.md tells an admin to.
"""

from __future__ import annotations

import os
import secrets
import xml.etree.ElementTree as ET
from pathlib import Path

from bacula_ha.lab import cluster, machine, procs, ssh, stack
from bacula_ha.lab.config import CLUSTER_SUBNET, DISK_LABEL_PREFIX, SUBNET, LabConfig, Machine
from bacula_ha.lab.errors import LabError

CATALOGS = ("shared", "replicated")
PGDATA = stack.PGDATA
PG_BIN = stack.PG_BIN
# Every node's own (the shared lab mounts its catalog disk there instead).
PRIVATE_DIRS = ("/var/lib/postgresql",)
NODE_CONF = "/etc/postgresql/bacula-ha-lab.conf"
HBA_FILE = "/etc/postgresql/bacula-ha-lab-hba.conf"
PASSFILE = "/var/lib/postgresql/.pgpass"
REPLICATION_USER = "replicator"
# The clone and the Bacula group of examples/lab-replicated-site.toml.
DB_RESOURCE = "cat1-db"
DB_CLONE = "cat1-db-clone"
# What standbys replicate from: the site's replication_vip, on the cluster network, following
# the Promoted instance. Over the clients' network (the catalog VIP) a primary that lost only its
# uplink could not be switched over: its standby would miss the last WAL, and PAF refuses then.
REPLICATION_VIP = f"{CLUSTER_SUBNET}.20"


def default_site() -> Path:
    """examples/lab-replicated-site.toml, as shipped with the package (or of this source tree)."""
    from ..data import data_path

    return data_path("examples", "lab-replicated-site.toml")


def sync_standby_names(cfg: LabConfig) -> str:
    """What the primary waits for: any one of the two database nodes (itself never streams)."""
    a, b = (m.name for m in cfg.cluster_nodes[:2])
    return f"ANY 1 ({a}, {b})"


def db_nodes(cfg: LabConfig) -> tuple[Machine, ...]:
    return cfg.cluster_nodes[:2]


def _password(cfg: LabConfig) -> str:
    path = cfg.lab_dir / "replication-secret"
    if path.exists():
        return path.read_text().strip()
    made = secrets.token_hex(16)
    path.write_text(made + "\n")
    path.chmod(0o600)
    return made


def _write_node_files(cfg: LabConfig, m: Machine, with_conninfo: bool) -> None:
    """pg_hba, the replication password file and the node's own settings, from the host."""
    fs = m.dir / "fs"
    uid, gid = stack._ids("postgres", "postgres")
    hba = (
        "# bacula-ha lab, this node's own: a standby never replicates from itself, whether\n"
        "# through its address or through the replication VIP (PAF's advice).\n"
        "local all all peer\n"
        f"host replication {REPLICATION_USER} {REPLICATION_VIP}/32 reject\n"
        f"host replication {REPLICATION_USER} {m.cluster_address}/32 reject\n"
        f"host replication {REPLICATION_USER} {CLUSTER_SUBNET}.0/24 scram-sha-256\n"
        f"host postgres {REPLICATION_USER} {CLUSTER_SUBNET}.0/24 scram-sha-256\n"
        f"host bacula bacula {SUBNET}.0/24 scram-sha-256\n"
        "host all all 127.0.0.0/8 scram-sha-256\n"
    )
    stack._put(fs / HBA_FILE.strip("/"), hba, 0o644, (0, 0))
    passfile = fs / PASSFILE.strip("/")
    passfile.parent.mkdir(parents=True, exist_ok=True)
    os.chown(passfile.parent, uid, gid)
    stack._put(passfile, f"*:*:*:{REPLICATION_USER}:{_password(cfg)}\n", 0o600, (uid, gid))
    conf = "# bacula-ha lab: what differs between the nodes (included by postgresql.conf).\n"
    if with_conninfo:
        # PAF requires application_name = the node's name; the standby follows the VIP.
        conf += (
            f"primary_conninfo = 'host={REPLICATION_VIP} port=5432 user={REPLICATION_USER} "
            f"passfile={PASSFILE} application_name={m.name} connect_timeout=2'\n"
            # A commit waits until a standby has flushed it; bacula-catalog relaxes this
            # once the standby node is fenced (docs/replicated-catalog.md).
            f"synchronous_standby_names = '{sync_standby_names(cfg)}'\n"
        )
    stack._put(fs / NODE_CONF.strip("/"), conf, 0o644, (0, 0))


PRIMARY_SCRIPT = r"""
set -eu
mkdir -p /var/lib/postgresql/15
chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/15
# Checksums: pg_rewind needs them (or wal_log_hints) to turn a fenced primary into a standby.
runuser -u postgres -- {bin}/initdb -D {pgdata} -A peer -E UTF8 --locale=C.UTF-8 \
    --data-checksums >/dev/null
cat >>{pgdata}/postgresql.conf <<END
listen_addresses = '*'
port = 5432
unix_socket_directories = '/run/postgresql'
hba_file = '{hba}'
# The WAL a fenced primary's rewind, or a standby back from a crash, still needs.
wal_keep_size = 256MB
include_if_exists = '{node_conf}'
END
runuser -u postgres -- {bin}/pg_ctl -D {pgdata} -w -l /tmp/pg-provision.log start >/dev/null
cd /tmp
for s in create_postgresql_database make_postgresql_tables grant_postgresql_privileges; do
    runuser -u postgres -- env db_name=bacula db_user=bacula db_password=placeholder \
        PGHOST=/run/postgresql sh {scripts}/$s >/tmp/$s.log 2>&1
    if grep -q ERROR: /tmp/$s.log; then cat /tmp/$s.log >&2; exit 1; fi
done
# Passwords through stdin, never argv. The replication role may read what pg_rewind reads;
# bacula may switch synchronous_standby_names (bacula-catalog sync_standby_names).
runuser -u postgres -- {bin}/psql -h /run/postgresql -q -v ON_ERROR_STOP=1 <<END
ALTER ROLE bacula PASSWORD '$CATALOG_PW';
CREATE ROLE {user} LOGIN REPLICATION PASSWORD '$REPL_PW';
GRANT pg_checkpoint TO {user};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_ls_dir(text, boolean, boolean) TO {user};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_file(text, boolean) TO {user};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text) TO {user};
GRANT EXECUTE ON FUNCTION pg_catalog.pg_read_binary_file(text, bigint, bigint, boolean) TO {user};
GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names TO bacula;
GRANT pg_read_all_stats TO bacula;
-- Functions' privileges are per database: the one bacula connects to.
\c bacula
GRANT EXECUTE ON FUNCTION pg_catalog.pg_reload_conf() TO bacula;
END
test "$(runuser -u postgres -- {bin}/psql -h /run/postgresql -At -d bacula \
    -c 'SELECT versionid FROM version')" = 16
"""

STANDBY_SCRIPT = r"""
set -eu
mkdir -p /var/lib/postgresql/15
chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/15
rm -rf {pgdata}
runuser -u postgres -- {bin}/pg_basebackup -h {source} -U {user} -D {pgdata} -X stream \
    -c fast -w -d "passfile={passfile} connect_timeout=5"
runuser -u postgres -- touch {pgdata}/standby.signal
"""

STOP_SCRIPT = "runuser -u postgres -- {bin}/pg_ctl -D {pgdata} -w -m fast stop >/dev/null"

# Before a fenced node rejoins: a former primary is rewound onto the promoted one's timeline
# (a new base backup if that fails), then started once as a standby until it is consistent
# and stopped cleanly, so that PAF finds a stopped standby, not a crashed instance.
REJOIN_SCRIPT = r"""
set -eu
# The node's link has just come up: its first connection may find no neighbour yet.
i=0
until ping -c1 -W1 {vip} >/dev/null 2>&1; do
    i=$((i + 1))
    if [ $i -ge 30 ]; then echo "the replication VIP {vip} does not answer" >&2; exit 1; fi
done
state=$({bin}/pg_controldata -D {pgdata} | sed -n 's/^Database cluster state: *//p')
echo "state: $state"
case "$state" in
"in production"|"shut down")
    conninfo="host={vip} port=5432 user={user} dbname=postgres passfile={passfile}"
    export PGCONNECT_TIMEOUT=5
    # A just-promoted server names its new timeline in its control file only after its
    # end-of-recovery checkpoint: without one, pg_rewind finds "no rewind required".
    runuser -u postgres -- {bin}/psql -X -q -d "$conninfo" -c CHECKPOINT
    if runuser -u postgres -- {bin}/pg_rewind -D {pgdata} --source-server="$conninfo" \
            >/tmp/pg-rewind.log 2>&1; then
        echo "rewound"
    else
        cat /tmp/pg-rewind.log >&2
        rm -rf {pgdata}
        runuser -u postgres -- {bin}/pg_basebackup -h {vip} -U {user} -D {pgdata} -X stream \
            -c fast -w -d "passfile={passfile} connect_timeout=5"
        echo "new base backup"
    fi
    ;;
esac
runuser -u postgres -- touch {pgdata}/standby.signal
runuser -u postgres -- {bin}/pg_ctl -D {pgdata} -w -t 120 -l /tmp/pg-rejoin.log start >/dev/null
runuser -u postgres -- {bin}/pg_ctl -D {pgdata} -w -m fast stop >/dev/null
"""


def _fmt(script: str, **extra: str) -> str:
    return script.format(
        bin=PG_BIN,
        pgdata=PGDATA,
        hba=HBA_FILE,
        node_conf=NODE_CONF,
        scripts=stack.SCRIPTS,
        user=REPLICATION_USER,
        passfile=PASSFILE,
        vip=REPLICATION_VIP,
        **extra,
    )


def provision(cfg: LabConfig) -> None:
    """The catalog on node1, a base backup of it on node2, both stopped; the volume disk."""
    primary, standby = db_nodes(cfg)
    for m in db_nodes(cfg):
        _write_node_files(cfg, m, with_conninfo=False)
    env = {"CATALOG_PW": stack.Secrets.load_or_create(cfg).catalog, "REPL_PW": _password(cfg)}
    machine.run_in(cfg, primary.name, ["sh", "-c", _fmt(PRIMARY_SCRIPT)], env=env, timeout=120)
    try:
        script = _fmt(STANDBY_SCRIPT, source=primary.cluster_address)
        machine.run_in(cfg, standby.name, ["sh", "-c", script], timeout=120)
    finally:
        machine.run_in(cfg, primary.name, ["sh", "-c", _fmt(STOP_SCRIPT)], timeout=60)
    for m in db_nodes(cfg):
        _write_node_files(cfg, m, with_conninfo=True)
    script = stack.SD_DISK_SCRIPT.format(
        mnt=stack.SD_MOUNT, archive=stack.ARCHIVE, label=DISK_LABEL_PREFIX
    )
    machine.run_in(cfg, primary.name, ["sh", "-c", script], timeout=60)


def has_clone(cfg: LabConfig, via: str) -> bool:
    """Whether the cluster manages the replicated catalog (the benchmark removes it)."""
    done = machine.run_in(cfg, via, ["crm_resource", "-r", DB_CLONE, "-q"], check=False)
    return done.returncode == 0


def rejoin(cfg: LabConfig, m: Machine) -> str:
    """Make a booted node's database a stopped standby of the promoted one; say what was done."""
    if m not in db_nodes(cfg):
        return ""
    # Asked of a node in the cluster: this one's cluster stack has not started yet.
    inits = procs.machine_inits(cfg.lab_dir)
    others = [n.name for n in cfg.cluster_nodes if n != m and n.name in inits]
    if not others or not has_clone(cfg, others[0]):
        return ""
    done = machine.run_in(cfg, m.name, ["sh", "-c", _fmt(REJOIN_SCRIPT)], timeout=300)
    return done.stdout.strip()


def boot_node(cfg: LabConfig, m: Machine) -> str:
    """Boot a fenced node as an admin would: its database made a standby before it rejoins."""
    m.power_file.write_text("on")  # exactly "on", no newline: fence_dummy compares it
    machine.boot(cfg, m)
    machine.set_port(m.name, up=True)
    ssh.start(cfg, m.name)
    what = rejoin(cfg, m)
    cluster.start_node(cfg, m)
    return what


def roles(cfg: LabConfig, via: str) -> dict[str, str]:
    """Node -> role (Promoted, Unpromoted, ...) of the catalog database's clone instances."""
    out = machine.run_in(cfg, via, ["crm_mon", "-1", "--output-as=xml"], timeout=20).stdout
    found: dict[str, str] = {}
    for clone in ET.fromstring(out).iter("clone"):
        if clone.get("id") != DB_CLONE:
            continue
        for r in clone.iterfind("resource"):
            for n in r.iterfind("node"):
                found[n.get("name", "")] = r.get("role", "")
    return found


def promoted(cfg: LabConfig, via: str) -> list[str]:
    return [n for n, role in roles(cfg, via).items() if role == "Promoted"]


def promotion_score(cfg: LabConfig, via: str, node: str) -> int | None:
    """PAF's master score of a node's instance: positive once the primary saw it streaming."""
    argv = ["crm_attribute", "-N", node, "-n", f"master-{DB_RESOURCE}", "-l", "forever", "-G"]
    out = machine.run_in(cfg, via, [*argv, "-q"], check=False).stdout.strip()
    return int(out) if out.lstrip("-").isdigit() else None


def wait_replicating(cfg: LabConfig, via: str, timeout: float = 120) -> dict[str, str]:
    """Wait for one Promoted and one promotable Unpromoted instance; return node -> role.

    Promotable: PAF's monitor of the primary gives a standby a positive score only once it
    has seen it streaming (up to one monitor interval after it does); until then a crash of
    the primary would leave nothing to promote.
    """
    import time

    if not has_clone(cfg, via):
        return {}
    deadline = time.monotonic() + timeout
    last: dict[str, str] = {}
    while True:
        try:
            last = roles(cfg, via)
            if sorted(last.values()) == ["Promoted", "Unpromoted"]:
                (standby,) = [n for n, role in last.items() if role == "Unpromoted"]
                if (promotion_score(cfg, via, standby) or 0) > 0:
                    return last
        except (LabError, ET.ParseError):
            pass
        if time.monotonic() > deadline:
            raise LabError(
                f"timed out waiting for a Promoted and a promotable Unpromoted catalog: {last}"
            )
        time.sleep(0.2)


def primaries(cfg: LabConfig) -> tuple[str, ...]:
    """Nodes whose own server runs as a primary now (what the cluster says may lag a reboot)."""
    found = []
    for m in db_nodes(cfg):
        argv = ["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-h", "/run/postgresql"]
        argv += ["-d", "postgres", "-At", "-c", "SELECT pg_is_in_recovery()"]
        try:
            done = machine.run_in(cfg, m.name, argv, check=False, timeout=30)
        except LabError:  # powered off
            continue
        if done.stdout.strip() == "f":
            found.append(m.name)
    return tuple(found)


def psql(cfg: LabConfig, node: str, sql: str, db: str = "bacula") -> str:
    """Run SQL as postgres on a node's own server (its socket); return the unaligned rows."""
    argv = ["runuser", "-u", "postgres", "--", str(PG_BIN / "psql"), "-h", "/run/postgresql"]
    argv += ["-d", db, "-At", "-v", "ON_ERROR_STOP=1", "-c", sql]
    return machine.run_in(cfg, node, argv, timeout=30).stdout.strip()
