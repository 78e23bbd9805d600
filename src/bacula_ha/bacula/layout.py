"""Where a Bacula install keeps its programs, scripts and libraries: Debian's or bacula.org's."""

from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from ..ocf.record import dataclass

# bacula.org's community packages put everything under one prefix.
BACULA_ORG_PREFIX = "/opt/bacula"


@dataclass(frozen=True)
class Layout:
    """The directories of one Bacula install."""

    bindir: str  # the daemons, b*json, bconsole
    etc: str  # the daemons' configuration files
    scripts: str  # make_*_tables, update_*_tables, grant_*_privileges
    libdir: str  # libbaccats-<backend>-<version>.so
    working: str  # WorkingDirectory, PidDirectory
    prefix: str = ""  # bacula.org's one prefix, "" for Debian's spread

    def tool(self, name: str) -> str:
        """A program of this install: bacula-dir, bdirjson, bconsole..."""
        return os.path.join(self.bindir, name)

    def conf(self, name: str) -> str:
        """A configuration file of this install: bacula-dir.conf, bconsole.conf..."""
        return os.path.join(self.etc, name)


DEBIAN = Layout(
    bindir="/usr/sbin",
    etc="/etc/bacula",
    scripts="/usr/share/bacula-director",
    libdir="/usr/lib/bacula",
    working="/var/lib/bacula",
)


def under(prefix: str) -> Layout:
    """bacula.org's layout: PREFIX/bin, etc, scripts, lib, working (see `scripts/build-bacula`)."""
    prefix = prefix.rstrip("/") or "/"
    return Layout(
        bindir=os.path.join(prefix, "bin"),
        etc=os.path.join(prefix, "etc"),
        scripts=os.path.join(prefix, "scripts"),
        libdir=os.path.join(prefix, "lib"),
        working=os.path.join(prefix, "working"),
        prefix=prefix,
    )


def of_binary(binary: str) -> Layout:
    """The install a daemon binary belongs to: PREFIX/bin/bacula-dir is bacula.org's layout
    under PREFIX (when PREFIX/etc or PREFIX/scripts is there), anything else Debian's with
    the binary's own directory for the tools."""
    bindir = os.path.dirname(binary) or DEBIAN.bindir
    if bindir == DEBIAN.bindir:
        return DEBIAN
    parent = os.path.dirname(bindir)
    own = any(os.path.isdir(os.path.join(parent, d)) for d in ("scripts", "etc"))
    if os.path.basename(bindir) == "bin" and parent not in ("/", "/usr", "/usr/local") and own:
        return under(parent)
    return Layout(
        bindir=bindir,
        etc=DEBIAN.etc,
        scripts=DEBIAN.scripts,
        libdir=DEBIAN.libdir,
        working=DEBIAN.working,
    )


def of_config_dir(etc: str) -> Layout:
    """The install whose configuration directory `etc` is: PREFIX/etc with PREFIX/bin beside
    it is bacula.org's layout under PREFIX, anything else Debian's."""
    etc = os.path.normpath(etc)
    parent = os.path.dirname(etc)
    named = os.path.basename(etc) == "etc" and parent not in ("/", "/usr", "/usr/local")
    return under(parent) if named and os.path.isdir(os.path.join(parent, "bin")) else DEBIAN


def tool_beside(binary: str, tool: str) -> str:
    """A Bacula tool (bdirjson, bconsole...) beside the daemon binary, else Debian's."""
    beside = of_binary(binary).tool(tool)
    return beside if os.access(beside, os.X_OK) else DEBIAN.tool(tool)
