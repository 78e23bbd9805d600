"""Shared fixtures: the database sandboxes, installed agents in a private OCF root."""

from __future__ import annotations

from tests.fixtures_agents import *  # noqa: F403
from tests.fixtures_bacula import *  # noqa: F403
from tests.fixtures_db import *  # noqa: F403
