"""Shared fixtures (database sandboxes, installed agents), the fast tier, the fuzzer's options."""

from __future__ import annotations

import pytest

from tests.fixtures_agents import *  # noqa: F403
from tests.fixtures_agents import BACULA13, NOT_BUILT, bacula13_prefix
from tests.fixtures_bacula import *  # noqa: F403
from tests.fixtures_db import *  # noqa: F403

# The fast tier (`scripts/test --fast`, `pytest -m fast`): tests that need neither root nor any
# daemon. Listed here, in one place, by module; a test of these modules that asks for one of
# SLOW_FIXTURES (a real server, the system OCF root, a lab) or is marked `slow` stays in the
# full run.
FAST_MODULES = frozenset(
    {
        "test_alert",
        "test_architecture",
        "test_catalog_unit",
        "test_versions",
        "test_check",
        "test_cli_secrets",
        "test_fuzz_agents",
        "test_generator_alerts",
        "test_generator_connectivity",
        "test_generator_formats",
        "test_generator_golden",
        "test_generator_haresources",
        "test_generator_prefix",
        "test_generator_progress",
        "test_generator_quorum",
        "test_generator_schema",
        "test_lab_two_dc_config",
        "test_hardening_unit",
        "test_schedule",
        "test_status_paths",
        "test_status_watch",
        "test_deploy_guide",
        "test_lab_remote_unit",
        "test_metadata",
        "test_ocf_unit",
        "test_packaging_man",
        "test_progress",
        "test_protocol",
    }
)
SLOW_FIXTURES = frozenset(
    {
        "ocf_root",
        "ocf_agents",
        "daemons",
        "noisy_daemons",
        "site_factory",
        "lab",
        "stack_lab",
        *(f"{kind}_{what}" for kind in ("pg", "mariadb") for what in ("server", "catalog")),
        *(f"{kind}_{what}" for kind in ("pg", "mariadb") for what in ("factory", "spare")),
        "pg_spare_server",
        "mariadb_spare_server",
        "pg_catalog13",
        "mariadb_catalog13",
        "bacula13_install",
    }
)


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
    fast = pytest.mark.fast
    for item in items:
        # The 13.0.3 tier (scripts/test builds it first): skipped when it is not built.
        if item.get_closest_marker(BACULA13) and bacula13_prefix() is None:
            item.add_marker(pytest.mark.skip(reason=NOT_BUILT))
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if (
            module not in FAST_MODULES
            or item.get_closest_marker("lab")
            or item.get_closest_marker("slow")
        ):
            continue
        if SLOW_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())):
            item.add_marker(fast)
