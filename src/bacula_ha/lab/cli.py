"""`bacula-ha lab`: thin click commands over bacula_ha.lab.lab."""

from __future__ import annotations

import os
from pathlib import Path

import click

from bacula_ha.lab import lab as labmod
from bacula_ha.lab import replicated
from bacula_ha.lab.config import MAX_NODES, LabConfig, lab_dir_from_env
from bacula_ha.lab.errors import LabError
from bacula_ha.lab.stack import default_site


def _fail(exc: LabError) -> None:
    raise click.ClickException(str(exc)) from exc


def _need_root() -> None:
    if os.geteuid() != 0:
        raise click.ClickException("the lab needs root (namespaces, loop devices, mounts)")


@click.group()
def lab() -> None:
    """A real multi-node Pacemaker cluster in namespaces on this machine."""


@lab.command()
@click.option("--nodes", type=click.IntRange(2, MAX_NODES), default=2, show_default=True)
@click.option(
    "--site",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Site TOML to generate and apply  [default: examples/lab-site.toml]",
)
@click.option("--bare", is_flag=True, help="Only the cluster and fencing, no Bacula stack.")
@click.option(
    "--catalog",
    type=click.Choice(replicated.CATALOGS),
    default="shared",
    show_default=True,
    help="shared: PostgreSQL on a shared (loop) disk; replicated: streaming replication "
    "between node1 and node2 under PAF  [site: examples/lab-replicated-site.toml]",
)
def up(nodes: int, site: Path | None, bare: bool, catalog: str) -> None:
    """Build the lab (or find it already up) and wait until everything runs."""
    _need_root()
    if bare and site:
        raise click.UsageError("--bare and --site exclude each other")
    if bare and catalog != "shared":
        raise click.UsageError("--bare has no catalog: drop --catalog")
    fallback = replicated.default_site() if catalog == "replicated" else default_site()
    chosen = None if bare else (site or fallback)
    try:
        cfg = LabConfig(nodes=nodes, lab_dir=lab_dir_from_env(), catalog=catalog)
        labmod.up(cfg, site=chosen, log=click.echo)
    except LabError as exc:
        _fail(exc)


@lab.command()
def status() -> None:
    """Machines, VIP holders and crm_mon of the lab."""
    _need_root()
    try:
        click.echo(labmod.status(labmod.load(lab_dir_from_env())))
    except LabError as exc:
        _fail(exc)


@lab.command()
@click.argument("node")
@click.option("--mode", type=click.Choice(labmod.FAIL_MODES), default="crash", show_default=True)
def fail(node: str, mode: str) -> None:
    """Break NODE: crash it (power off) or partition it from the others."""
    _need_root()
    try:
        labmod.fail(labmod.load(lab_dir_from_env()), node, mode)
    except LabError as exc:
        _fail(exc)


@lab.command()
def heal() -> None:
    """Reconnect and boot every node, and wait until all are online."""
    _need_root()
    try:
        labmod.heal(labmod.load(lab_dir_from_env()), log=click.echo)
    except LabError as exc:
        _fail(exc)


@lab.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("machine")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(machine: str, argv: tuple[str, ...]) -> None:
    """Run ARGV inside MACHINE (node1, node2, ..., client)."""
    _need_root()
    try:
        code = labmod.exec_in(labmod.load(lab_dir_from_env()), machine, argv)
    except LabError as exc:
        _fail(exc)
    raise SystemExit(code)


@lab.command()
def down() -> None:
    """Remove every namespace, process, loop device and file of the lab."""
    _need_root()
    try:
        labmod.down(lab_dir_from_env(), log=click.echo)
    except LabError as exc:
        _fail(exc)


commands = [lab]
