"""The CNI plugin ↔ daemon wire protocol: newline-delimited JSON over a unix stream socket.

Standard library only. The plugin itself speaks the same lines through ``terway.rpc.cnicodec``
(no ``json`` or ``typing``); this module re-exports its constants and ``RpcError``.

Framing: one JSON object per line (UTF-8, ``\\n``-terminated, at most ``MAX_MESSAGE`` bytes).
The client opens a connection, writes one request line, reads one reply line and closes; a server
may serve several requests on one connection, in order.

    request  {"v": 1, "method": "AllocIP", "params": {...}}
    reply    {"v": 1, "ok": true, "result": {...}}
    error    {"v": 1, "ok": false, "error": {"code": "...", "class": "...", "message": "..."}}

``params`` and ``result`` are the messages below, field for field; unknown keys are ignored
(newer peers may add fields), missing required keys and wrong types are refused with an
``InvalidRequest`` error naming the field.

Messages are ``typing.NamedTuple`` classes (typed, immutable, ``._replace``), not dataclasses:
importing ``dataclasses`` and building ten of them costs ~25 ms per plugin run, NamedTuples ~7 ms.
Sequences are tuples.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

from terway.rpc.cnicodec import (
    CLASS_AUTH as CLASS_AUTH,
    CLASS_BUSY as CLASS_BUSY,
    CLASS_EXHAUSTED as CLASS_EXHAUSTED,
    CLASS_FATAL as CLASS_FATAL,
    CLASS_INVALID as CLASS_INVALID,
    CLASS_INVALID_STATE as CLASS_INVALID_STATE,
    CLASS_NOT_FOUND as CLASS_NOT_FOUND,
    CLASS_PROTOCOL as CLASS_PROTOCOL,
    CLASS_QUOTA as CLASS_QUOTA,
    CLASS_THROTTLED as CLASS_THROTTLED,
    CLASS_TRANSIENT as CLASS_TRANSIENT,
    CLASS_UNREACHABLE as CLASS_UNREACHABLE,
    DATAPATH_EXCLUSIVE as DATAPATH_EXCLUSIVE,
    DATAPATH_IPVLAN as DATAPATH_IPVLAN,
    DATAPATH_VETH as DATAPATH_VETH,
    DEFAULT_SOCKET as DEFAULT_SOCKET,
    DEFAULT_TIMEOUT as DEFAULT_TIMEOUT,
    ERR_IN_FLIGHT as ERR_IN_FLIGHT,
    ERR_INTERNAL as ERR_INTERNAL,
    ERR_INVALID_REQUEST as ERR_INVALID_REQUEST,
    ERR_NOT_READY as ERR_NOT_READY,
    ERR_PROTOCOL as ERR_PROTOCOL,
    ERR_TIMEOUT as ERR_TIMEOUT,
    ERR_UNKNOWN_CONTAINER as ERR_UNKNOWN_CONTAINER,
    ERR_UNKNOWN_METHOD as ERR_UNKNOWN_METHOD,
    ERR_UNREACHABLE as ERR_UNREACHABLE,
    IP_TYPE_ENI as IP_TYPE_ENI,
    IP_TYPE_ENIIP as IP_TYPE_ENIIP,
    MAX_MESSAGE as MAX_MESSAGE,
    PROTOCOL_VERSION as PROTOCOL_VERSION,
    RETRYABLE_CLASSES as RETRYABLE_CLASSES,
    RpcError as RpcError,
    exchange,
)


def invalid(message: str) -> RpcError:
    return RpcError(ERR_INVALID_REQUEST, CLASS_INVALID, message)


# ---------------------------------------------------------------------------------------------
# Messages


class AllocIPRequest(NamedTuple):
    """CNI ADD: allocate an address for the pod *and* wire its netns (the daemon does netlink)."""

    pod_name: str
    pod_namespace: str
    container_id: str
    netns: str
    ifname: str
    # Hints from the CNI config / runtimeConfig; the daemon's own config and pod annotations win.
    eniip_virtual_type: str | None = None  # "veth" | "ipvlan"
    mtu: int | None = None
    disable_host_peer: bool | None = None
    ingress_bps: int | None = None  # runtimeConfig.bandwidth.ingressRate, bits/s
    egress_bps: int | None = None
    host_stack_cidrs: tuple[str, ...] = ()  # exclusive ENI and IPVLAN: to the host stack


class IPInfo(NamedTuple):
    """What the pod got; AllocIP's and GetIPInfo's result."""

    ip_type: str  # eniip | eni
    pod_ip: str
    prefix_len: int  # prefix of the address on the pod's interface (32 for veth/exclusive)
    gateway: str
    eni_mac: str
    vswitch_cidr: str
    service_cidr: str = ""
    eni_ifindex: int | None = None  # in the node's namespace
    ingress_bps: int = 0
    egress_bps: int = 0
    datapath: str = DATAPATH_VETH  # veth | ipvlan | exclusive
    ifname: str = "eth0"
    pod_mac: str = ""  # MAC of the pod's interface (CNI result)
    host_ifname: str = ""  # host side veth, if any
    host_mac: str = ""
    mtu: int = 1500
    problems: tuple[str, ...] = ()  # GetIPInfo: datapath check findings


class ReleaseIPRequest(NamedTuple):
    """CNI DEL: tear down the pod's datapath (netns may be gone) and release its address."""

    pod_name: str
    pod_namespace: str
    container_id: str
    ifname: str
    netns: str = ""


