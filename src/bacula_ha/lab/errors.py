"""The one exception type the lab raises: the CLI turns it into a message and exit 1."""

from __future__ import annotations


class LabError(Exception):
    """Something in the lab could not be built, reached or torn down."""
