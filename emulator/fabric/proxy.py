"""The fabric's two service endpoints, listening inside a router namespace.

- ``100.100.100.200:80`` — instance metadata. An HTTP proxy that knows which instance owns the
  caller's source address (node or pod IP) and forwards to the emulator's
  ``/instances/<id>/latest/…`` path, so the answer is always *that* instance's metadata, whatever
  the emulator's own source-address rule does with a proxied (127.0.0.1) connection.
- ``100.100.100.100:80`` — the cloud API: a plain TCP relay to the emulator's HTTP port. Bytes are
  untouched, so ACS3 signatures (which cover the Host header) verify as sent.

Listening sockets are created in the router namespace; upstream connections are made from the
root namespace where the emulator listens. Nothing is routed between the two namespaces.
"""

from __future__ import annotations

import http.client
import logging
import selectors
import socket
import socketserver
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .netns import listening_socket

log = logging.getLogger("emulator.fabric")

METADATA_IP = "100.100.100.200"
API_IP = "100.100.100.100"
_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host"}


class _Adopted:
    """Mixin: serve on an already-listening socket (made in another netns) instead of binding."""

    def adopt(self, sock: socket.socket) -> None:
        server: Any = self
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()


class _MetadataServer(_Adopted, ThreadingHTTPServer):
    daemon_threads = True
    owner_of: Callable[[str], str | None]
    upstream: tuple[str, int]


class _MetadataHandler(BaseHTTPRequestHandler):
    server: _MetadataServer
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: object) -> None:
        return

    def _relay(self) -> None:
        instance = self.server.owner_of(self.client_address[0])
        if instance is None:
            self._reply(404, b"404 - Not Found (no instance owns this source address)")
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
        conn = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            conn.request(self.command, f"/instances/{instance}{self.path}", body, headers)
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "text/plain")
            self._reply(resp.status, data, ctype)
        except OSError as exc:
            self._reply(502, f"502 - emulator unreachable: {exc}".encode())
        finally:
            conn.close()

    def _reply(self, status: int, data: bytes, ctype: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_HEAD = _relay


class _RelayServer(_Adopted, socketserver.ThreadingTCPServer):
    daemon_threads = True
    upstream: tuple[str, int]


class _RelayHandler(socketserver.BaseRequestHandler):
    server: _RelayServer

    def handle(self) -> None:
        try:
            up = socket.create_connection(self.server.upstream, timeout=10)
        except OSError:
            return
        with up:
            up.settimeout(None)
            pump(self.request, up)


def pump(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes (also the cluster's API relay)."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select(timeout=300):
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                data = src.recv(65536)
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()


class RouterServices:
    """Metadata proxy + API relay for one router namespace; ``close()`` stops both."""

    def __init__(self, router_ns: str, upstream: tuple[str, int],
                 owner_of: Callable[[str], str | None]) -> None:
        meta = _MetadataServer(("127.0.0.1", 0), _MetadataHandler, bind_and_activate=False)
        meta.adopt(listening_socket(router_ns, METADATA_IP, 80))
        meta.owner_of = owner_of
        meta.upstream = upstream
        relay = _RelayServer(("127.0.0.1", 0), _RelayHandler, bind_and_activate=False)
        relay.adopt(listening_socket(router_ns, API_IP, 80))
        relay.upstream = upstream
        self._servers: list[socketserver.BaseServer] = [meta, relay]
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                          name=f"fabric-{router_ns}", daemon=True)
                         for s in self._servers]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)
