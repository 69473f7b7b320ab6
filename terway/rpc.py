"""The CNI plugin ↔ daemon wire protocol: newline-delimited JSON over a unix stream socket.

Standard library only: the plugin imports this on every pod ADD/DEL, so it must stay cheap.

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
import socket
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Awaitable, Callable

PROTOCOL_VERSION = 1
DEFAULT_SOCKET = "/var/run/eni/eni.socket"
DEFAULT_TIMEOUT = 120.0  # upstream's CNI timeout, seconds
MAX_MESSAGE = 1 << 20

# Error codes of the daemon itself (cloud errors travel with the cloud's own code, e.g.
# ``InvalidVSwitchId.IpNotEnough``, and the class of terway.cloud.errors.ErrorClass).
ERR_INVALID_REQUEST = "InvalidRequest"      # class invalid
ERR_UNKNOWN_METHOD = "UnknownMethod"        # class invalid
ERR_IN_FLIGHT = "RequestInFlight"           # class busy: another request for this pod runs
ERR_UNKNOWN_CONTAINER = "UnknownContainer"  # class not_found: no such pod/container
ERR_NOT_READY = "NotReady"                  # class transient: daemon still starting
ERR_INTERNAL = "DaemonInternalError"        # class fatal
ERR_UNREACHABLE = "DaemonUnreachable"       # client side: socket missing / refused
ERR_TIMEOUT = "DaemonTimeout"               # client side: no reply in time
ERR_PROTOCOL = "ProtocolError"              # client side: reply not understood

# Error classes: the cloud's (terway.cloud.errors.ErrorClass values) plus the daemon's own.
CLASS_EXHAUSTED = "exhausted"
CLASS_QUOTA = "quota"
CLASS_THROTTLED = "throttled"
CLASS_TRANSIENT = "transient"
CLASS_NOT_FOUND = "not_found"
CLASS_INVALID_STATE = "invalid_state"
CLASS_AUTH = "auth"
CLASS_INVALID = "invalid"
CLASS_FATAL = "fatal"
CLASS_BUSY = "busy"
CLASS_UNREACHABLE = "unreachable"
CLASS_PROTOCOL = "protocol"

# Classes after which the same request may well succeed later (CNI code 11).
RETRYABLE_CLASSES = frozenset(
    {CLASS_EXHAUSTED, CLASS_QUOTA, CLASS_THROTTLED, CLASS_TRANSIENT, CLASS_BUSY}
)

IP_TYPE_ENIIP = "eniip"
IP_TYPE_ENI = "eni"
DATAPATH_VETH = "veth"
DATAPATH_IPVLAN = "ipvlan"
DATAPATH_EXCLUSIVE = "exclusive"


class RpcError(Exception):
    """A failure that crosses the wire: ``code`` (specific), ``error_class`` (what to do)."""

    def __init__(self, code: str, error_class: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.error_class = error_class
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.error_class in RETRYABLE_CLASSES

    def to_wire(self) -> dict[str, str]:
        return {"code": self.code, "class": self.error_class, "message": self.message}

    @classmethod
    def from_cloud_error(cls, exc: Any) -> RpcError:
        """Wrap a ``terway.cloud.errors.CloudError`` (duck-typed: no import on the hot path)."""
        return cls(str(exc.code), str(exc.error_class.value), str(exc))

    def __repr__(self) -> str:
        return f"RpcError({self.code!r}, {self.error_class!r}, {self.message!r})"


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


METHODS: dict[str, tuple[type[Any], type[Any]]] = {
    "AllocIP": (AllocIPRequest, IPInfo),
    "ReleaseIP": (ReleaseIPRequest, ReleaseIPReply),
    "GetIPInfo": (GetIPInfoRequest, IPInfo),
    "RecordEvent": (RecordEventRequest, Empty),
    "Status": (StatusRequest, StatusReply),
    "GC": (GCRequest, GCReply),
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
        data = encode_request(request)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            try:
                sock.connect(self.socket_path)
            except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
                raise RpcError(
                    ERR_UNREACHABLE,
                    CLASS_UNREACHABLE,
                    f"terway daemon unreachable at {self.socket_path}: {exc.strerror}",
                ) from None
            sock.sendall(data)
            line = _read_line(sock)
        except TimeoutError:
            raise RpcError(
                ERR_TIMEOUT,
                CLASS_TRANSIENT,
                f"{method}: no reply from terway daemon within {self.timeout:g}s",
            ) from None
        except OSError as exc:
            raise RpcError(
                ERR_UNREACHABLE, CLASS_UNREACHABLE, f"{method}: daemon connection failed: {exc}"
            ) from None
        finally:
            sock.close()
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


def _read_line(sock: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if b"\n" in chunk or size > MAX_MESSAGE:
            break
    data = b"".join(chunks)
    if not data:
        raise RpcError(ERR_PROTOCOL, CLASS_PROTOCOL, "daemon closed the connection without reply")
    return data.split(b"\n", 1)[0]




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
