"""The Debian package: built by scripts/build-deb, installed with apt, tested, purged.

The host must not change: the suite's own agents live in /usr/lib/ocf/resource.d/bacula and
other tests use them meanwhile. So apt runs in a private mount namespace where /usr, /etc and
/var are overlays whose writes land in a scratch directory: inside, the package is installed
over a system without our agents, checked (ocf-tester, crm_resource, man), and purged; what
the purge left behind is whatever remains in the overlays' upper directories. Outside, nothing
ever changes, and the namespace dies with its last process.

scripts/build-deb builds HEAD (a clean checkout), as CI would: commit before running this.
"""

from __future__ import annotations

import gzip
import os
import re
import stat
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from bacula_ha import __version__, manpages
from bacula_ha.agents.registry import AGENT_MODULES
from bacula_ha.install import LIB_TOOLS

from .fixtures_bacula import DIRECTOR, SiteFactory
from .test_packaging import TEST_KIT
from .tiers import slow_fixture

ROOT = Path(__file__).resolve().parent.parent
OVERLAID = ("usr", "etc", "var")
# dpkg's and apt's own records, caches and logs: changed by any install, not the package's files.
BOOKKEEPING = ("var/lib/dpkg", "var/lib/apt", "var/cache", "var/log")
PROVIDER_DIR = "/usr/lib/ocf/resource.d/bacula"
ALERT_DIR = "/usr/lib/ocf/lib/bacula"  # the alert agent's directory
HIDDEN = (PROVIDER_DIR, ALERT_DIR)
# Where the package puts files: listed before the install and after the purge.
LISTED = (
    "/usr/bin",
    "/usr/lib/ocf",
    "/usr/lib/python3/dist-packages",
    "/usr/share/man/man1",
    "/usr/share/man/man5",
    "/usr/share/man/man7",
    "/usr/share/doc",
)

pytestmark = pytest.mark.root(reason="apt and mount namespaces need root")


@pytest.fixture(scope="session")
@slow_fixture
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """(the .deb, lintian's report): scripts/build-deb, once per session."""
    out = tmp_path_factory.mktemp("deb")
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-deb"), str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert build.returncode == 0, build.stderr[-4000:]
    deb = Path(build.stdout.strip().splitlines()[-1])
    assert deb.name == f"bacula-ha_{__version__}_all.deb"
    return deb, build.stderr