class ReleaseIPReply(NamedTuple):
    released: bool  # False: nothing was held (repeated DEL, failed ADD): still a success


class GetIPInfoRequest(NamedTuple):
    """CNI CHECK: the daemon's view of the pod, plus a check of its datapath."""

    pod_name: str
    pod_namespace: str
    container_id: str
    ifname: str
    netns: str = ""


class RecordEventRequest(NamedTuple):
    pod_name: str
    pod_namespace: str
    reason: str  # AllocIPSucceed | AllocIPFailed
    message: str


class Empty(NamedTuple):
    """A reply with nothing to say."""


class StatusRequest(NamedTuple):
    """No parameters."""


class StatusReply(NamedTuple):
    ready: bool
    message: str = ""


class Attachment(NamedTuple):
    container_id: str
    ifname: str


class GCRequest(NamedTuple):
    """CNI GC: every attachment not listed here may be released."""

    valid_attachments: tuple[Attachment, ...]


class GCReply(NamedTuple):
    released: tuple[str, ...] = ()  # container ids released


class ExecCNIRequest(NamedTuple):
    """The native plugin front (terway/cni/shim.c) hands a whole CNI invocation over; the
    daemon runs the Python plugin on it in-process (terway/daemon/cniexec.py)."""

    env: str    # base64 of the CNI_* variables as NUL-terminated KEY=VALUE entries
    stdin: str  # base64 of the plugin's stdin (the netconf)


class ExecCNIReply(NamedTuple):
    exit: int    # the plugin's exit code
    stdout: str  # base64 of what the plugin printed (its CNI result or error)
    stderr: str  # base64


METHODS: dict[str, tuple[type[Any], type[Any]]] = {
    "AllocIP": (AllocIPRequest, IPInfo),
    "ReleaseIP": (ReleaseIPRequest, ReleaseIPReply),
    "GetIPInfo": (GetIPInfoRequest, IPInfo),
    "RecordEvent": (RecordEventRequest, Empty),
    "Status": (StatusRequest, StatusReply),
    "GC": (GCRequest, GCReply),
    "ExecCNI": (ExecCNIRequest, ExecCNIReply),
}
_METHOD_OF: dict[type[Any], str] = {req: name for name, (req, _) in METHODS.items()}
_MESSAGES: dict[str, type[Any]] = {"Attachment": Attachment}  # nested message types

# ---------------------------------------------------------------------------------------------
# Codec

M = TypeVar("M")
_SCALARS: dict[str, type] = {"str": str, "int": int, "bool": bool}


def _convert(value: Any, hint: str, where: str) -> Any:
    """Check ``value`` against a field annotation string (``str``, ``int | None``,
    ``tuple[Attachment, ...]``); evaluated by hand so ``typing`` machinery stays unloaded."""
    if hint.endswith(" | None"):
        if value is None:
            return None
        hint = hint[: -len(" | None")]
    if hint.startswith("tuple["):
        if not isinstance(value, list | tuple):
            raise invalid(f"{where}: expected a list, got {type(value).__name__}")
        item = hint[len("tuple[") : -len(", ...]")]
        return tuple(_convert(v, item, f"{where}[{i}]") for i, v in enumerate(value))
    if hint in _MESSAGES:
        return from_dict(_MESSAGES[hint], value, where)
    want = _SCALARS[hint]
    if want is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise invalid(f"{where}: expected an integer, got {json.dumps(value)}")
    if not isinstance(value, want):
        raise invalid(f"{where}: expected {hint}, got {json.dumps(value)}")
    return value


def from_dict(cls: type[M], data: Any, where: str = "params") -> M:
    """Build message ``cls`` from decoded JSON, refusing bad input with the field's path."""
    if not isinstance(data, dict):
        raise invalid(f"{where}: expected an object, got {type(data).__name__}")
    kwargs: dict[str, Any] = {}
    defaults: dict[str, Any] = cls._field_defaults  # type: ignore[attr-defined]
    for name, hint in cls.__annotations__.items():
        path = f"{where}.{name}"
        if name not in data:
            if name not in defaults:
                raise invalid(f"{path}: required field missing")
            continue
        text = str(getattr(hint, "__forward_arg__", hint))  # NamedTuple wraps a ForwardRef
        kwargs[name] = _convert(data[name], text, path)
    return cls(**kwargs)


def to_dict(message: Any) -> dict[str, Any]:
    """Message → JSON-ready dict (nested messages too; tuples become lists)."""
    return {name: _plain(value) for name, value in zip(message._fields, message, strict=True)}


