"""Where a director's catalog listens, and a bounded connect to it (no SQL, no password)."""

from __future__ import annotations

import os
from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}


def catalog_backend(catalog: Mapping[str, Any]) -> str:
    driver = str(catalog.get("DbDriver", "") or "").lower()
    return "mysql" if "mysql" in driver or "maria" in driver else "postgresql"


def catalog_endpoint(catalog: Mapping[str, Any]) -> tuple[str, int]:
    """(host or socket path, port) of a Catalog resource as bdirjson prints it (`Address`)."""
    backend = catalog_backend(catalog)
    port = int(catalog.get("DbPort") or _DEFAULT_PORTS[backend])
    socket_path = str(catalog.get("DbSocket", "") or "")
    host = str(catalog.get("Address", "") or catalog.get("DbAddress", "") or "")
    if socket_path:
        return socket_path, port
    if host.startswith("/"):  # libpq: a directory holding the socket
        return os.path.join(host, f".s.PGSQL.{port}"), port
    if not host:
        # Both clients default to their local socket.
        default = "/run/postgresql" if backend == "postgresql" else "/run/mysqld/mysqld.sock"
        return (
            os.path.join(default, f".s.PGSQL.{port}") if backend == "postgresql" else default
        ), port
    return host, port


def try_connect(where: tuple[str, int], timeout: float) -> str:
    """Connect and close at once; an error text, or "" when something accepted."""
    import socket

    host, port = where
    try:
        if host.startswith("/"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(host)
        else:
            with socket.create_connection((host, port), timeout=timeout):
                pass
    except OSError as exc:
        return exc.strerror or str(exc) or type(exc).__name__
    return ""
