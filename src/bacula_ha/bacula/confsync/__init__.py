"""Configuration sync: the package's public face, for the agent, the CLI and the director."""

# Which module answers which question (docs/confsync.md has the same map):
#   model      the records: SyncConfig, Peer, PeerResult, SyncReport, Backups; the errors
#   settings   the agent's parameters: declared, parsed into a SyncConfig, checked on this node
#   state      an instance here: state file and lock (ocf/state.py), saved parameters, the
#              syncs and rollbacks run under the lock, the director's request_sync
#   engine     one sync: source check, scan, transfer, swap, per peer in parallel
#   check      the source's test before a push (bacula/configtest.py)
#   transport  ssh, rsync, the helper program sent to peers, the deadline watchdog
#   remote     the helper program itself (runs on the peers; standard library only)
#   rollback   backups listing, rollback from a peer, local rollback
#   cluster    crm_node and the node attribute
#   text       what the admin commands print

from . import text
from .cluster import ATTRIBUTE, ATTRIBUTE_REFRESH, cluster_nodes
from .engine import sync
from .model import (
    CHECK_MODES,
    DEFAULT_EXCLUDES,
    DEFAULT_PATHS,
    Backups,
    ConfigCheckFailed,
    Peer,
    PeerResult,
    SyncConfig,
    SyncError,
    SyncReport,
    config_from_json,
    config_to_json,
    replace,
)
from .rollback import list_backups, rollback, rollback_local
from .settings import (
    PARAMETERS,
    check_node,
    mux_dir,
    parse_paths,
    parse_targets,
    resolve_targets,
)
from .settings import parse as parse_parameters
from .state import (
    Instance,
    Lock,
    active_states,
    begin,
    forget,
    instance,
    load_state,
    request_sync,
    rollback_here,
    rollback_instance,
    save_state,
    saved_instance,
    state_path,
    status,
    sync_instance,
)
from .transport import RSYNC, SSH, close_connection

__all__ = [
    "ATTRIBUTE",
    "ATTRIBUTE_REFRESH",
    "CHECK_MODES",
    "DEFAULT_EXCLUDES",
    "DEFAULT_PATHS",
    "PARAMETERS",
    "RSYNC",
    "SSH",
    "Backups",
    "ConfigCheckFailed",
    "Instance",
    "Lock",
    "Peer",
    "PeerResult",
    "SyncConfig",
    "SyncError",
    "SyncReport",
    "active_states",
    "begin",
    "check_node",
    "close_connection",
    "cluster_nodes",
    "config_from_json",
    "config_to_json",
    "forget",
    "instance",
    "list_backups",
    "load_state",
    "mux_dir",
    "parse_parameters",
    "parse_paths",
    "parse_targets",
    "replace",
    "request_sync",
    "resolve_targets",
    "rollback",
    "rollback_here",
    "rollback_instance",
    "rollback_local",
    "save_state",
    "saved_instance",
    "state_path",
    "status",
    "sync",
    "sync_instance",
    "text",
]
