"""Errors of the generator: every problem names the file, the line where known, and the field."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from dataclasses import dataclass
else:
    from bacula_ha.ocf.record import dataclass  # see schema.py: light records at run time


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a site description."""

    field: str
    message: str
    line: int | None = None

    def format(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return (
            f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"
        )


class GeneratorError(Exception):
    """Base class of every error the generator reports to its user."""


class SiteError(GeneratorError):
    """A site description is invalid; carries every problem found, not only the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(p.format(source) for p in problems))


class HaresourcesError(GeneratorError):
    """An haresources file cannot be translated."""
