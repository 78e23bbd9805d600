"""Shared fixtures of the lab modules: the host left as it was, and the stack lab.

Imported by tests/conftest.py (`from tests.fixtures_lab import *`). Module-scoped: each lab module
that asks gets its own lab, torn down when the module is done (testkit.lab.running_lab).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bacula_ha.lab import stack
from bacula_ha.lab.config import LabConfig
from testkit.lab import host_fingerprint, running_lab

from .tiers import slow_fixture

__all__ = ["host_unchanged", "stack_lab"]


@pytest.fixture(scope="module")
@slow_fixture
def host_unchanged() -> Iterator[None]:
    """The host's cluster files (testkit.lab.HOST_PATHS) are the same after the module's lab:
    the lab lives in namespaces. Ask for it before the lab fixture, so it is checked after."""
    before = host_fingerprint()
    yield
    assert host_fingerprint() == before, "the lab changed host cluster files"


@pytest.fixture(scope="module")
@slow_fixture
def stack_lab(host_unchanged: None) -> Iterator[LabConfig]:
    """The 2-node lab with the Bacula stack of examples/lab-site.toml, for the module."""
    with running_lab(nodes=2, site=stack.default_site()) as cfg:
        yield cfg
