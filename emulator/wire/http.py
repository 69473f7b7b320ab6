"""The threaded HTTP server: one thread per connection, HTTP/1.1 keep-alive, one write per reply.

Each response (status line, headers and body) goes out in a single ``send`` with TCP_NODELAY, so
keep-alive clients never wait on Nagle + delayed-ACK. Requests are read by ``http1`` (a small
HTTP/1.1 reader: ``http.server``'s header parsing through ``email.parser`` cost more per request
than the signature check); the work per request is the Gateway's.
"""

from __future__ import annotations

import socketserver
import threading
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from typing import TYPE_CHECKING, Protocol

from emulator.wire.envelope import WireResponse, dumps
from emulator.wire.gateway import Gateway, WireRequest
from emulator.wire.http1 import MAX_BODY, HttpError, RequestHead, body_length, read_body, read_head
from emulator.wire.logfmt import get_logger

if TYPE_CHECKING:
    from emulator.server import Emulator

log = get_logger("http")
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE"})
CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {status.value: status.phrase for status in HTTPStatus}
__all__ = ["MAX_BODY", "EmulatorHTTPServer", "ServerHandle", "make_server", "serve_in_thread"]


class RequestHandler(Protocol):
    """What the server hands each request to: the Gateway (bench_emulator's no-op also fits)."""

    def handle(self, req: WireRequest) -> WireResponse: ...


class _Handler(socketserver.StreamRequestHandler):
    """One client connection: requests are served in order until either side closes it."""

    server: EmulatorHTTPServer
    disable_nagle_algorithm = True  # TCP_NODELAY, set by StreamRequestHandler.setup

    def handle(self) -> None:
        try:
            while self._serve_one():
                pass
        except (ConnectionError, TimeoutError):
            pass  # the client went away mid-exchange: there is no one left to answer

    def _serve_one(self) -> bool:
        """Read, answer and write one request; False when the connection must close."""
        try:
            head = read_head(self.rfile)
            if head is None:
                return False
            length = body_length(head)
            if head.expects_continue:
                self.connection.sendall(CONTINUE)
            body = read_body(self.rfile, length)
        except HttpError as err:
            self._refuse(err)
            return False
        if head.method not in METHODS:
            self._refuse(HttpError(501, f"Unsupported method ({head.method!r})"))
            return False
        keep = head.keep_alive
        self._send(self._answer(head, body), close=not keep, head_only=head.method == "HEAD")
        return keep

    def _answer(self, head: RequestHead, body: bytes) -> WireResponse:
        path, _, query = head.target.partition("?")
        req = WireRequest(head.method, path, query, head.headers, body, self.client_address[0])
        try:
            return self.server.gateway.handle(req)
        except Exception:  # a bug must not kill the connection thread silently
            log.exception("unhandled error", extra={"fields": {"path": path}})
            return WireResponse(500, b'{"Code":"InternalError","Message":"emulator bug"}')

    def _refuse(self, err: HttpError) -> None:
        """Answer a request the reader could not accept, then let the connection close."""
        if log.isEnabledFor(10):
            log.debug("refused request", extra={"fields": {
                "status": err.status, "reason": err.message, "client": self.client_address[0]}})
        self._send(WireResponse(err.status, dumps({"error": err.message})), close=True)

    def _send(self, resp: WireResponse, *, close: bool, head_only: bool = False) -> None:
        self.connection.sendall(_encode(resp, close, head_only))


def _encode(resp: WireResponse, close: bool, head_only: bool) -> bytes:
    """Status line, headers and (unless HEAD) body as the one buffer ``sendall`` writes."""
    extra = "".join(f"{name}: {value}\r\n" for name, value in resp.headers)
    if close:
        extra += "Connection: close\r\n"
    head = (
        f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, '')}\r\n"
        f"Content-Type: {resp.content_type}\r\n"
        f"Content-Length: {len(resp.body)}\r\n"
        f"Server: terway-emulator\r\n{extra}\r\n"
    ).encode("latin-1")
    return head if head_only else head + resp.body


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], gateway: RequestHandler) -> None:
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
