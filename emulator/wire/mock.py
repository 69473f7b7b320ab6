"""``mock_aliyun()``: the emulated cloud in-process, moto-style, for unmodified sync SDK clients.

The sync SDK sends through ``requests``, so a ``responses.RequestsMock`` whose callback feeds the
same Gateway as the HTTP server answers every call: same signature check, faults, model and
error bodies, no socket. Works as a context manager (yields the ``Emulator`` facade) and as a
decorator::

    with mock_aliyun(seed=1) as emu:
        client = Client(Config(endpoint="ecs.aliyuncs.com", access_key_id=emu.access_key_id, ...))

    @mock_aliyun()
    def test_x(): ...

The metadata service (``http://100.100.100.200/latest/meta-data/...``) is answered too, for the
instance named by ``metadata_instance`` (or a ``/instances/<id>`` path prefix).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import responses
from requests import PreparedRequest

from emulator.server import Emulator
from emulator.wire.gateway import Gateway, WireRequest
from emulator.wire.signature import Credentials, header_map

P = ParamSpec("P")
R = TypeVar("R")
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")
METADATA_HOST = "100.100.100.200"


class MockAliyun:
    """Intercepts ``requests`` traffic to the cloud endpoint(s) while active."""

    def __init__(
        self,
        emulator: Emulator | None = None,
        *,
        endpoint: str | None = None,
        seed: int = 0,
        world: str | None = None,
        credentials: Credentials | Mapping[str, str] | None = None,
        metadata_instance: str | None = None,
        client_ip: str = "127.0.0.1",
    ) -> None:
        self._given = emulator
        self._kwargs: dict[str, Any] = {
            "seed": seed, "world": world, "credentials": credentials,
            "metadata_instance": metadata_instance,
        }
        self.endpoint = endpoint
        self.client_ip = client_ip
        self._emulator: Emulator | None = emulator
        self._mock: responses.RequestsMock | None = None

    @property
    def emulator(self) -> Emulator:
        """The facade behind the mock (built on first start when none was given)."""
        if self._emulator is None:
            self._emulator = Emulator.create(**self._kwargs)
        return self._emulator

    def url_pattern(self) -> re.Pattern[str]:
        if self.endpoint is None:
            return re.compile(r"https?://[^/]+(/.*)?$")
        host = re.escape(self.endpoint.split("://")[-1].rstrip("/"))
        meta = re.escape(METADATA_HOST)
        return re.compile(rf"https?://({host}|{meta})(:\d+)?([/?].*)?$")

    def start(self) -> Emulator:
        if self._mock is not None:
            raise RuntimeError("mock_aliyun is already active")
        gateway = Gateway(self.emulator)
        mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        pattern = self.url_pattern()
        for method in METHODS:
            mock.add_callback(method, pattern, callback=self._callback(gateway), content_type=None)
        mock.start()
        self._mock = mock
        return self.emulator

    def stop(self) -> None:
        if self._mock is not None:
            self._mock.stop()
            self._mock.reset()
            self._mock = None

    def _callback(
        self, gateway: Gateway
    ) -> Callable[[PreparedRequest], tuple[int, dict[str, str], bytes]]:
        def answer(request: PreparedRequest) -> tuple[int, dict[str, str], bytes]:
            parts = urlsplit(request.url or "")
            body = request.body or b""
            req = WireRequest(
                method=(request.method or "GET").upper(),
                path=parts.path or "/",
                query=parts.query,
                headers=header_map(request.headers.items()),
                body=body.encode("utf-8") if isinstance(body, str) else bytes(body),
                client_ip=self.client_ip,
            )
            resp = gateway.handle(req)
            headers = {"Content-Type": resp.content_type, **dict(resp.headers)}
            return resp.status, headers, resp.body

        return answer

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __call__(self, func: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(func)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            if self._given is None:
                self._emulator = None  # like moto: each decorated call gets a fresh cloud
            with self:
                return func(*args, **kwargs)

        return wrapper


def mock_aliyun(
    emulator: Emulator | None = None,
    *,
    endpoint: str | None = None,
    seed: int = 0,
    world: str | None = None,
    credentials: Credentials | Mapping[str, str] | None = None,
    metadata_instance: str | None = None,
) -> MockAliyun:
    """Route sync-SDK (``requests``) traffic to an in-process emulator; see the module docstring.

    ``endpoint`` limits interception to that host (plus the metadata address); by default every
    ``requests`` call is answered by the emulator while the mock is active.
    """
    return MockAliyun(
        emulator, endpoint=endpoint, seed=seed, world=world, credentials=credentials,
        metadata_instance=metadata_instance,
    )