class Namespace:
    """A process holding a private mount namespace with /usr, /etc and /var overlaid."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        # The child says "ready" only after unshare(2): nothing is mounted in the host's namespace.
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", "echo ready; exec cat"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdout.readline() == "ready\n"
        ours = os.readlink(f"/proc/{self.proc.pid}/ns/mnt")
        assert ours != os.readlink("/proc/self/ns/mnt")
        for top in OVERLAID:
            upper, work = scratch / f"{top}.upper", scratch / f"{top}.work"
            upper.mkdir()
            work.mkdir()
            options = f"lowerdir=/{top},upperdir={upper},workdir={work}"
            self.run("mount", "-t", "overlay", "overlay", "-o", options, f"/{top}")

    def run(
        self, *argv: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        base = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        out = subprocess.run(
            ["nsenter", "-t", str(self.proc.pid), "-m", "--", *argv],
            env={**base, **(env or {})},
            cwd="/",
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check:
            assert out.returncode == 0, f"{argv}: {out.stdout}{out.stderr}"
        return out

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()  # cat ends; the namespace goes with its last process
        self.proc.wait(timeout=30)

    def listing(self) -> set[str]:
        out = self.run("find", *LISTED, "-maxdepth", "3", "-printf", "%y %p\n")
        return set(out.stdout.splitlines())


@pytest.fixture
def namespace(tmp_path: Path) -> Iterator[Namespace]:
    ns = Namespace(tmp_path)
    try:
        yield ns
    finally:
        ns.close()


def test_lintian_reports_no_errors(built: tuple[Path, str]) -> None:
    _, report = built
    assert not re.search(r"^E: ", report, re.MULTILINE), report
    # Kept: none today; the one experimental tag (executable-in-usr-lib) is overridden with its
    # reason in debian/bacula-ha.lintian-overrides.
    assert not re.search(r"^W: ", report, re.MULTILINE), report


def test_package_carries_no_test_kit(built: tuple[Path, str]) -> None:
    deb, _ = built
    listing = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    paths = [line.split()[5] for line in listing.splitlines()]
    assert any(p.endswith("/bacula_ha/lab/cli.py") for p in paths), listing
    assert [p for p in paths if TEST_KIT.search(p)] == []


def test_package_carries_the_documentation(built: tuple[Path, str], tmp_path: Path) -> None:
    """README.md and docs/*.md, byte for byte and not gzipped: the relative links work."""
    deb, _ = built
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True, timeout=120)
    doc = tmp_path / "usr" / "share" / "doc" / "bacula-ha"
    expected = ["README.md", *(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))]
    assert len(expected) > 5
    shipped = sorted(str(p.relative_to(doc)) for p in doc.rglob("*.md*"))
    assert shipped == sorted(expected)
    for name in expected:
        # build-deb builds HEAD: compare with the committed file, not the work tree's.
        committed = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"HEAD:{name}"], capture_output=True, check=True
        ).stdout
        assert (doc / name).read_bytes() == committed, name
        assert stat.S_IMODE((doc / name).stat().st_mode) == 0o644, name


def test_package_installs_working_agents_and_purges_clean(
    built: tuple[Path, str], namespace: Namespace, site_factory: SiteFactory, tmp_path: Path
) -> None:
    deb, _ = built
    ns = namespace
    # A system that never had our agents: the suite's copy is hidden in the overlay only.
    ns.run("rm", "-rf", *HIDDEN)
    before = ns.listing()

    apt = {"DEBIAN_FRONTEND": "noninteractive"}
    ns.run("apt-get", "install", "-y", "-q", "--no-install-recommends", str(deb), env=apt)
    status = ns.run("dpkg-query", "-W", "-f", "${Status} ${Version}", "bacula-ha").stdout
    assert status == f"install ok installed {__version__}"

    # The command and the package: Debian's python3, the package in dist-packages.
    assert f"version {__version__}" in ns.run("bacula-ha", "--version").stdout
    where = ns.run("/usr/bin/python3", "-I", "-c", "import bacula_ha; print(bacula_ha.__file__)")
    assert where.stdout.startswith("/usr/lib/python3/dist-packages/bacula_ha/")
    check = ns.run("bacula-ha", "install", "--check")
    # ... and the lib tools: the alert agent, pg_ctl-wait.
    assert check.stdout.count("current") == len(AGENT_MODULES) + len(LIB_TOOLS), check.stdout
    for tool in LIB_TOOLS:
        assert ns.run("test", "-x", f"{ALERT_DIR}/{tool}").returncode == 0
    site = "/usr/lib/python3/dist-packages/bacula_ha/_data/examples/lab-site.toml"
    assert "pcs" in ns.run("bacula-ha", "generate", site, "--format", "pcs").stdout

    for agent in AGENT_MODULES:
        path = f"{PROVIDER_DIR}/{agent}"
        assert ns.run("head", "-1", path).stdout == "#!/usr/bin/python3 -I\n"
        own = ns.run(path, "meta-data").stdout
        shown = ns.run("crm_resource", "--show-metadata", f"ocf:bacula:{agent}").stdout
        params = _parameters(own)
        assert params and _parameters(shown) == params
        # The installed page documents exactly what the installed agent declares.
        page_path = ns.run("man", "-w", f"ocf_bacula_{agent}").stdout.strip()
        assert page_path == f"/usr/share/man/man7/ocf_bacula_{agent}.7.gz"
        page = gzip.decompress(_read_in(ns, page_path)).decode()
        for name in params:
            assert f"\n{manpages.bold(name)}\n" in page, (agent, name)
    for name in ("bacula-ha", "bacula-ha-site", *(f"ocf_bacula_{a}" for a in AGENT_MODULES)):
        man = ns.run("man", "--warnings", name, env={"MANWIDTH": "80"})
        assert man.stderr == "" and "NAME" in man.stdout, (name, man.stderr)

    director = DIRECTOR.on(site_factory())
    args = [a for k, v in director.params().items() for a in ("-o", f"{k}={v}")]
    rsctmp = tmp_path / "rsctmp"
    rsctmp.mkdir()
    tester = ns.run(
        "ocf-tester", "-n", "deb-dir", *args, f"{PROVIDER_DIR}/bacula-dir",
        check=False, env={"HA_RSCTMP": str(rsctmp)},
    )  # fmt: skip
    assert tester.returncode == 0 and "passed all tests" in tester.stdout, tester.stdout

    # While installed, both checks below see the package's files (so they can fail).
    assert "usr/bin/bacula-ha" in _left_behind(ns.scratch)
    assert f"f {PROVIDER_DIR}/bacula-dir" in ns.listing() - before

    ns.run("apt-get", "purge", "-y", "-q", "bacula-ha", env=apt)
    assert ns.run("dpkg-query", "-W", "bacula-ha", check=False).returncode != 0
    after = ns.listing()
    assert before == after, (sorted(after - before), sorted(before - after))
    assert _left_behind(namespace.scratch) == []


def _parameters(xml: str) -> list[str]:
    root = ET.fromstring(xml.split("]>", 1)[-1] if "<!DOCTYPE" in xml else xml)
    return [p.attrib["name"] for p in root.iter("parameter")]


def _read_in(ns: Namespace, path: str) -> bytes:
    out = subprocess.run(
        ["nsenter", "-t", str(ns.proc.pid), "-m", "--", "cat", path],
        capture_output=True,
        timeout=60,
        check=True,
    )
    return out.stdout


def _left_behind(scratch: Path) -> list[str]:
    """What the overlays hold that the host had not: files, links, new directories.

    Directories the host has are only copied up; a whiteout (a 0/0 character device) marks a
    removal, and the only one allowed is the provider directory this test hid itself.
    """
    found = []
    for top in OVERLAID:
        upper = scratch / f"{top}.upper"
        for path in sorted(upper.rglob("*")):
            rel = path.relative_to(scratch / f"{top}.upper")
            name = f"{top}/{rel}"
            if name.startswith(BOOKKEEPING):
                continue
            mode = path.lstat().st_mode
            if stat.S_ISDIR(mode) and (Path("/") / name).is_dir():
                continue
            whiteout = stat.S_ISCHR(mode) and os.major(path.lstat().st_rdev) == 0
            if whiteout and f"/{name}" in HIDDEN:
                continue
            found.append(name)
    return found
