"""Which tier a test is in, from what it declares: its markers and the fixtures it uses.

The fast tier (`scripts/test --fast`, `pytest -m fast`) is every test that needs neither root nor
a daemon nor the network; tests/conftest.py marks it at collection. A test is in the full run only
when it is marked `lab`, `bacula13`, `slow` or `root`, or when it uses, directly or through other
fixtures, a fixture decorated with `@slow_fixture` (a real server, the system OCF root, a lab, a
built package). Nothing lists modules: a pure test beside daemon tests is fast all the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import TypeVar

import pytest

F = TypeVar("F", bound=Callable[..., object])

# The markers that keep a test out of the fast tier (declared in pyproject.toml).
FULL_RUN_MARKERS = ("lab", "bacula13", "slow", "root")
# The fixtures decorated with @slow_fixture, by name: filled as the fixture modules are imported.
SLOW_FIXTURES: set[str] = set()


def slow_fixture(function: F) -> F:
    """Put under `@pytest.fixture`: a test that uses this fixture is not in the fast tier.

    For a fixture that starts a daemon, needs root, the network or minutes; a fixture that only
    uses such a fixture needs no decorator (pytest's fixture closure carries it), but one that
    reaches it through `request.getfixturevalue` does."""
    SLOW_FIXTURES.add(function.__name__)
    return function


def is_fast(markers: Iterable[str], fixtures: Iterable[str]) -> bool:
    """Whether a test with these marker names and this fixture closure is in the fast tier."""
    return not set(markers) & set(FULL_RUN_MARKERS) and SLOW_FIXTURES.isdisjoint(fixtures)


def sort_into_tiers(items: list[pytest.Item]) -> None:
    """Mark the fast tier `fast`; skip a `root` test when not root (it is never fast)."""
    for item in items:
        markers = {mark.name for mark in item.iter_markers()}
        root = item.get_closest_marker("root")
        if root is not None and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason=root.kwargs.get("reason", "needs root")))
        if is_fast(markers, getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.fast)
