"""The ``aliyun/eni`` device plugin (terway/daemon/deviceplugin.py) against a fake kubelet: a gRPC
Registration server on ``kubelet.sock`` in a directory of the test's own, and a gRPC client that
calls the plugin's socket as the kubelet does (GetDevicePluginOptions, ListAndWatch, Allocate).
The wire format is checked byte for byte against the v1beta1 ``.proto``'s field numbers; the real
kubelet is in tests/kube/test_device_plugin.py."""

from __future__ import annotations

import asyncio
import io
import logging
import os
import queue
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from terway.daemon import dpapi, logfmt
from terway.daemon.deviceplugin import EniDevicePlugin
from terway.daemon.dpapi import (
    AllocateRequest,
    AllocateResponse,
    ContainerAllocateResponse,
    Device,
    DevicePluginOptions,
    Empty,
    ListAndWatchResponse,
    PreStartContainerRequest,
    PreStartContainerResponse,
    RegisterRequest,
    WireError,
)
from tests.daemon.daemon_harness import World, run, running_daemon

NOW = 1_700_000_000
SOCKET_NAME = f"{NOW}-eni.sock"


@pytest.fixture
def plugin_dir() -> Iterator[Path]:
    """Short: a unix socket path is at most 107 bytes (pytest's tmp_path can be longer)."""
    d = tempfile.mkdtemp(prefix="dp", dir="/tmp")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def log() -> io.StringIO:
    stream = io.StringIO()
    logfmt.setup(logging.DEBUG, stream)
    return stream


class FakeKubelet:
    """The kubelet's Registration service: records each RegisterRequest (or refuses it)."""

    def __init__(self, directory: Path, refuse: str = "") -> None:
        self.requests: queue.Queue[RegisterRequest] = queue.Queue()
        self.refuse = refuse
        self.server = grpc.server(ThreadPoolExecutor(max_workers=2))
        handler = grpc.method_handlers_generic_handler(dpapi.REGISTRATION, {
            "Register": grpc.unary_unary_rpc_method_handler(
                self._register, request_deserializer=RegisterRequest.decode,
                response_serializer=Empty.encode)})
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"unix:{directory / dpapi.KUBELET_SOCKET}")
        self.server.start()

    def _register(self, request: RegisterRequest, context: Any) -> Empty:
        if self.refuse:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, self.refuse)
        self.requests.put(request)
        return Empty()

    def registration(self, timeout: float = 20.0) -> RegisterRequest:
        return self.requests.get(timeout=timeout)

    def stop(self) -> None:
        self.server.stop(None).wait()


@pytest.fixture
def kubelet(plugin_dir: Path) -> Iterator[FakeKubelet]:
    k = FakeKubelet(plugin_dir)
    yield k
    k.stop()


class PluginClient:
    """The kubelet's side of the DevicePlugin service, on the plugin's socket."""

    def __init__(self, path: Path) -> None:
        self.channel = grpc.insecure_channel(f"unix:{path}")

    def call(self, method: str, request: Any, response: Any) -> Any:
        return self.channel.unary_unary(method, request_serializer=type(request).encode,
                                        response_deserializer=response.decode)(request, timeout=10)

    def watch(self) -> Any:
        return self.channel.unary_stream(
            dpapi.LIST_AND_WATCH, request_serializer=Empty.encode,
            response_deserializer=ListAndWatchResponse.decode)(Empty(), timeout=20)

    def close(self) -> None:
        self.channel.close()


def device_list(path: Path) -> list[Device]:
    client = PluginClient(path)
    try:
        stream = client.watch()
        devices = list(next(stream).devices)
        stream.cancel()
        return devices
    finally:
        client.close()


# -- the wire format --------------------------------------------------------------------------

def test_messages_are_the_v1beta1_protobuf_bytes() -> None:
    req = RegisterRequest("v1beta1", "1-eni.sock", "aliyun/eni")
    assert req.encode() == b"\x0a\x07v1beta1\x12\x0a1-eni.sock\x1a\x0aaliyun/eni"
    assert RegisterRequest.decode(req.encode()) == req
    with_options = RegisterRequest("v1beta1", "e", "r", DevicePluginOptions(True, False))
    assert with_options.encode().endswith(b"\x22\x02\x08\x01")          # field 4 {1: true}
    assert RegisterRequest.decode(with_options.encode()) == with_options
    listed = ListAndWatchResponse((Device("eni-0"),))
    assert listed.encode() == b"\x0a\x10\x0a\x05eni-0\x12\x07Healthy"
    assert ListAndWatchResponse.decode(listed.encode()) == listed
    assert DevicePluginOptions().encode() == b"" == Empty().encode()   # proto3: defaults unwritten
    # one (empty) entry per container: the kubelet matches responses to containers by count
    assert AllocateResponse((ContainerAllocateResponse(),) * 2).encode() == b"\x0a\x00\x0a\x00"
    env = ContainerAllocateResponse(envs={"K": "v"})
    assert env.encode() == b"\x0a\x06\x0a\x01K\x12\x01v"
    assert ContainerAllocateResponse.decode(env.encode()) == env
    raw = b"\x0a\x07\x0a\x05eni-1\x0a\x00"
    assert AllocateRequest.decode(raw) == AllocateRequest((("eni-1",), ()))
    assert AllocateRequest.decode(raw).encode() == raw
    assert PreStartContainerRequest.decode(b"\x0a\x05eni-2").devices_ids == ("eni-2",)


