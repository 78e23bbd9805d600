"""`bacula-ha confsync ...`: the click layer over the bacula-confsync admin actions."""

from __future__ import annotations

import os

import click

from .agents import confsync as agent
from .bacula import confsync as cs
from .ocf.deadline import Deadline
from .ocf.errors import OCFError
from .ocf.log import Logger

DEFAULT_RSCTMP = "/run/resource-agents"


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
    "--timeout", default=agent.ADMIN_TIMEOUT, show_default=True, help="Seconds at most."
)


def _config(rsctmp: str, instance: str) -> agent.Config:
    try:
        return agent.saved_config(rsctmp, instance)
    except OCFError as exc:
        raise click.ClickException(exc.reason) from None


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
    config = _config(rsctmp, instance)
    click.echo(agent.format_status(cs.load_state(config.state) or {}, config.sync), nl=False)


@confsync_group.command("backups")
@_rsctmp_option
@_instance_option
@_timeout_option
def backups_command(rsctmp: str, instance: str, timeout: float) -> None:
    """The backups held here and on every peer."""
    config = _config(rsctmp, instance)
    listing = cs.list_backups(config.sync, Deadline.after(timeout))
    click.echo(agent.format_backups(listing), nl=False)


@confsync_group.command("sync")
@_rsctmp_option
@_instance_option
@_timeout_option
def sync_command(rsctmp: str, instance: str, timeout: float) -> None:
    """Push now with the active instance's parameters."""
    config = _config(rsctmp, instance)
    try:
        report = agent.AGENT.locked_sync(
            config, Deadline.after(timeout), _log(), require_running=False
        )
    except OCFError as exc:
        raise click.ClickException(exc.reason) from None
    if report is None:
        raise click.ClickException("another sync is running")
    click.echo(agent.format_report(report), nl=False)
    if report.degraded:
        raise click.ClickException(report.reason())


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
    config = _config(rsctmp, instance)
    try:
        output, report = agent.do_rollback(
            config, Deadline.after(timeout), _log(), stamp, local, source_peer
        )
    except OCFError as exc:
        raise click.ClickException(exc.reason) from None
    click.echo(output, nl=False)
    if report is not None and report.degraded:
        raise click.ClickException(report.reason())


commands = [confsync_group]
