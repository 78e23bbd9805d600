"""The lab's host-side supervisor: the power switch, and the parent of every machine's PID-1.

It really powers fenced nodes off, and as a child subreaper it reaps every machine's PID-1, so
nothing the lab starts is left as a zombie on a host whose PID 1 does not reap.

Run as `python -m bacula_ha.lab.supervisor LAB_DIR`. It serves one request per connection on
LAB_DIR/supervisor.sock, a JSON line: {"op": "ping"} or {"op": "spawn", "argv": [...],
"log": PATH}, and answers a JSON line.
"""

from __future__ import annotations

import ctypes
import json
import os
import socketserver
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from bacula_ha.lab import machine, procs

PR_SET_CHILD_SUBREAPER = 36
POLL_SECONDS = 0.05


def _log(lab_dir: Path, message: str) -> None:
    with open(lab_dir / "log" / "power.log", "a") as fh:
        fh.write(f"{time.time():.3f} {message}\n")


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            request: dict[str, Any] = json.loads(self.rfile.readline())
            if request.get("op") == "ping":
                answer: dict[str, Any] = {"ok": True, "pid": os.getpid()}
            elif request.get("op") == "spawn":
                with open(request["log"], "ab") as log:
                    child = subprocess.Popen(
                        [str(a) for a in request["argv"]],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                answer = {"ok": True, "pid": child.pid}
            else:
                answer = {"ok": False, "error": f"unknown request {request!r}"}
        except Exception as exc:  # one bad request must not stop the power switch
            answer = {"ok": False, "error": str(exc)}
        self.wfile.write(json.dumps(answer).encode() + b"\n")


def _watch_power(lab_dir: Path) -> None:
    """Power a node off each time its status file turns to "off" (fence_dummy wrote it)."""
    handled: dict[str, int] = {}
    power_dir = lab_dir / "power"
    while True:
        # Reap whatever died: machine inits and the unshare processes above them.
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        try:
            entries = list(power_dir.iterdir())
        except OSError:
            entries = []
        for path in entries:
            try:
                stat = path.stat()
                state = path.read_text()
            except OSError:
                continue
            if state == "off" and handled.get(path.name) != stat.st_mtime_ns:
                handled[path.name] = stat.st_mtime_ns
                try:
                    machine.power_off(lab_dir, path.name)
                    _log(lab_dir, f"powered off {path.name}")
                except Exception as exc:  # keep watching the other nodes
                    _log(lab_dir, f"power off {path.name} failed: {exc}")
        time.sleep(POLL_SECONDS)


def main() -> None:
    lab_dir = Path(sys.argv[1])
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit("prctl(PR_SET_CHILD_SUBREAPER) failed")
    sock = lab_dir / "supervisor.sock"
    sock.unlink(missing_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(sock), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _log(lab_dir, f"supervisor {os.getpid()} up")
    _watch_power(lab_dir)


if __name__ == "__main__":
    assert __spec__.name == procs.SUPERVISOR_MODULE  # the process scan relies on this name
    main()
