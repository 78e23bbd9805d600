"""Shared fixtures (database sandboxes, installed agents, labs), the tiers, the fuzzer's options."""

from __future__ import annotations

import pytest

from tests.fixtures_agents import *  # noqa: F403
from tests.fixtures_agents import BACULA13, NOT_BUILT, bacula13_prefix
from tests.fixtures_bacula import *  # noqa: F403
from tests.fixtures_db import *  # noqa: F403
from tests.fixtures_lab import *  # noqa: F403
from tests.tiers import sort_into_tiers


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bacula-ha fuzzer")
    group.addoption(
        "--fuzz-seed",
        type=int,
        default=None,
        help="seed of tests/test_fuzz_agents.py (default: a fixed seed, the same every run)",
    )
    group.addoption(
        "--fuzz-trials",
        type=int,
        default=None,
        help="trials per agent of tests/test_fuzz_agents.py (default: a few hundred)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # The 13.0.3 tier (scripts/test builds it first): skipped when it is not built.
        if item.get_closest_marker(BACULA13) and bacula13_prefix() is None:
            item.add_marker(pytest.mark.skip(reason=NOT_BUILT))
    # The fast tier, per test from its markers and fixtures.
    sort_into_tiers(items)
