"""Files the package reads at run time (templates, example sites), found the same way everywhere.

A wheel or a Debian package carries them inside the package (`bacula_ha/_data/`, copied there by
setup.py's build step), where `importlib.resources` finds them. A checkout or an editable install
has no copy: there they are read from their home in the source tree (`crm-templates/`,
`examples/`), so an edited template is used at once.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

# Source-tree directory -> the files setup.py copies into bacula_ha/_data/<directory>/.
SHIPPED: dict[str, tuple[str, ...]] = {
    "crm-templates": ("*.j2",),
    "examples": ("*.toml",),
}

_SOURCE_TREE = Path(__file__).resolve().parents[2]


class DataNotFound(Exception):
    """A shipped file is neither in the package nor in a source tree beside it."""


def data_path(directory: str, name: str | None = None) -> Path:
    """The directory (or the file `name` in it) of the shipped `directory`."""
    if directory not in SHIPPED:
        raise ValueError(f"{directory!r} is not shipped with bacula-ha")
    packaged = files("bacula_ha").joinpath("_data", directory)
    # Installed packages are plain directories, so the Traversable is a real path.
    candidates = [Path(str(packaged)), _SOURCE_TREE / directory]
    for base in candidates:
        path = base / name if name else base
        if path.exists():
            return path
    wanted = f"{directory}/{name}" if name else directory
    raise DataNotFound(
        f"{wanted} not found (looked in {candidates[0]} and {candidates[1]}): "
        "a broken installation of bacula-ha"
    )
