"""`bacula-ha confsync ...`: the admin commands of config sync, printed from its public face."""

from __future__ import annotations

import os

import click

from .bacula import confsync as cs
from .cliout import fail
from .ocf.deadline import Deadline
from .ocf.errors import OCFError
from .ocf.log import Logger

DEFAULT_RSCTMP = "/run/resource-agents"
# No Pacemaker timeout bounds an admin's command (the agent's admin actions use the same).
DEFAULT_TIMEOUT = 600.0


def _rsctmp() -> str:
    return os.environ.get("HA_RSCTMP", "") or DEFAULT_RSCTMP


_rsctmp_option = click.option(
    "--rsctmp",
    default=_rsctmp,
    show_default="$HA_RSCTMP or /run/resource-agents",
    help="Where the active instance keeps its state.",
)
_instance_option = click.option(
    "--instance", default="", help="Resource id, when several instances run on this node."
)
_timeout_option = click.option(
    "--timeout", default=DEFAULT_TIMEOUT, show_default=True, help="Seconds at most."
)


def _instance(rsctmp: str, instance: str) -> cs.Instance:
    try:
        return cs.saved_instance(rsctmp, instance)
    except OCFError as exc:
        fail("confsync", exc.reason)


def _log() -> Logger:
    return Logger.from_environ("bacula-confsync", os.environ)


@click.group("confsync")
def confsync_group() -> None:
    """Status, backups, immediate sync and rollback of the active bacula-confsync."""


@confsync_group.command("status")
@_rsctmp_option
@_instance_option
def status_command(rsctmp: str, instance: str) -> None:
    """Each peer's last good sync, failures and drift (from this node's state file)."""
    inst = _instance(rsctmp, instance)
    click.echo(cs.text.status(cs.status(inst) or {}, inst.config), nl=False)


@confsync_group.command("backups")
@_rsctmp_option
@_instance_option
@_timeout_option
def backups_command(rsctmp: str, instance: str, timeout: float) -> None:
    """The backups held here and on every peer."""
    inst = _instance(rsctmp, instance)
    listing = cs.list_backups(inst.config, Deadline.after(timeout))
    click.echo(cs.text.backups(listing), nl=False)


@confsync_group.command("sync")
@_rsctmp_option
@_instance_option
@_timeout_option
def sync_command(rsctmp: str, instance: str, timeout: float) -> None:
    """Push now with the active instance's parameters."""
    inst = _instance(rsctmp, instance)
    try:
        report = cs.sync_instance(inst, Deadline.after(timeout), _log(), require_running=False)
    except OCFError as exc:
        fail("confsync", exc.reason)
    if report is None:
        fail("confsync", "another sync is running")
    click.echo(cs.text.report(report), nl=False)
    if report.degraded:
        fail("confsync", report.reason())


@confsync_group.command("rollback")
@click.argument("stamp", required=False)
@click.option("--local", is_flag=True, help="Restore this node's own backup; no network.")
@click.option("--from", "source_peer", default=None, help="Take the backup from this peer.")
@_rsctmp_option
@_instance_option
@_timeout_option
def rollback_command(
    stamp: str | None,
    local: bool,
    source_peer: str | None,
    rsctmp: str,
    instance: str,
    timeout: float,
) -> None:
    """Undo the last push: the previous tree (or STAMP) back here and on every peer."""
    inst = _instance(rsctmp, instance)
    try:
        if local:
            click.echo(cs.text.rollback_here(cs.rollback_here(inst, stamp)), nl=False)
            return
        origin, report = cs.rollback_instance(
            inst, Deadline.after(timeout), _log(), stamp, source_peer
        )
    except OCFError as exc:
        fail("confsync", exc.reason)
    click.echo(cs.text.rollback(origin, report), nl=False)
    if report.degraded:
        fail("confsync", report.reason())


commands = [confsync_group]
