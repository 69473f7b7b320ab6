"""A TCP relay from the host (127.0.0.1) into a namespace: how tests and kubectl on the host reach
the API server, which lives on the master instance inside the fabric (nothing is routed between
the host and the fabric). Bytes are untouched, so TLS is end to end."""

from __future__ import annotations

import logging
import socket
import socketserver
import threading

from emulator.fabric.netns import FabricError, entered
from emulator.fabric.proxy import pump

log = logging.getLogger("emulator.cluster")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    netns: str
    target: tuple[str, int]
    reported: str = ""

    def report(self, error: str) -> None:
        if error != self.reported:
            self.reported = error
            log.error("relay into netns %s cannot connect: %s", self.netns, error)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            with entered(self.server.netns):
                up = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except (OSError, FabricError) as exc:   # the namespace is gone: say so once, not a
            self.server.report(str(exc))        # traceback per connection
            return
        try:
            up.settimeout(10)
            up.connect(self.server.target)
            up.settimeout(None)
        except OSError:
            up.close()
            return
        with up:
            pump(self.request, up)


class Relay:
    """Listens on ``127.0.0.1:<port>`` (0 = any free port); each connection is relayed to
    ``target`` from inside netns ``netns``."""

    def __init__(self, netns: str, target: tuple[str, int], port: int = 0) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler)
        self._server.netns, self._server.target = netns, target
        self.port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.2}, daemon=True,
                                        name=f"relay-{netns}")
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
