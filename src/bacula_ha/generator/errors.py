"""Errors of the generator beyond the site's own (bacula_ha.site.errors): templates, haresources."""

from __future__ import annotations


class GeneratorError(Exception):
    """Base class of every error the generator reports to its user, besides a site's."""


class HaresourcesError(GeneratorError):
    """An haresources file cannot be translated."""
