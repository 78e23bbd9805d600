"""The `bacula-ha` command: a thin click layer; every subcommand lives beside its library."""

from __future__ import annotations

import importlib

import click

# Subcommand -> (module, attribute). A subcommand's module is imported only when that
# subcommand runs (or help lists them all): `generate` must not pay for the lab, and a
# part being edited cannot break the others. The agents never import this module.
_COMMANDS: dict[str, tuple[str, str]] = {
    "install": ("bacula_ha.install_cli", "install_command"),
    "generate": ("bacula_ha.generator.cli", "generate"),
    "import-haresources": ("bacula_ha.generator.cli", "import_haresources"),
    "lab": ("bacula_ha.lab.cli", "lab"),
    "confsync": ("bacula_ha.confsync_cli", "confsync_group"),
    "check": ("bacula_ha.check.cli", "check_command"),
    "status": ("bacula_ha.status.cli", "status_command"),
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        command = getattr(importlib.import_module(target[0]), target[1])
        assert isinstance(command, click.Command)
        return command


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bacula-ha")
def main() -> None:
    """Pacemaker resource agents, configuration generator and lab for Bacula."""
