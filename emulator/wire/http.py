"""The threaded HTTP server: one thread per connection, HTTP/1.1 keep-alive, one write per reply.

Each response (status line, headers and body) goes out in a single ``send`` with TCP_NODELAY, so
keep-alive clients never wait on Nagle + delayed-ACK. Parsing is the standard library's; the
work per request is the Gateway's.
"""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

from emulator.wire.envelope import WireResponse
from emulator.wire.gateway import Gateway, WireRequest
from emulator.wire.logfmt import get_logger
from emulator.wire.signature import header_map

if TYPE_CHECKING:
    from emulator.server import Emulator

log = get_logger("http")
MAX_BODY = 16 * 1024 * 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "terway-emulator"
    sys_version = ""
    server: EmulatorHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        headers = header_map(self.headers.items())
        try:
            length = int((headers.get("content-length") or ["0"])[0] or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self.close_connection = True
            self._send(WireResponse(400, b'{"error":"bad or too large Content-Length"}'))
            return
        body = self.rfile.read(length) if length else b""
        path, _, query = self.path.partition("?")
        req = WireRequest(
            method=self.command,
            path=path,
            query=query,
            headers=headers,
            body=body,
            client_ip=self.client_address[0],
        )
        try:
            resp = self.server.gateway.handle(req)
        except Exception:  # a bug must not kill the connection thread silently
            log.exception("unhandled error", extra={"fields": {"path": path}})
            resp = WireResponse(500, b'{"Code":"InternalError","Message":"emulator bug"}')
        self._send(resp)

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def do_HEAD(self) -> None:
        self._serve()

    def _send(self, resp: WireResponse) -> None:
        reason = self.responses.get(resp.status, ("",))[0]
        lines = [
            f"HTTP/1.1 {resp.status} {reason}",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {len(resp.body)}",
            "Server: terway-emulator",
            *(f"{k}: {v}" for k, v in resp.headers),
        ]
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head if self.command == "HEAD" else head + resp.body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug(format % args, extra={"fields": {"client": self.client_address[0]}})


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, _Handler)


class ServerHandle:
    """A running server: ``url`` = ``http://host:port``, ``endpoint`` = ``host:port`` (SDK)."""

    def __init__(self, server: EmulatorHTTPServer, thread: threading.Thread | None) -> None:
        self._server = server
        self._thread = thread
        host, port = server.server_address[:2]
        self.host: str = host.decode() if isinstance(host, bytes) else str(host)
        self.port: int = int(port)

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    def metadata_url(self, instance_id: str) -> str:
        """The ``--metadata-endpoint`` for a daemon running outside any netns."""
        return f"{self.url}/instances/{instance_id}"

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def make_server(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> EmulatorHTTPServer:
    return EmulatorHTTPServer((host, port), Gateway(emulator))


def serve_in_thread(emulator: Emulator, host: str = "127.0.0.1", port: int = 0) -> ServerHandle:
    """Start serving on a daemon thread (port 0 picks a free port) and return the handle."""
    server = make_server(emulator, host, port)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
        name=f"terway-emulator-{server.server_address[1]}",
    )
    thread.start()
    return ServerHandle(server, thread)