def test_unknown_fields_are_skipped_and_broken_bytes_refused() -> None:
    # Device.topology (3) and an unknown varint field 9, fixed64 field 10, fixed32 field 11
    extra = b"\x1a\x04\x0a\x02\x08\x01" + b"\x48\x96\x01" + b"\x51" + bytes(8) + b"\x5d" + bytes(4)
    assert Device.decode(b"\x0a\x05eni-0\x12\x07Healthy" + extra) == Device("eni-0")
    for broken in (b"\x0a\x05eni", b"\x0a", b"\x08\xff", b"\x0b", b"\x00\x01",
                   b"\x0a\x02\xff\xfe"):
        with pytest.raises(WireError):
            Device.decode(broken)
    with pytest.raises(WireError, match="a string was expected"):
        RegisterRequest.decode(b"\x08\x01")


# -- the plugin against a fake kubelet ----------------------------------------------------------

def test_registers_with_the_kubelet_and_serves_its_devices(plugin_dir: Path,
                                                           kubelet: FakeKubelet,
                                                           log: io.StringIO) -> None:
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(plugin_dir / "1600000000-eni.sock"))     # a plugin's from before a restart
    (plugin_dir / "notes-eni.sock").write_text("not a socket")
    other = socket.socket(socket.AF_UNIX)
    other.bind(str(plugin_dir / "1600000000-gpu.sock"))     # another plugin's
    plugin = EniDevicePlugin(3, str(plugin_dir), resend_period=0.01, wall_clock=lambda: NOW)
    try:
        assert plugin.check_blocking() is True
        assert kubelet.registration() == RegisterRequest("v1beta1", SOCKET_NAME, "aliyun/eni")
        sock = plugin_dir / SOCKET_NAME
        assert stat.S_ISSOCK(sock.lstat().st_mode)
        assert stat.S_IMODE(sock.lstat().st_mode) == 0o600
        left = sorted(p.name for p in plugin_dir.iterdir())
        assert left == ["1600000000-gpu.sock", SOCKET_NAME, "kubelet.sock", "notes-eni.sock"]

        client = PluginClient(sock)
        assert client.call(dpapi.GET_OPTIONS, Empty(), DevicePluginOptions) == \
            DevicePluginOptions()
        stream = client.watch()
        first, second = next(stream), next(stream)             # sent again after the period
        want = tuple(Device(f"eni-{i}", "Healthy") for i in range(3))
        assert first.devices == second.devices == want
        answer = client.call(dpapi.ALLOCATE, AllocateRequest((("eni-0",), ("eni-2",))),
                             AllocateResponse)
        assert answer == AllocateResponse((ContainerAllocateResponse(),) * 2)
        assert client.call(dpapi.PRE_START_CONTAINER, PreStartContainerRequest(("eni-0",)),
                           PreStartContainerResponse) == PreStartContainerResponse()
        with pytest.raises(grpc.RpcError) as err:
            client.call(dpapi.GET_PREFERRED_ALLOCATION, Empty(), Empty)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert plugin.check_blocking() is True and plugin.registrations == 1   # nothing to do
    finally:
        plugin.close()
        stale.close()
        other.close()
    assert not (plugin_dir / SOCKET_NAME).exists()
    remaining = [r for r in _drain(stream)]                    # the stream ends with the plugin
    assert all(r.devices == want for r in remaining)
    client.close()
    assert "registered device plugin with the kubelet" in log.getvalue()
    assert "allocate" in log.getvalue()


def _drain(stream: Any) -> list[ListAndWatchResponse]:
    out = []
    try:
        for r in stream:
            out.append(r)
    except grpc.RpcError as exc:     # the server may cut it rather than end it
        assert exc.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.UNAVAILABLE), exc
    return out


def test_a_kubelet_restart_is_followed_by_a_new_registration(plugin_dir: Path,
                                                             log: io.StringIO) -> None:
    """The kubelet empties its directory when it starts: the plugin's watch (here every 0.05 s of
    the injected period) serves the socket again and registers again."""
    first_kubelet = FakeKubelet(plugin_dir)

    async def scenario() -> None:
        plugin = EniDevicePlugin(2, str(plugin_dir), check_period=0.05, retry_period=0.05,
                                 wall_clock=lambda: NOW)
        task = asyncio.ensure_future(plugin.run())
        try:
            first = await asyncio.to_thread(first_kubelet.registration)
            assert [d.id for d in device_list(plugin_dir / SOCKET_NAME)] == ["eni-0", "eni-1"]
            # the kubelet restarts: it stops, its directory is emptied, it serves again
            first_kubelet.stop()
            for entry in list(plugin_dir.iterdir()):     # kubelet.sock and the plugin's
                entry.unlink(missing_ok=True)
            second_kubelet = FakeKubelet(plugin_dir)
            try:
                again = await asyncio.to_thread(second_kubelet.registration)
                assert again == first
                assert [d.id for d in device_list(plugin_dir / SOCKET_NAME)] == \
                    ["eni-0", "eni-1"]
            finally:
                second_kubelet.stop()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await asyncio.to_thread(plugin.close)
        assert plugin.registrations == 2       # counted once the (closed) plugin's round ended
        assert os.listdir(plugin_dir) == []

    run(scenario())
    assert "device plugin socket removed" in log.getvalue()