def _plain(value: Any) -> Any:
    if hasattr(value, "_fields"):
        return to_dict(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


def encode_request(request: Any) -> bytes:
    method = _METHOD_OF.get(type(request))
    if method is None:
        raise TypeError(f"not a request message: {type(request).__name__}")
    return _line({"v": PROTOCOL_VERSION, "method": method, "params": to_dict(request)})


def decode_request(line: bytes) -> tuple[str, Any]:
    """Server side: (method name, request dataclass); RpcError(InvalidRequest|UnknownMethod)."""
    obj = _load(line, "request")
    method = obj.get("method")
    if not isinstance(method, str):
        raise invalid("request.method: required string missing")
    if method not in METHODS:
        raise RpcError(ERR_UNKNOWN_METHOD, CLASS_INVALID, f"unknown method {method!r}")
    return method, from_dict(METHODS[method][0], obj.get("params", {}), "params")


def encode_reply(result: Any) -> bytes:
    return _line({"v": PROTOCOL_VERSION, "ok": True, "result": to_dict(result)})


def encode_error(error: RpcError) -> bytes:
    return _line({"v": PROTOCOL_VERSION, "ok": False, "error": error.to_wire()})


def decode_reply(line: bytes, reply_cls: type[M]) -> M:
    """Client side: the result as ``reply_cls``, or raise the daemon's RpcError."""
    try:
        obj = _load(line, "reply")
        if obj.get("ok") is True:
            return from_dict(reply_cls, obj.get("result", {}), "result")
        err = obj.get("error")
        if not isinstance(err, dict):
            raise invalid("reply.error: missing")
    except RpcError as exc:
        raise RpcError(ERR_PROTOCOL, CLASS_PROTOCOL, f"bad reply from daemon: {exc}") from None
    raise RpcError(
        str(err.get("code", ERR_INTERNAL)),
        str(err.get("class", CLASS_FATAL)),
        str(err.get("message", "")),
    )


def _load(line: bytes, what: str) -> dict[str, Any]:
    if len(line) > MAX_MESSAGE:
        raise invalid(f"{what}: larger than {MAX_MESSAGE} bytes")
    try:
        obj = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise invalid(f"{what}: not JSON: {exc}") from None
    except RecursionError:
        raise invalid(f"{what}: not JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise invalid(f"{what}: expected a JSON object")
    if obj.get("v") != PROTOCOL_VERSION:
        raise invalid(f"{what}.v: unsupported protocol version {obj.get('v')!r}")
    return obj


# ---------------------------------------------------------------------------------------------
# Client (blocking: the plugin) and server helper (asyncio: the daemon)


class RpcClient:
    """One connection per call; ``timeout`` covers connect + request + reply."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET, timeout: float = DEFAULT_TIMEOUT):
        self.socket_path = socket_path
        self.timeout = timeout

    def call(self, request: Any) -> Any:
        method = _METHOD_OF[type(request)]
        reply_cls = METHODS[method][1]
        line = exchange(self.socket_path, self.timeout, method, encode_request(request))
        return decode_reply(line, reply_cls)

    def alloc_ip(self, request: AllocIPRequest) -> IPInfo:
        reply: IPInfo = self.call(request)
        return reply

    def release_ip(self, request: ReleaseIPRequest) -> ReleaseIPReply:
        reply: ReleaseIPReply = self.call(request)
        return reply

    def get_ip_info(self, request: GetIPInfoRequest) -> IPInfo:
        reply: IPInfo = self.call(request)
        return reply

    def record_event(self, request: RecordEventRequest) -> None:
        self.call(request)

    def status(self) -> StatusReply:
        reply: StatusReply = self.call(StatusRequest())
        return reply

    def gc(self, valid_attachments: tuple[Attachment, ...]) -> GCReply:
        reply: GCReply = self.call(GCRequest(valid_attachments))
        return reply






async def handle_line(line: bytes, handler: Callable[[str, Any], Awaitable[Any]]) -> bytes:
    """Decode one request line, run ``handler(method, request)``, encode its reply or error.

    RpcError from the handler goes back as is; any other exception becomes DaemonInternalError
    with its text (never a traceback on the wire).
    """
    try:
        method, request = decode_request(line)
        return encode_reply(await handler(method, request))
    except RpcError as exc:
        return encode_error(exc)
    except Exception as exc:
        return encode_error(RpcError(ERR_INTERNAL, CLASS_FATAL, f"{type(exc).__name__}: {exc}"))


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handler: Callable[[str, Any], Awaitable[Any]],
) -> None:
    """``asyncio.start_unix_server`` callback body: answer lines until the client closes.

    Start the server with ``limit=MAX_MESSAGE + 1`` so an oversized line is refused cleanly.
    """
    try:
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than the stream limit
                writer.write(encode_error(invalid(f"request: larger than {MAX_MESSAGE} bytes")))
                break
            if not line:
                break
            writer.write(await handle_line(line.rstrip(b"\n"), handler))
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
