"""A WAN link for the lab: Ethernet frames relayed between interface pairs after a fixed delay.

This kernel has no `netem` queueing discipline (nor fq, nor modules to load one), so the delay
between the lab's data centres is made here: `python -m bacula_ha.lab.wan DELAY_MS A:B [C:D ...]`
runs in the lab's switch namespace and, for each pair, sends every frame received on A out of B
DELAY_MS later, and every frame received on B out of A. A and B are veth ends outside any
bridge, whose peers are ports of the bridges the link joins. Frames keep their offload state
(PACKET_VNET_HDR), so large TCP segments and partial checksums cross the link as the kernel
made them. A frame that cannot be sent (link down, buffer full) is dropped, as on a WAN.

Only the standard library is used; the process runs until it is killed (with its namespace).
"""

from __future__ import annotations

import collections
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
# A 64 KiB GSO frame plus the 10-byte virtio header.
MAX_FRAME = 65536 + 64
RCVBUF = 8 << 20


def open_port(iface: str) -> socket.socket:
    """A raw packet socket on iface seeing every frame that arrives there, and only those."""
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    # Our own sends on this interface must not come back to us as received frames.
    sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RCVBUF)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, RCVBUF)
    sock.bind((iface, 0))
    mreq = struct.pack("iHH8s", socket.if_nametoindex(iface), PACKET_MR_PROMISC, 0, b"")
    sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
    sock.setblocking(False)
    return sock


def relay(delay: float, pairs: list[tuple[str, str]]) -> None:
    """Forward frames across each pair after `delay` seconds, in order, forever."""
    peer: dict[socket.socket, socket.socket] = {}
    for a, b in pairs:
        sa, sb = open_port(a), open_port(b)
        peer[sa], peer[sb] = sb, sa
    poller = select.poll()
    for sock in peer:
        poller.register(sock, select.POLLIN)
    by_fd = {sock.fileno(): sock for sock in peer}
    # The delay is the same for every frame: a FIFO is already ordered by due time.
    queue: collections.deque[tuple[float, socket.socket, bytes]] = collections.deque()
    while True:
        wait = None if not queue else max(0.0, queue[0][0] - time.monotonic())
        events = poller.poll(None if wait is None else wait * 1000)
        now = time.monotonic()
        for fd, _ in events:
            sock = by_fd[fd]
            out = peer[sock]
            while True:
                try:
                    frame = sock.recv(MAX_FRAME)
                except BlockingIOError:
                    break
                except OSError:
                    break  # the interface went down under us
                queue.append((now + delay, out, frame))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, out, frame = queue.popleft()
            try:
                out.send(frame)
            except OSError:
                pass


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit("usage: python -m bacula_ha.lab.wan DELAY_MS A:B [C:D ...]")
    delay = float(sys.argv[1]) / 1000
    pairs = []
    for arg in sys.argv[2:]:
        a, sep, b = arg.partition(":")
        if not sep or not a or not b:
            sys.exit(f"not an interface pair: {arg!r}")
        pairs.append((a, b))
    relay(delay, pairs)


if __name__ == "__main__":
    main()
