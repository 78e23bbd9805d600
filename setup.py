"""Build step: copy the templates and example sites into the package (bacula_ha/_data/).

crm-templates/ and examples/ stay at the top of the source tree; a built wheel (and so the Debian
package) carries a copy, found at run time through importlib.resources (bacula_ha/data.py).
Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
# Keep in step with bacula_ha.data.SHIPPED (tests/test_packaging.py checks the wheel).
SHIPPED = {"crm-templates": ("*.j2",), "examples": ("*.toml",)}


class BuildPyWithData(build_py):
    """build_py, plus the shipped data files under build_lib/bacula_ha/_data/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return  # an editable install reads them from the source tree
        for directory, patterns in SHIPPED.items():
            target = Path(self.build_lib, "bacula_ha", "_data", directory)
            target.mkdir(parents=True, exist_ok=True)
            for pattern in patterns:
                for source in sorted((HERE / directory).glob(pattern)):
                    shutil.copyfile(source, target / source.name)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        outputs = list(super().get_outputs(include_bytecode))
        for directory, patterns in SHIPPED.items():
            for pattern in patterns:
                for source in sorted((HERE / directory).glob(pattern)):
                    outputs.append(
                        str(Path(self.build_lib, "bacula_ha", "_data", directory, source.name))
                    )
        return outputs


setup(cmdclass={"build_py": BuildPyWithData})
