"""The bacula-fd agent: a file daemon that follows the data the cluster moves."""

from __future__ import annotations

from ..bacula.config import Resources
from ..bacula.daemon import Daemon, DaemonAgent, DaemonParams, Kind, common_parameters
from ..ocf.log import Logger
from ..ocf.metadata import Action, MetaData
from .storage import director_probe

KIND = Kind(
    agent="bacula-fd",
    json_tool="bfdjson",
    resource="FileDaemon",
    port_key="FdPort",
    address_key="FdAddress",
    default_port=9102,
    title="file daemon",
)

METADATA = MetaData(
    name="bacula-fd",
    version="0.1.0",
    shortdesc="Bacula file daemon (floating)",
    longdesc=(
        "Runs a Bacula file daemon bound to a virtual IP, for data the cluster itself moves "
        "(a clustered file server, the catalog dump). monitor depth 0 checks the process; "
        "depth 10 authenticates as the configured director, so a wedged daemon fails. There "
        "is no depth 20: nothing deeper than a protocol answer means anything for a file "
        "daemon (what it backs up is checked by the resources that own that data); a depth-20 "
        "request falls back to depth 10. No reload: the file daemon needs a restart."
    ),
    parameters=common_parameters(KIND),
    actions=(
        Action("start", timeout=60),
        Action("stop", timeout=60),
        Action("monitor", timeout=20, interval=10, depth=0),
        Action("monitor", timeout=20, interval=31, depth=10),
        Action("validate-all", timeout=30),
        Action("meta-data", timeout=5),
    ),
)


class FileDaemonAgent(DaemonAgent[DaemonParams]):
    kind = KIND
    metadata = METADATA
    depths = (0, 10)  # nothing deeper than a protocol answer means anything here

    def answer(
        self, p: DaemonParams, res: Resources, daemon: Daemon, timeout: float, log: Logger
    ) -> None:
        director_probe(res, daemon, timeout, "fd")


AGENT = FileDaemonAgent()
