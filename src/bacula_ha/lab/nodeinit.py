"""PID 1 of a lab machine: sets up its private mounts and hostname, then reaps orphans.

Run as `python -m bacula_ha.lab.nodeinit LAB_DIR NAME` in fresh PID, mount and UTS
namespaces. It must stay alive: it holds the machine's mount namespace, and killing it
makes the kernel kill everything in the machine, which is how the lab crashes a node.
Only the standard library is used; nothing here may raise once the machine is ready.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _mount(argv: list[str]) -> None:
    subprocess.run(["mount", *argv], check=True, capture_output=True, text=True)


def setup(spec: dict[str, Any]) -> None:
    """Apply the machine spec written by the host: hostname, tmpfs, binds, directories."""
    socket.sethostname(str(spec["hostname"]))
    # Nothing made here may propagate back to the host's mount namespace.
    _mount(["--make-rprivate", "/"])
    # The project and its interpreter must stay visible although they may live below a
    # directory the machine gets privately (a clone under /tmp or /root): hold them open now
    # and bind them back after the private mounts if those hid them.
    keep = []
    for path in spec.get("keep", []):
        try:
            fd = os.open(path, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            continue
        keep.append((str(path), fd, os.fstat(fd)))
    # Read-only binds (a Bacula build's bin/, lib/, scripts/ at /opt/bacula; the programs of
    # a node upgraded in place, files over Debian's in /usr/sbin): their sources are opened
    # now, before the private mounts could hide them.
    ro_sources = [
        (os.open(str(source), os.O_PATH), str(target))
        for source, target in spec.get("ro_binds", [])
    ]
    for target, mode in spec["tmpfs"]:
        _mount(["-t", "tmpfs", "-o", f"mode={mode},nosuid,nodev", "tmpfs", str(target)])
    for source, target in spec["binds"]:
        _mount(["--bind", str(source), str(target)])
    for path, fd, before in keep:
        try:
            now = os.stat(path)
            hidden = (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino)
        except OSError:
            hidden = True
        if hidden:
            os.makedirs(path, exist_ok=True)
            # --no-canonicalize: mount(8) would resolve the magic link to its (now hidden)
            # path name, and bind the empty directory onto itself.
            _mount(["--no-canonicalize", "--bind", f"/proc/{os.getpid()}/fd/{fd}", path])
        os.close(fd)
    for fd, target in ro_sources:
        source = f"/proc/{os.getpid()}/fd/{fd}"
        _mount(["--no-canonicalize", "--bind", "-o", "ro", source, target])
        os.close(fd)
    for path, user, group, mode in spec["dirs"]:
        os.makedirs(path, exist_ok=True)
        subprocess.run(["chown", f"{user}:{group}", path], check=True)
        os.chmod(path, int(mode, 8))
    os.chdir("/")


def reap_forever() -> None:
    """Reap every child and orphan of the machine; exit on SIGTERM (which ends the machine)."""
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    while True:
        try:
            os.wait()
        except ChildProcessError:
            time.sleep(0.5)
        except InterruptedError:
            continue


def main() -> None:
    lab_dir, name = Path(sys.argv[1]), sys.argv[2]
    mdir = lab_dir / "machines" / name
    ready = mdir / "ready"
    try:
        setup(json.loads((mdir / "spec.json").read_text()))
    except Exception as exc:  # reported to the host through the ready file, then exit
        detail = exc.stderr.strip() if isinstance(exc, subprocess.CalledProcessError) else ""
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(f"failed: {exc} {detail}")
        tmp.rename(ready)
        sys.exit(1)
    tmp = ready.with_suffix(".tmp")
    tmp.write_text("ok")
    tmp.rename(ready)
    reap_forever()


if __name__ == "__main__":
    main()
