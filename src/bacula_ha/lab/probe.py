"""Probes run in the client machine: who answers ARP for a VIP, when Bacula daemons answer.

`python -m bacula_ha.lab.probe arp ADDRESS SECONDS [first]` asks "who has ADDRESS" every 50 ms
for SECONDS (or until the first answer) and prints one JSON object: how many rounds got answers,
the largest number of distinct MAC addresses that answered one round (more than 1 means two
nodes answered for one VIP), the rounds where that happened, and when the first answer came.

`python -m bacula_ha.lab.probe bacula dir,sd SECONDS` prints, for each daemon, the wall-clock
time it first completed an authenticated session (passwords from BHL_DIR_PW and BHL_SD_PW).
"""

from __future__ import annotations

import json
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bacula_ha.bacula.protocol import ProtocolError, console_probe, director_probe

ETH_P_ARP = 0x0806
ROUND = 0.05


def _mac(iface: str) -> bytes:
    with open(f"/sys/class/net/{iface}/address") as fh:
        return bytes.fromhex(fh.read().strip().replace(":", ""))


def _own_ip(iface: str) -> bytes:
    # The client has exactly one address; read it from the routing socket's view.
    import fcntl

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        packed = struct.pack("256s", iface.encode()[:15])
        return fcntl.ioctl(s.fileno(), 0x8915, packed)[20:24]  # SIOCGIFADDR


def arp_watch(
    address: str,
    seconds: float,
    iface: str = "eth0",
    until_answer: bool = False,
    ready: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """Probe for SECONDS; `ready` is called once the socket is bound, before the first round."""
    mac, ip, target = _mac(iface), _own_ip(iface), socket.inet_aton(address)
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    sock.bind((iface, 0))
    ready()
    frame = b"\xff" * 6 + mac + struct.pack("!H", ETH_P_ARP)
    frame += struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + ip + b"\0" * 6 + target
    start_epoch, start = time.time(), time.monotonic()
    rounds = answered = max_macs = 0
    dups: list[dict[str, Any]] = []
    first_answer = last_silence = None
    while time.monotonic() - start < seconds:
        round_start = time.monotonic()
        sock.send(frame)
        macs: set[str] = set()
        while (left := ROUND - (time.monotonic() - round_start)) > 0:
            if not select.select([sock], [], [], left)[0]:
                break
            pkt = sock.recv(128)
            op = struct.unpack("!H", pkt[20:22])[0]
            # Only answers to our own request count: gratuitous ARPs announce, they do not answer.
            if op == 2 and pkt[28:32] == target and pkt[38:42] == ip:
                macs.add(pkt[22:28].hex(":"))
        rounds += 1
        t = round(round_start - start, 3)
        if macs:
            answered += 1
            if first_answer is None:
                first_answer = t
                if until_answer:
                    break
        else:
            last_silence = t
        max_macs = max(max_macs, len(macs))
        if len(macs) > 1:
            dups.append({"t": t, "macs": sorted(macs)})
    sock.close()
    return {
        "rounds": rounds,
        "answered": answered,
        "max_macs": max_macs,
        "duplicates": dups,
        "start_epoch": start_epoch,
        "first_answer": first_answer,
        "last_silence": last_silence,
    }


def _first_answer(check: Callable[[], object], deadline: float) -> float | None:
    """Wall-clock time of the first successful check, polling every 50 ms until deadline."""
    while time.time() < deadline:
        try:
            check()
            return time.time()
        except (OSError, ProtocolError):
            time.sleep(0.05)
    return None


def bacula_watch(targets: list[str], seconds: float) -> dict[str, float | None]:
    """When each Bacula daemon first answers a real authenticated session (director: console
    login; storage daemon: director Hello), as wall-clock times; None if not within seconds."""
    from bacula_ha.lab.config import SUBNET

    deadline = time.time() + seconds
    checks: dict[str, Callable[[], object]] = {
        "dir": lambda: console_probe(f"{SUBNET}.21", 9101, os.environ["BHL_DIR_PW"], 1.0),
        "sd": lambda: director_probe(
            f"{SUBNET}.22", 9103, "lab-dir", os.environ["BHL_SD_PW"], 1.0, "sd"
        ),
    }
    results: dict[str, float | None] = {}

    def worker(name: str) -> None:
        results[name] = _first_answer(checks[name], deadline)

    threads = [threading.Thread(target=worker, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


USAGE = (
    "usage: python -m bacula_ha.lab.probe arp ADDRESS SECONDS [first]\n"
    "       python -m bacula_ha.lab.probe bacula dir,sd SECONDS"
)


def _say_ready() -> None:
    """ "ready" on stderr once probing: a watcher started just before a fault waits for it."""
    print("ready", file=sys.stderr, flush=True)


def main() -> None:
    if len(sys.argv) not in (4, 5) or sys.argv[1] not in ("arp", "bacula"):
        sys.exit(USAGE)
    if sys.argv[1] == "arp":
        until = sys.argv[4:] == ["first"]
        watched = arp_watch(sys.argv[2], float(sys.argv[3]), until_answer=until, ready=_say_ready)
        print(json.dumps(watched))
    else:
        print(json.dumps(bacula_watch(sys.argv[2].split(","), float(sys.argv[3]))))


if __name__ == "__main__":
    main()
