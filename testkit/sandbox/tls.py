"""Throwaway certificates for Bacula's certificate TLS: a CA and one certificate for loopback.

Bacula's TLS client checks the server's certificate against the host it connected to (a
subjectAltName DNS or IP entry, else the CN; 127.0.0.1 also matches "localhost"), and a
server with `TLS Verify Peer` asks for the client's certificate and checks it against its CA.
One certificate for localhost and 127.0.0.1, good for both ends, serves every daemon and
console of a sandbox site.
"""

from __future__ import annotations

import grp
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Certificates", "make_certificates"]

OPENSSL = "/usr/bin/openssl"


@dataclass(frozen=True)
class Certificates:
    """Where a site's TLS files are: the CA's certificate, ours and its key (PEM)."""

    ca: Path
    certificate: Path
    key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(
        [OPENSSL, *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    )


def make_certificates(directory: Path, group: str | None = "bacula", days: int = 2) -> Certificates:
    """A CA and a certificate it signs for localhost/127.0.0.1 (server and client use), in
    `directory` (created). With `group`, the files are readable by that group: daemons that
    dropped privileges read them again at a reload."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = "ca.key", "ca.pem", "bacula.key", "bacula.csr", "bacula.pem"
    ext = directory / "bacula.ext"
    ext.write_text(
        "basicConstraints = CA:FALSE\n"
        "keyUsage = digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth, clientAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
    )
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(
        "req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", str(days),
        "-subj", "/CN=bacula-ha sandbox CA", cwd=directory,
    )  # fmt: skip
    _openssl(
        "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost", cwd=directory
    )
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
        "-out", cert, "-days", str(days), "-extfile", ext.name, cwd=directory,
    )  # fmt: skip
    for name in (ca_key, csr, ext.name, "ca.srl"):
        (directory / name).unlink(missing_ok=True)
    if group is not None:
        gid = grp.getgrnam(group).gr_gid
        for name in (ca, cert, key):
            os.chown(directory / name, 0, gid)
            (directory / name).chmod(0o640)
        os.chown(directory, 0, gid)
        directory.chmod(0o750)
    return Certificates(directory / ca, directory / cert, directory / key)
