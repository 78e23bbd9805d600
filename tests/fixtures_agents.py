"""Fixtures for agent tests: the agents installed in a private OCF root, how to run them, and
which Bacula install the daemons come from (Debian's 9.6.7, or 13.0.3 for tests marked bacula13)."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from bacula_ha.bacula.layout import DEBIAN, Layout, under
from bacula_ha.install import install, provider_dir

from .tiers import slow_fixture

__all__ = ["AgentRun", "bacula13_install", "bacula_install", "ocf_root", "run_agent"]

# The host's real OCF root, where ocf:heartbeat:* lives; our agents are installed there too
# (as `bacula-ha install` does) for crm_resource / pcs, which know no other root.
SYSTEM_OCF_ROOT = Path("/usr/lib/ocf")


# -- the Bacula install under test -------------------------------------------------------------

BUILD_BACULA = Path(__file__).resolve().parent.parent / "scripts" / "build-bacula"
BACULA13 = "bacula13"  # the marker of tests that run on the 13.0.3 build


@functools.cache
def bacula13_prefix() -> str | None:
    """Where scripts/build-bacula built 13.0.3 (its --check), None when it is not built."""
    try:
        proc = subprocess.run(
            [str(BUILD_BACULA), "--check"], capture_output=True, text=True, timeout=30
        )
    except OSError:
        return None
    prefix = proc.stdout.strip()
    return prefix if proc.returncode == 0 and prefix else None


NOT_BUILT = "Bacula 13.0.3 is not built: run scripts/build-bacula (scripts/test does)"


@pytest.fixture(scope="session")
@slow_fixture
def bacula13_install() -> Layout:
    """The 13.0.3 build in bacula.org's layout (skips the test when it is not built)."""
    prefix = bacula13_prefix()
    if prefix is None:
        pytest.skip(NOT_BUILT)
    return under(prefix)


@pytest.fixture
def bacula_install(request: pytest.FixtureRequest) -> Layout:
    """The Bacula install a test's daemons, consoles and catalog scripts come from: Debian's
    9.6.7 (/usr/sbin, /usr/share/bacula-director), or the 13.0.3 build for a test marked
    `bacula13`. site_factory and the catalog fixtures follow it."""
    if request.node.get_closest_marker(BACULA13):
        return request.getfixturevalue("bacula13_install")  # type: ignore[no-any-return]
    return DEBIAN


@pytest.fixture(scope="session")
@slow_fixture
def ocf_root() -> Iterator[Path]:
    """Agents installed into the system OCF root (idempotent; left installed, like a package)."""
    install(SYSTEM_OCF_ROOT, sys.executable)
    yield SYSTEM_OCF_ROOT


@dataclass(frozen=True)
class AgentRun:
    code: int
    stdout: str
    stderr: str

    @property
    def reason(self) -> str:
        lines = [ln for ln in self.stderr.splitlines() if ln.startswith("ocf-exit-reason:")]
        return lines[-1].removeprefix("ocf-exit-reason:") if lines else ""


def run_agent(
    name: str,
    action: str,
    params: Mapping[str, str],
    *,
    depth: int | None = None,
    interval_ms: int | None = 10_000,
    timeout_ms: int = 20_000,
    rsctmp: Path | None = None,
    instance: str = "test",
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> AgentRun:
    """Run an installed agent as Pacemaker would: a bare environment and OCF variables."""
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "OCF_ROOT": str(SYSTEM_OCF_ROOT),
        "OCF_RESOURCE_INSTANCE": instance,
        "OCF_RESOURCE_TYPE": name,
        "OCF_RESOURCE_PROVIDER": "bacula",
        "OCF_RA_VERSION_MAJOR": "1",
        "OCF_RA_VERSION_MINOR": "1",
        "OCF_RESKEY_CRM_meta_timeout": str(timeout_ms),
    }
    if rsctmp is not None:
        env["HA_RSCTMP"] = str(rsctmp)
    if action == "monitor" and interval_ms is not None:
        env["OCF_RESKEY_CRM_meta_interval"] = str(interval_ms)
    if depth is not None:
        env["OCF_CHECK_LEVEL"] = str(depth)
    env.update({f"OCF_RESKEY_{k}": v for k, v in params.items()})
    env.update(extra_env or {})
    proc = subprocess.run(
        [str(provider_dir(SYSTEM_OCF_ROOT) / name), action],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return AgentRun(proc.returncode, proc.stdout, proc.stderr)


def environ_without_python() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
