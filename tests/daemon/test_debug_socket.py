"""Metrics where upstream serves them (issue 10): ``/metrics`` over HTTP on the unix socket
``eni_debug.socket`` beside the CNI socket (upstream's ``/var/run/eni/eni_debug.socket``), root
only, gone after stop; the same families as the TCP endpoint."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import stat
import urllib.request
from pathlib import Path

import pytest

from terway.daemon.app import DEBUG_SOCKET_NAME, DaemonOptions
from terway.daemon.main import _check_flags, build_parser
from terway.daemon.metrics import Metrics
from tests.daemon.daemon_harness import World, run, running_daemon


def unix_get(path: str, url: str) -> tuple[int, str]:
    """A real HTTP/1.1 GET over the unix socket, as ``curl --unix-socket`` sends it."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(path)
        s.sendall(f"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def tcp_get(port: int, url: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{url}", timeout=30) as resp:
        return str(resp.read().decode())


def families(text: str) -> set[str]:
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


def test_metrics_on_the_debug_socket_match_the_tcp_endpoint(tmp_path: Path) -> None:
    world = World.build()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, metrics_port=0) as d:
            path = str(Path(d.socket).parent / DEBUG_SOCKET_NAME)
            assert d.daemon.metrics.debug_socket == path
            await d.alloc("web-1")                    # RPC, OpenAPI and pool samples
            st = os.stat(path)
            assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600
            assert st.st_uid == os.getuid()
            status, text = await asyncio.to_thread(unix_get, path, "/metrics")
            assert status == 200
            port = d.daemon.metrics.port
            assert port
            tcp = await asyncio.to_thread(tcp_get, port, "/metrics")
            assert families(text) == families(tcp)
            assert {"terway_rpc_latency", "aliyun_openapi_latency",
                    "terway_resource_pool_total_count"} <= families(text)
            assert 'terway_rpc_latency_count{error="false",rpc_api="AllocIP"}' in text
            assert (await asyncio.to_thread(unix_get, path, "/healthz"))[0] == 404
        assert not os.path.exists(path), "the debug socket outlived the daemon"

    run(scenario())


def test_a_stale_socket_is_replaced_and_a_file_is_refused(tmp_path: Path) -> None:
    stale = tmp_path / "run" / "stale.socket"
    stale.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(stale))                            # a killed daemon's leftover
    m = Metrics()
    try:
        assert m.serve_unix(str(stale)) == str(stale)
        assert unix_get(str(stale), "/metrics")[0] == 200
    finally:
        m.close()
    assert not stale.exists()
    precious = tmp_path / "run" / "precious"
    precious.write_text("keep\n")
    with pytest.raises(FileExistsError, match="not a socket"):
        Metrics().serve_unix(str(precious))
    assert precious.read_text() == "keep\n"


def test_the_flag_defaults_to_upstreams_path_and_can_turn_it_off() -> None:
    args = build_parser().parse_args([])
    assert DaemonOptions(socket_path=args.socket, debug_socket=args.debug_socket) \
        .debug_socket_file == "/var/run/eni/eni_debug.socket"
    assert DaemonOptions(debug_socket="").debug_socket_file == ""
    assert _check_flags(build_parser().parse_args(["--debug-socket", "unix:///run/x.sock"])) \
        == []
    (problem,) = _check_flags(build_parser().parse_args(["--debug-socket", "tcp://0:1"]))
    assert problem.startswith("--debug-socket: 'tcp://0:1': only a unix socket path")


def test_a_debug_socket_that_cannot_be_made_does_not_stop_the_daemon(tmp_path: Path) -> None:
    """Metrics are not worth a node without pod networking: logged, the file left alone."""
    world = World.build()
    precious = tmp_path / "run" / DEBUG_SOCKET_NAME

    def prepare(tmp: Path) -> None:
        precious.parent.mkdir(parents=True, exist_ok=True)
        precious.write_text("keep\n")

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, prepare=prepare) as d:
            assert (await d.alloc("web-1")).pod_ip
            assert d.daemon.metrics.debug_socket is None
            assert any("debug socket not served" in ln for ln in d.log_lines())
        assert precious.read_text() == "keep\n"

    run(scenario())
