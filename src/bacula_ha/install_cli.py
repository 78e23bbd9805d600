"""`bacula-ha install`: the click layer over bacula_ha.install."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .cliout import EXIT_FAILURE, EXIT_OK, fail
from .install import InstallError, check, install, uninstall


@click.command("install")
@click.option(
    "--ocf-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("/usr/lib/ocf"),
    show_default=True,
    help="OCF root; agents go into OCF_ROOT/resource.d/bacula/.",
)
@click.option(
    "--interpreter",
    metavar="PATH",
    help="Absolute path of the Python that runs the agents  [default: this one]",
)
@click.option("--uninstall", "remove", is_flag=True, help="Remove exactly what was installed.")
@click.option(
    "--check",
    "only_check",
    is_flag=True,
    help="Change nothing; exit 0 if the installed agents match this package and run, 1 if not.",
)
@click.option(
    "--no-verify",
    "no_verify",
    is_flag=True,
    help="Do not prove the interpreter first (a package build, where it can import bacula-ha"
    " only once the package is installed).",
)
def install_command(
    ocf_root: Path, interpreter: str | None, remove: bool, only_check: bool, no_verify: bool
) -> None:
    """Install the OCF agents (ocf:bacula:*) with this interpreter, isolated (-I).

    The interpreter is proven first, as Pacemaker will run it (isolated, in a bare environment):
    every agent must answer meta-data through its own #! line and the interpreter must import
    what each agent needs. If not, nothing is installed and the reason is printed (exit 1).

    An agent installed by another version of bacula-ha (after an upgrade) is replaced and
    reported as `updated`. With --check: one line per agent (current, missing, stale: another
    version, differs: same version but another interpreter or content, broken: its interpreter
    cannot run it or import what it needs); exit status 0 when every agent is current, 1 when one
    is not, 2 for a usage error.
    """
    if remove and only_check:
        raise click.UsageError("--check and --uninstall exclude each other")
    if no_verify and (remove or only_check):
        raise click.UsageError("--no-verify goes with an install only")
    try:
        if only_check:
            results = check(ocf_root, interpreter)
            for result in results:
                detail = f" ({result.detail})" if result.detail else ""
                click.echo(f"{result.state:9} {result.path}{detail}")
            sys.exit(EXIT_OK if all(r.ok for r in results) else EXIT_FAILURE)
        if remove:
            changes = uninstall(ocf_root)
        else:
            changes = install(ocf_root, interpreter, verify=not no_verify)
    except InstallError as exc:
        fail("install", str(exc))
    for change in changes:
        detail = f" ({change.detail})" if change.detail else ""
        click.echo(f"{change.action:9} {change.path}{detail}")


commands = [install_command]
