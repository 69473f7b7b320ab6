"""A tiny local metadata service (http.server on a free port) serving a canned tree."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

MAC0 = "00:16:3e:00:00:01"
MAC1 = "00:16:3e:00:00:02"

TREE: dict[str, str] = {
    "region-id": "cn-hangzhou",
    "zone-id": "cn-hangzhou-i",
    "instance-id": "i-node1",
    "instance/instance-type": "ecs.g6.large",
    "mac": MAC0,
    "network/interfaces/macs/": f"{MAC0}/\n{MAC1}/",
    f"network/interfaces/macs/{MAC0}/network-interface-id": "eni-primary",
    f"network/interfaces/macs/{MAC0}/vswitch-id": "vsw-1",
    f"network/interfaces/macs/{MAC0}/vswitch-cidr-block": "192.168.1.0/24",
    f"network/interfaces/macs/{MAC0}/gateway": "192.168.1.253",
    f"network/interfaces/macs/{MAC0}/primary-ip-address": "192.168.1.10",
    f"network/interfaces/macs/{MAC0}/private-ipv4s": '["192.168.1.10"]',
    f"network/interfaces/macs/{MAC1}/network-interface-id": "eni-2",
    f"network/interfaces/macs/{MAC1}/vswitch-id": "vsw-1",
    f"network/interfaces/macs/{MAC1}/vswitch-cidr-block": "192.168.1.0/24",
    f"network/interfaces/macs/{MAC1}/gateway": "192.168.1.253",
    f"network/interfaces/macs/{MAC1}/primary-ip-address": "192.168.1.20",
    f"network/interfaces/macs/{MAC1}/private-ipv4s": '["192.168.1.21","192.168.1.20"]',
    "ram/security-credentials/": "KubernetesWorkerRole",
}


@dataclass
class MetaServer:
    url: str
    tree: dict[str, str]
    prefix: str
    hits: list[str] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)   # statuses to answer before the tree


@pytest.fixture(params=["", "/instances/i-node1"], ids=["root", "prefixed"])
def meta_server(request: pytest.FixtureRequest) -> Iterator[MetaServer]:
    prefix: str = request.param
    state = MetaServer(url="", tree=dict(TREE), prefix=prefix)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.hits.append(self.path)
            if state.fail_next:
                self.send_error(state.fail_next.pop(0))
                return
            want = prefix + "/latest/meta-data/"
            if not self.path.startswith(want):
                self.send_error(404)
                return
            body = state.tree.get(self.path[len(want):])
            if body is None:
                self.send_error(404)
                return
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{srv.server_address[1]}{prefix}"
    try:
        yield state
    finally:
        srv.shutdown()
        srv.server_close()
