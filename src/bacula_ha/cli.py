"""The `bacula-ha` command: a thin click layer; every subcommand lives beside its library."""

from __future__ import annotations

import importlib

import click

# Each entry names a module exposing `commands`, a list of click commands. They are
# imported here, not by the agents: click and jinja2 never sit on an agent's import path.
_COMMAND_MODULES = (
    "bacula_ha.install_cli",
    "bacula_ha.generator.cli",
    "bacula_ha.lab.cli",
    "bacula_ha.confsync_cli",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="bacula-ha")
def main() -> None:
    """Pacemaker resource agents, configuration generator and lab for Bacula."""


for _name in _COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:
        if exc.name != _name:
            raise
        continue  # a part not built yet
    for _command in _module.commands:
        main.add_command(_command)
