"""`bacula-ha lab`: thin click commands over bacula_ha.lab.lifecycle."""

from __future__ import annotations

import os
from pathlib import Path

import click

from bacula_ha import cliout
from bacula_ha.lab import baculaorg, lifecycle, replicated, twodc
from bacula_ha.lab import remote as remotemod
from bacula_ha.lab.config import MAX_NODES, MAX_REMOTES, LabConfig, lab_dir_from_env
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.stack import default_site
from bacula_ha.progress import Progress


def _fail(exc: LabError) -> None:
    cliout.fail("lab", str(exc))


def _need_root() -> None:
    if os.geteuid() != 0:
        cliout.fail("lab", "the lab needs root (namespaces, loop devices, mounts)")


@click.group()
def lab() -> None:
    """A real multi-node Pacemaker cluster in namespaces on this machine."""


@lab.command()
@click.option("--nodes", type=click.IntRange(2, MAX_NODES), default=2, show_default=True)
@click.option(
    "--remote",
    "remotes",
    type=click.IntRange(0, MAX_REMOTES),
    default=0,
    show_default=True,
    help="Also pacemaker_remote nodes remote1..N (10.99.0.11..): they run pacemaker_remoted, "
    "no corosync, no vote; the default site puts the storage daemon on remote1 and remote2.",
)
@click.option(
    "--site",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Site TOML to generate and apply  [default: examples/lab-site.toml; with --remote: "
    "examples/lab-remote-site.toml; with --dcs 2: examples/lab-two-dc-site.toml]",
)
@click.option("--bare", is_flag=True, help="Only the cluster and fencing, no Bacula stack.")
@click.option(
    "--fresh",
    is_flag=True,
    help="Only the machines, as just installed (two nodes, a client, sshd, shared disks not "
    "formatted; no cluster, no Bacula set up): follow docs/deploy.md on them with `lab exec`.",
)
@click.option(
    "--dcs",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="2: two data centres (needs --nodes 4: node1-2 in dc1, node3-4 in dc2) with a "
    "WAN delay between them and a quorum arbiter (corosync-qnetd) in a third place; the "
    "default site is then examples/lab-two-dc-site.toml.",
)
@click.option(
    "--catalog",
    type=click.Choice(replicated.CATALOGS),
    default="shared",
    show_default=True,
    help="shared: PostgreSQL on a shared (loop) disk; replicated: streaming replication "
    "between node1 and node2 under PAF  [site: examples/lab-replicated-site.toml]",
)
@click.option(
    "--bacula",
    "bacula",
    metavar="VERSION|PATH",
    default="",
    help="Run this Bacula instead of Debian's, in every machine as a bacula.org install at "
    "/opt/bacula: a version scripts/build-bacula makes (13.0.3; built first if missing), or "
    "the path of a prefix holding bin/bacula-dir, lib/ and scripts/.  [default: Debian's]",
)
def up(
    nodes: int,
    remotes: int,
    site: Path | None,
    bare: bool,
    dcs: int,
    catalog: str,
    bacula: str,
    fresh: bool,
) -> None:
    """Build the lab (or find it already up) and wait until everything runs."""
    _need_root()
    if fresh and (bare or site or bacula or remotes or dcs != 1 or nodes != 2):
        raise click.UsageError("--fresh makes two nodes and a client: it takes no other option")
    if fresh and catalog != "shared":
        raise click.UsageError("--fresh sets up no catalog: drop --catalog")
    if bare and site:
        raise click.UsageError("--bare and --site exclude each other")
    if bacula and bare:
        raise click.UsageError("--bare runs no Bacula: drop --bacula")
    if bacula and (catalog != "shared" or dcs == 2 or remotes):
        raise click.UsageError(
            "--bacula goes with neither --catalog replicated, --dcs 2 nor --remote"
        )
    if bare and catalog != "shared":
        raise click.UsageError("--bare has no catalog: drop --catalog")
    if catalog != "shared" and (dcs == 2 or remotes):
        raise click.UsageError("--catalog replicated goes with neither --dcs 2 nor --remote")
    if dcs == 2 and nodes != 4:
        raise click.UsageError("--dcs 2 needs --nodes 4 (two nodes in each data centre)")
    if dcs == 2 and remotes:
        raise click.UsageError("--dcs 2 and --remote exclude each other")
    fallback = remotemod.default_site() if remotes else default_site()
    fallback = twodc.default_site() if dcs == 2 else fallback
    fallback = replicated.default_site() if catalog == "replicated" else fallback
    chosen = None if bare or fresh else (site or fallback)
    try:
        prefix = str(baculaorg.resolve(bacula, click.echo)) if bacula else ""
        cfg = LabConfig(
            nodes=nodes,
            remotes=remotes,
            lab_dir=lab_dir_from_env(),
            dcs=dcs,
            catalog=catalog,
            bacula=prefix,
            fresh=fresh,
        )
        lifecycle.up(cfg, site=chosen, log=click.echo, progress=Progress("lab"))
    except LabError as exc:
        _fail(exc)


@lab.command()
def status() -> None:
    """Machines, VIP holders and crm_mon of the lab."""
    _need_root()
    try:
        click.echo(lifecycle.status(lifecycle.load(lab_dir_from_env())))
    except LabError as exc:
        _fail(exc)


@lab.command()
@click.argument("node")
@click.option("--mode", type=click.Choice(lifecycle.FAIL_MODES), default="crash", show_default=True)
def fail(node: str, mode: str) -> None:
    """Break NODE (a cluster or remote node): crash it (power off), partition it, ...

    `partition` pulls every cable of the node (the clients' network and the cluster's own);
    `uplink` only the clients' network, where the VIPs and the ping target (the lab's gateway,
    10.99.0.254) are: corosync keeps talking over the cluster network. NODE may also be
    `gateway`: `crash` or `partition` takes the ping target away from every node at once.
    In a two-DC lab (`up --dcs 2`) NODE may also be dc1 or dc2: `crash` powers off both of
    its nodes at once, `partition` cuts the path between the data centres (both still reach
    the arbiter and the client), `uplink` cuts the data centre's clients' network only; or
    `arbiter`: `crash` powers it off, `partition` cuts its links. `heal` undoes all of these.
    """
    _need_root()
    try:
        lifecycle.fail(lifecycle.load(lab_dir_from_env()), node, mode)
    except LabError as exc:
        _fail(exc)


@lab.command()
def heal() -> None:
    """Reconnect and boot every node, and wait until all are online."""
    _need_root()
    try:
        lifecycle.heal(lifecycle.load(lab_dir_from_env()), log=click.echo)
    except LabError as exc:
        _fail(exc)


@lab.command()
@click.argument("node")
@click.option(
    "--bacula",
    "bacula",
    metavar="VERSION|PATH",
    required=True,
    help="The Bacula to upgrade to: a version scripts/build-bacula makes (13.0.3; built first "
    "if missing), or the path of a prefix holding bin/bacula-dir, lib/ and scripts/.",
)
def upgrade(node: str, bacula: str) -> None:
    """Upgrade NODE's Bacula in place, as a package upgrade does (docs/upgrade.md).

    Inside NODE only, the build's programs are bound over Debian's in /usr/sbin (bacula-dir,
    bacula-sd, bacula-fd, bconsole, the b*json parsers...) and its scripts/ over
    /usr/share/bacula-director; configuration and state stay. Refused while a director or
    storage daemon runs there: put the node in standby first. It stays upgraded across a
    crash and heal; `lab down` ends it.
    """
    _need_root()
    try:
        cfg = lifecycle.load(lab_dir_from_env())
        prefix = str(baculaorg.resolve(bacula, click.echo))
        click.echo(lifecycle.upgrade(cfg, node, prefix).describe())
    except LabError as exc:
        _fail(exc)


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("machine")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(machine: str, argv: tuple[str, ...]) -> None:
    """Run ARGV inside MACHINE (node1, node2, ..., remote1, ..., client)."""
    _need_root()
    try:
        code = lifecycle.exec_in(lifecycle.load(lab_dir_from_env()), machine, argv)
    except LabError as exc:
        _fail(exc)
    raise SystemExit(code)


@lab.command()
def down() -> None:
    """Remove every namespace, process, loop device and file of the lab."""
    _need_root()
    try:
        lifecycle.down(lab_dir_from_env(), log=click.echo)
    except LabError as exc:
        _fail(exc)


commands = [lab]
