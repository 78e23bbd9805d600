"""Errors of the site package: every problem names the file, the line where known, and the field."""

from __future__ import annotations

from dataclasses import dataclass


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


def secret_values(document: object, secret: bool = False) -> tuple[str, ...]:
    """Every value under a key that names a secret (ocf.redact's rule), anywhere in a parsed
    TOML document: what no message about it may show."""
    from bacula_ha.ocf.redact import is_secret_name

    if isinstance(document, dict):
        return tuple(
            v
            for key, value in document.items()
            for v in secret_values(value, secret or is_secret_name(str(key)))
        )
    if isinstance(document, list):
        return tuple(v for item in document for v in secret_values(item, secret))
    if secret and isinstance(document, str | int | float) and not isinstance(document, bool):
        return (str(document),)
    return ()


class SiteModelError(Exception):
    """Base class of every error the site package raises; a command turns each into a message."""


class SiteError(SiteModelError):
    """A site description is invalid; carries every problem found, not only the first."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(p.format(source) for p in problems))


class AgentUnavailableError(SiteModelError):
    """One of our agents is missing from this installation: its parameters cannot be checked."""