def test_no_kubelet_is_logged_and_tried_again(plugin_dir: Path, log: io.StringIO) -> None:
    plugin = EniDevicePlugin(1, str(plugin_dir), wall_clock=lambda: NOW)
    try:
        assert plugin.check_blocking() is False
        assert plugin.check_blocking() is False
        errors = [line for line in log.getvalue().splitlines() if "level=error" in line]
        assert len(errors) == 1, errors          # the same error again is not repeated
        assert "device plugin not registered with the kubelet, trying again" in errors[0]
        assert f"no kubelet socket at {plugin_dir}/kubelet.sock" in errors[0]
        assert (plugin_dir / SOCKET_NAME).exists()   # served meanwhile
        kubelet = FakeKubelet(plugin_dir)
        try:
            assert plugin.check_blocking() is True
            assert kubelet.registration().endpoint == SOCKET_NAME
        finally:
            kubelet.stop()
    finally:
        plugin.close()


def test_a_refusing_kubelet_and_a_missing_directory_are_logged(plugin_dir: Path,
                                                               log: io.StringIO) -> None:
    kubelet = FakeKubelet(plugin_dir, refuse="resource aliyun/eni is already registered")
    plugin = EniDevicePlugin(1, str(plugin_dir), wall_clock=lambda: NOW)
    try:
        assert plugin.check_blocking() is False
        assert "INVALID_ARGUMENT: resource aliyun/eni is already registered" in log.getvalue()
    finally:
        plugin.close()
        kubelet.stop()
    missing = EniDevicePlugin(1, str(plugin_dir / "nope"), wall_clock=lambda: NOW)
    assert missing.check_blocking() is False
    assert f"{plugin_dir}/nope: no such directory" in log.getvalue()
    assert not (plugin_dir / "nope").exists()
    missing.close()


# -- in the daemon ------------------------------------------------------------------------------

def test_daemon_in_exclusive_mode_serves_one_device_per_eni(tmp_path: Path, plugin_dir: Path,
                                                            kubelet: FakeKubelet) -> None:
    world = World.build(instance_type="ecs.g6.xlarge")      # 3 ENIs: capacity 2
    conf = world.eni_conf(daemon_mode="ENIOnly", min_pool_size=0, max_pool_size=0)

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf,
                                  device_plugin_dir=str(plugin_dir)) as d:
            request = await asyncio.to_thread(kubelet.registration)
            assert (request.version, request.resource_name) == ("v1beta1", "aliyun/eni")
            assert d.daemon.capacity.capacity == 2
            devices = await asyncio.to_thread(device_list, plugin_dir / request.endpoint)
            assert [d.id for d in devices] == ["eni-0", "eni-1"]
        assert sorted(os.listdir(plugin_dir)) == ["kubelet.sock"]    # removed on stop

    run(scenario())


@pytest.mark.parametrize("extra", [{"daemon_mode": "ENIOnly", "disable_device_plugin": True},
                                   {"daemon_mode": "ENIMultiIP"}], ids=["disabled", "shared"])
def test_no_device_plugin_when_disabled_or_in_shared_mode(tmp_path: Path, plugin_dir: Path,
                                                          kubelet: FakeKubelet,
                                                          extra: dict[str, Any]) -> None:
    world = World.build(instance_type="ecs.g6.xlarge")
    conf = world.eni_conf(min_pool_size=0, max_pool_size=0, **extra)

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, conf=conf,
                                  device_plugin_dir=str(plugin_dir)) as d:
            assert d.daemon.device_plugin is None
            assert sorted(os.listdir(plugin_dir)) == ["kubelet.sock"]
        assert kubelet.requests.empty()

    run(scenario())


def test_device_plugin_dir_flag() -> None:
    from terway.daemon.main import _check_flags, build_parser

    args = build_parser().parse_args([])
    assert args.device_plugin_dir == "/var/lib/kubelet/device-plugins"    # the kubelet's
    assert _check_flags(args) == []
    assert _check_flags(build_parser().parse_args(["--device-plugin-dir", ""])) == []
    long = build_parser().parse_args(["--device-plugin-dir", "/" + "d" * 90])
    assert _check_flags(long) == [
        f"--device-plugin-dir: too long for the sockets in it (a unix socket path is at most "
        f"107 bytes): '/{'d' * 90}'"]
