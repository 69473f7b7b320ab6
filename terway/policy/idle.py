"""The ``policy`` container when nothing is enforced: it answers its probes and waits.

Kept running rather than exiting so the DaemonSet's pods stay Ready and the container's state
says why (its log), as upstream's idle health-check server does.
"""

from __future__ import annotations

import http.server
import signal
import threading
from typing import Any

PATHS = ("/liveness", "/readiness")


class _Handler(http.server.BaseHTTPRequestHandler):
    reason = ""

    def do_GET(self) -> None:
        known = self.path in PATHS
        body = f"policy not enforced: {self.reason}\n".encode() if known else b"not found\n"
        self.send_response(200 if known else 404)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass                                        # probes every few seconds: no log lines


def make_server(reason: str, host: str, port: int) -> http.server.ThreadingHTTPServer:
    """The probe server, bound (port 0: any free port), not yet serving."""
    handler = type("Handler", (_Handler,), {"reason": reason})
    return http.server.ThreadingHTTPServer((host, port), handler)


def serve_idle(reason: str, host: str, port: int) -> None:
    """Answer the probes on ``host:port`` until SIGTERM or SIGINT."""
    server = make_server(reason, host, port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    server.server_close()
