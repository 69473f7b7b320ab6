"""terway-cli's admin protocol: same socket, same framing as messages.py, own method names.

Admin methods are named ``Admin.<Verb>`` so the CNI protocol (terway/rpc/messages.py) stays
exactly what the plugin needs; terwayd's server (terway/daemon/server.py) routes ``Admin.*`` lines
to terway/daemon/adminapi.py and everything else to messages.py. This module is the shapes both
ends agree on (the daemon builds the replies, terway/cli/render.py prints them), so neither end
imports the other. Replies carry plain data (strings and numbers); nothing secret is included.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import types
import typing
from dataclasses import dataclass, field
from typing import Any

from terway.rpc import messages


@dataclass(frozen=True)
class MappingRequest:
    pass


@dataclass(frozen=True)
class MappingEntry:
    status: str            # Normal | Idle | Error
    pod_name: str          # "" for an idle resource
    pod_namespace: str
    res_id: str            # <mac>.<ip> the pod (store) holds; for Idle the pool's
    factory_res_id: str    # <mac>.<ip> as the pool (IPAM core) knows it; "" if it does not
    eni_id: str = ""
    reason: str = ""       # why a row is Error


@dataclass(frozen=True)
class MappingReply:
    entries: list[MappingEntry] = field(default_factory=list)


@dataclass(frozen=True)
class PoolRequest:
    pass


@dataclass(frozen=True)
class EniSummary:
    eni_id: str
    mac: str
    vswitch_id: str
    status: str
    ips: int
    used: int
    blocked_until: float | None = None   # the daemon's monotonic clock: meaningless elsewhere
    blocked_until_utc: str = ""          # the same moment as ISO 8601 UTC (…Z)
    blocked_for: float | None = None     # seconds still to go when the daemon answered


@dataclass(frozen=True)
class PoolReply:
    total: int
    used: int
    idle: int
    reserved: int
    disposed: int
    in_flight: int
    pending: int
    eni_count: int
    capacity: int = 0
    ready: bool = True
    message: str = ""
    enis: list[EniSummary] = field(default_factory=list)


@dataclass(frozen=True)
class ConfigRequest:
    pass


@dataclass(frozen=True)
class ConfigReply:
    source: str                 # the file the config was read from
    eni_conf: str               # JSON with secrets redacted
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MetadataRequest:
    pass


@dataclass(frozen=True)
class MetadataReply:
    instance_id: str
    instance_type: str
    region_id: str
    zone_id: str
    primary_mac: str
    vswitch_ids: list[str] = field(default_factory=list)
    max_enis: int = 0
    ips_per_eni: int = 0
    max_pods: int = 0


@dataclass(frozen=True)
class ShowRequest:
    pod: str                    # "namespace/name" or a bare name (searched in every namespace)


@dataclass(frozen=True)
class ShowResource:
    type: str
    id: str
    eni_id: str
    mac: str
    ip: str


@dataclass(frozen=True)
class ShowReply:
    namespace: str
    name: str
    container_id: str
    netns: str
    ifname: str
    ip_type: str
    resources: list[ShowResource] = field(default_factory=list)
    extra: dict[str, str] = field(default_factory=dict)


METHODS: dict[str, tuple[type[Any], type[Any]]] = {
    "Admin.Mapping": (MappingRequest, MappingReply),
    "Admin.Pool": (PoolRequest, PoolReply),
    "Admin.Config": (ConfigRequest, ConfigReply),
    "Admin.Metadata": (MetadataRequest, MetadataReply),
    "Admin.Show": (ShowRequest, ShowReply),
}
_METHOD_OF: dict[type[Any], str] = {req: name for name, (req, _) in METHODS.items()}


def is_admin(method: object) -> bool:
    return isinstance(method, str) and method in METHODS


def peek_method(line: bytes) -> str | None:
    """The ``method`` of a request line if it is an admin one (cheap check before messages.py)."""
    if b'"Admin.' not in line:
        return None
    try:
        obj = json.loads(line)
    except (ValueError, RecursionError):  # messages.py answers it with a specific error
        return None
    method = obj.get("method") if isinstance(obj, dict) else None
    return method if is_admin(method) else None


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def encode_request(request: Any) -> bytes:
    method = _METHOD_OF[type(request)]
    return _line({"v": messages.PROTOCOL_VERSION, "method": method,
                  "params": dataclasses.asdict(request)})


def encode_reply(result: Any) -> bytes:
    return _line({"v": messages.PROTOCOL_VERSION, "ok": True, "result": dataclasses.asdict(result)})


def decode_request(line: bytes) -> tuple[str, Any]:
    obj = json.loads(line)
    method = obj["method"]
    return method, from_dict(METHODS[method][0], obj.get("params", {}), "params")


def decode_reply(line: bytes, reply_cls: type[Any]) -> Any:
    """The result as ``reply_cls``, or raise the daemon's ``messages.RpcError``."""
    try:
        obj = json.loads(line)
    except ValueError:
        raise messages.RpcError(messages.ERR_PROTOCOL, messages.CLASS_PROTOCOL,
                           "bad reply from daemon: not JSON") from None
    if obj.get("ok") is True:
        return from_dict(reply_cls, obj.get("result", {}), "result")
    err = obj.get("error") or {}
    raise messages.RpcError(str(err.get("code", messages.ERR_INTERNAL)),
                       str(err.get("class", messages.CLASS_FATAL)), str(err.get("message", "")))


