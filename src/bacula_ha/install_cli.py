"""`bacula-ha install`: the click layer over bacula_ha.install."""

from __future__ import annotations

from pathlib import Path

import click

from .install import InstallError, install, uninstall


@click.command("install")
@click.option(
    "--ocf-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/usr/lib/ocf"),
    show_default=True,
    help="OCF root; agents go into OCF_ROOT/resource.d/bacula/.",
)
@click.option("--uninstall", "remove", is_flag=True, help="Remove exactly what was installed.")
def install_command(ocf_root: Path, remove: bool) -> None:
    """Install the OCF agents (ocf:bacula:*) with this interpreter, isolated (-I)."""
    try:
        changes = uninstall(ocf_root) if remove else install(ocf_root)
    except InstallError as exc:
        raise click.ClickException(str(exc)) from None
    for change in changes:
        click.echo(f"{change.action:9} {change.path}")


commands = [install_command]
