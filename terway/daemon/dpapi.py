"""The kubelet's device-plugin API v1beta1 (``k8s.io/kubelet/pkg/apis/deviceplugin/v1beta1``):
the few messages terwayd's ``aliyun/eni`` plugin exchanges, encoded and decoded by hand in the
protobuf wire format.

Why by hand: seven small proto3 messages of strings, booleans and nested messages are a page of
code, where generated ``*_pb2`` modules would tie the image to a protobuf runtime and a code
generator. Field numbers are the ``.proto``'s; proto3 rules: a field at its default value is not
written, unknown fields are skipped when reading, a repeated or map field is one entry per key.
The gRPC side (method paths, serializers) is in ``terway/daemon/deviceplugin.py``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

VERSION = "v1beta1"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
KUBELET_SOCKET = "kubelet.sock"       # in the device-plugin directory
REGISTRATION = "v1beta1.Registration"
DEVICE_PLUGIN = "v1beta1.DevicePlugin"
REGISTER = f"/{REGISTRATION}/Register"
GET_OPTIONS = f"/{DEVICE_PLUGIN}/GetDevicePluginOptions"
LIST_AND_WATCH = f"/{DEVICE_PLUGIN}/ListAndWatch"
GET_PREFERRED_ALLOCATION = f"/{DEVICE_PLUGIN}/GetPreferredAllocation"
ALLOCATE = f"/{DEVICE_PLUGIN}/Allocate"
PRE_START_CONTAINER = f"/{DEVICE_PLUGIN}/PreStartContainer"

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not the message they should be."""


# -- the wire format ------------------------------------------------------------------------------

def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64                     # proto's int32/int64: two's complement, 10 bytes
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _len_field(number: int, payload: bytes) -> bytes:
    return _tag(number, _LEN) + _varint(len(payload)) + payload


def _str_field(number: int, value: str) -> bytes:
    return _len_field(number, value.encode()) if value else b""


def _bool_field(number: int, value: bool) -> bytes:
    return _tag(number, _VARINT) + b"\x01" if value else b""


def _map_field(number: int, entries: Mapping[str, str]) -> bytes:
    return b"".join(_len_field(number, _str_field(1, k) + _str_field(2, v))
                    for k, v in entries.items())


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) of every field in order: an int for varints and fixed-width
    fields, bytes for length-delimited ones."""
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        value: int | bytes
        if wire_type == _VARINT:
            value, pos = _read_varint(data, pos)
        elif wire_type in (_I64, _I32):
            size = 8 if wire_type == _I64 else 4
            if pos + size > len(data):
                raise WireError("truncated fixed-width field")
            value, pos = int.from_bytes(data[pos:pos + size], "little"), pos + size
        elif wire_type == _LEN:
            size, pos = _read_varint(data, pos)
            if pos + size > len(data):
                raise WireError(f"field {number}: length {size} past the end")
            value, pos = bytes(data[pos:pos + size]), pos + size
        else:
            raise WireError(f"field {number}: unsupported wire type {wire_type}")
        yield number, value


def _text(number: int, value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise WireError(f"field {number}: a string was expected")
    try:
        return value.decode()
    except UnicodeDecodeError:
        raise WireError(f"field {number}: not UTF-8") from None


def _sub(number: int, value: int | bytes) -> bytes:
    if not isinstance(value, bytes):
        raise WireError(f"field {number}: a message was expected")
    return value


def _flag(number: int, value: int | bytes) -> bool:
    if isinstance(value, bytes):
        raise WireError(f"field {number}: a bool was expected")
    return value != 0


def _map_entry(number: int, value: int | bytes) -> tuple[str, str]:
    key = val = ""
    for n, v in fields(_sub(number, value)):
        if n == 1:
            key = _text(n, v)
        elif n == 2:
            val = _text(n, v)
    return key, val


def _strings(data: bytes, number: int) -> tuple[str, ...]:
    """A message's repeated string field ``number``."""
    return tuple(_text(n, v) for n, v in fields(data) if n == number)


# -- the messages ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Empty:
    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, data: bytes) -> Empty:
        for _ in fields(data):
            pass
        return cls()


@dataclass(frozen=True)
class DevicePluginOptions:
    pre_start_required: bool = False                    # 1
    get_preferred_allocation_available: bool = False    # 2

    def encode(self) -> bytes:
        return _bool_field(1, self.pre_start_required) + \
            _bool_field(2, self.get_preferred_allocation_available)

    @classmethod
    def decode(cls, data: bytes) -> DevicePluginOptions:
        got = {n: _flag(n, v) for n, v in fields(data) if n in (1, 2)}
        return cls(got.get(1, False), got.get(2, False))