def from_dict(cls: type[Any], data: Any, where: str) -> Any:
    """Build dataclass ``cls`` from JSON, checking types; ``messages.invalid`` names a bad field."""
    if not isinstance(data, dict):
        raise messages.invalid(f"{where}: expected an object, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise messages.invalid(f"{where}.{f.name}: required field missing")
            continue
        kwargs[f.name] = _convert(data[f.name], hints[f.name], f"{where}.{f.name}")
    return cls(**kwargs)


def _convert(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        if value is None:
            return None
        (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
        return _convert(value, inner, where)
    if origin is list:
        if not isinstance(value, list):
            raise messages.invalid(f"{where}: expected a list")
        (item,) = typing.get_args(hint)
        return [_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise messages.invalid(f"{where}: expected an object")
        return {str(k): str(v) for k, v in value.items()}
    if dataclasses.is_dataclass(hint):
        return from_dict(typing.cast(type[Any], hint), value, where)
    if hint is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if hint in (str, int, bool) and (not isinstance(value, hint) or
                                     (hint is int and isinstance(value, bool))):
        raise messages.invalid(f"{where}: expected {hint.__name__}, got {json.dumps(value)}")
    return value


class AdminClient:
    """Blocking client; one connection per call."""

    def __init__(self, socket_path: str = messages.DEFAULT_SOCKET, timeout: float = 10.0) -> None:
        self.socket_path = socket_path
        self.timeout = timeout

    def call(self, request: Any) -> Any:
        method = _METHOD_OF[type(request)]
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.socket_path)
            except OSError as exc:
                raise messages.RpcError(messages.ERR_UNREACHABLE, messages.CLASS_UNREACHABLE,
                                   f"terway daemon unreachable at {self.socket_path}: "
                                   f"{exc.strerror or exc}") from None
            sock.sendall(encode_request(request))
            data = b""
            while b"\n" not in data:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            raise messages.RpcError(messages.ERR_TIMEOUT, messages.CLASS_TRANSIENT,
                               f"{method}: no reply within {self.timeout:g}s") from None
        finally:
            sock.close()
        if not data:
            raise messages.RpcError(messages.ERR_PROTOCOL, messages.CLASS_PROTOCOL,
                               "daemon closed the connection without reply")
        return decode_reply(data.split(b"\n", 1)[0], METHODS[method][1])
