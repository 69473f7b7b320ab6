"""Reachability probes run *inside* a namespace, without forking (``ping`` is not installed here).

``ping(ns, ip)`` sends ICMP echo requests from a raw socket created in netns ``ns``;
``http_get(ns, url)`` makes a plain HTTP/1.0 GET from a TCP socket created there. Used by tests,
the demo and ``python -m emulator.fabric.probe NS IP`` by hand.
"""

from __future__ import annotations

import os
import select
import socket
import struct
import sys
import time
from urllib.parse import urlsplit

from .netns import entered


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def _echo(ident: int, seq: int) -> bytes:
    payload = b"terway-fabric-probe"
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    return struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, seq) + payload


def ping(ns: str, dst: str, count: int = 3, timeout: float = 1.0) -> bool:
    """True when ``dst`` answers at least one of ``count`` echo requests from inside ``ns``."""
    with entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    ident = (os.getpid() ^ id(sock)) & 0xFFFF
    with sock:
        for seq in range(1, count + 1):
            sock.sendto(_echo(ident, seq), (dst, 0))
            if _await_reply(sock, dst, ident, time.monotonic() + timeout):
                return True
    return False


def _await_reply(sock: socket.socket, dst: str, ident: int, deadline: float) -> bool:
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            return False
        packet, (src, _) = sock.recvfrom(2048)
        ihl = (packet[0] & 0x0F) * 4
        kind, _, _, rid, _ = struct.unpack("!BBHHH", packet[ihl:ihl + 8])
        if kind == 0 and rid == ident and src == dst:
            return True
    return False


def http_get(ns: str, url: str, timeout: float = 5.0) -> tuple[int, str]:
    """``(status, body)`` of a GET made from inside ``ns`` (HTTP/1.0, no redirects)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    with entered(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    with sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.sendall(f"GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, body.decode(errors="replace")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m emulator.fabric.probe NETNS IP", file=sys.stderr)
        return 2
    ok = ping(args[0], args[1])
    print(f"{args[0]} -> {args[1]}: {'reachable' if ok else 'no answer'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