@dataclass(frozen=True)
class RegisterRequest:
    version: str = ""                                   # 1
    endpoint: str = ""                                  # 2: the socket's name in the directory
    resource_name: str = ""                             # 3
    options: DevicePluginOptions | None = None          # 4

    def encode(self) -> bytes:
        out = _str_field(1, self.version) + _str_field(2, self.endpoint) + \
            _str_field(3, self.resource_name)
        if self.options is not None:
            out += _len_field(4, self.options.encode())
        return out

    @classmethod
    def decode(cls, data: bytes) -> RegisterRequest:
        version = endpoint = resource = ""
        options = None
        for n, v in fields(data):
            if n == 1:
                version = _text(n, v)
            elif n == 2:
                endpoint = _text(n, v)
            elif n == 3:
                resource = _text(n, v)
            elif n == 4:
                options = DevicePluginOptions.decode(_sub(n, v))
        return cls(version, endpoint, resource, options)


@dataclass(frozen=True)
class Device:
    id: str                                             # 1 (``ID``)
    health: str = HEALTHY                               # 2
    # 3 (topology: NUMA nodes) is neither written nor read: ENIs have none

    def encode(self) -> bytes:
        return _str_field(1, self.id) + _str_field(2, self.health)

    @classmethod
    def decode(cls, data: bytes) -> Device:
        got = {n: _text(n, v) for n, v in fields(data) if n in (1, 2)}
        return cls(got.get(1, ""), got.get(2, ""))


@dataclass(frozen=True)
class ListAndWatchResponse:
    devices: tuple[Device, ...] = ()                    # 1, repeated

    def encode(self) -> bytes:
        return b"".join(_len_field(1, d.encode()) for d in self.devices)

    @classmethod
    def decode(cls, data: bytes) -> ListAndWatchResponse:
        return cls(tuple(Device.decode(_sub(n, v)) for n, v in fields(data) if n == 1))


@dataclass(frozen=True)
class AllocateRequest:
    # 1, repeated ContainerAllocateRequest{1: repeated string devices_ids}: one per container
    container_requests: tuple[tuple[str, ...], ...] = ()

    def encode(self) -> bytes:
        return b"".join(_len_field(1, b"".join(_str_field(1, i) for i in ids))
                        for ids in self.container_requests)

    @classmethod
    def decode(cls, data: bytes) -> AllocateRequest:
        return cls(tuple(_strings(_sub(n, v), 1) for n, v in fields(data) if n == 1))


@dataclass(frozen=True)
class ContainerAllocateResponse:
    """What the runtime adds to a container. ENIs need nothing (the CNI plugin does the work):
    upstream's answer is empty. Mounts (2), device specs (3) and CDI devices (5) are neither
    written nor read."""

    envs: Mapping[str, str] = field(default_factory=dict)          # 1, map
    annotations: Mapping[str, str] = field(default_factory=dict)   # 4, map

    def encode(self) -> bytes:
        return _map_field(1, self.envs) + _map_field(4, self.annotations)

    @classmethod
    def decode(cls, data: bytes) -> ContainerAllocateResponse:
        envs: dict[str, str] = {}
        annotations: dict[str, str] = {}
        for n, v in fields(data):
            if n in (1, 4):
                key, value = _map_entry(n, v)
                (envs if n == 1 else annotations)[key] = value
        return cls(envs, annotations)


@dataclass(frozen=True)
class AllocateResponse:
    container_responses: tuple[ContainerAllocateResponse, ...] = ()   # 1, repeated

    def encode(self) -> bytes:
        # an empty entry is still written: the kubelet counts one response per container
        return b"".join(_len_field(1, c.encode()) for c in self.container_responses)

    @classmethod
    def decode(cls, data: bytes) -> AllocateResponse:
        return cls(tuple(ContainerAllocateResponse.decode(_sub(n, v))
                         for n, v in fields(data) if n == 1))


@dataclass(frozen=True)
class PreStartContainerRequest:
    devices_ids: tuple[str, ...] = ()                   # 1, repeated

    def encode(self) -> bytes:
        return b"".join(_str_field(1, i) for i in self.devices_ids)

    @classmethod
    def decode(cls, data: bytes) -> PreStartContainerRequest:
        return cls(_strings(data, 1))


@dataclass(frozen=True)
class PreStartContainerResponse:
    def encode(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, data: bytes) -> PreStartContainerResponse:
        Empty.decode(data)
        return cls()


def devices(count: int, prefix: str = "eni") -> tuple[Device, ...]:
    """``count`` healthy devices ``<prefix>-0`` … ``<prefix>-<count-1>``, as upstream names them."""
    return tuple(Device(f"{prefix}-{i}") for i in range(count))
