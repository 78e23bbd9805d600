"""sshd in each node and root keys between nodes, for configuration sync (bacula-confsync)."""

from __future__ import annotations

from bacula_ha.lab import machine
from bacula_ha.lab.config import LabConfig
from bacula_ha.lab.run import run


def prepare(cfg: LabConfig, root_keys: bool = True) -> None:
    """Host keys per node; one root key pair shared by the nodes; known_hosts for all of them.

    Fresh machines (root_keys False) get their host keys and sshd only: root's keys are the
    admin's to make and exchange (docs/deploy.md)."""
    keys = cfg.lab_dir / "ssh"
    keys.mkdir(parents=True, exist_ok=True)
    root_key = keys / "id_ed25519"
    if not root_key.exists():
        run(
            [
                "ssh-keygen",
                "-q",
                "-t",
                "ed25519",
                "-N",
                "",
                "-C",
                "bacula-ha-lab",
                "-f",
                str(root_key),
            ]
        )
    known = []
    for m in cfg.cluster_nodes:
        host_key = m.dir / "ssh" / "ssh_host_ed25519_key"
        host_key.parent.mkdir(parents=True, exist_ok=True)
        if not host_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", m.name, "-f", str(host_key)])
        pub = host_key.with_suffix(".pub").read_text().split()
        known.append(f"{m.name},{m.address},{m.cluster_address} {pub[0]} {pub[1]}")
        (m.dir / "ssh" / "sshd_config").write_text(
            "\n".join(
                [
                    f"ListenAddress {m.address}",
                    f"ListenAddress {m.cluster_address}",
                    f"HostKey {host_key}",
                    "PermitRootLogin prohibit-password",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "PidFile /run/sshd.pid",
                    "AuthorizedKeysFile .ssh/authorized_keys",
                    "Subsystem sftp /usr/lib/openssh/sftp-server",
                    "",
                ]
            )
        )
    for m in cfg.cluster_nodes if root_keys else ():
        dot_ssh = m.dir / "fs" / "root" / ".ssh"
        dot_ssh.mkdir(parents=True, exist_ok=True, mode=0o700)
        (dot_ssh / "id_ed25519").write_bytes(root_key.read_bytes())
        (dot_ssh / "id_ed25519").chmod(0o600)
        root_pub = root_key.with_suffix(".pub").read_text()
        (dot_ssh / "id_ed25519.pub").write_text(root_pub)
        (dot_ssh / "authorized_keys").write_text(root_pub)
        (dot_ssh / "authorized_keys").chmod(0o600)
        (dot_ssh / "known_hosts").write_text("\n".join(known) + "\n")


def start(cfg: LabConfig, name: str) -> None:
    m = cfg.node(name)
    conf = m.dir / "ssh" / "sshd_config"
    machine.start_daemon(
        cfg, name, ["/usr/sbin/sshd", "-D", "-e", "-f", str(conf)], "/run/sshd.log"
    )
