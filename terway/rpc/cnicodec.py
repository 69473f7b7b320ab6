"""The plugin's side of the daemon protocol, on the C accelerators only (no ``json``, ``socket``,
``re``, ``enum`` or ``typing`` at run time).

Every module imported here is paid on every pod ADD/DEL: ``json`` drags in ``re`` (its decoder's
whitespace and number patterns), ``socket`` drags in ``enum`` and ``selectors``, ``typing`` is
~5 ms on its own. Together ~25 ms per plugin run on the dev VM against an interpreter start of
~9 ms. ``_json`` (the C scanner/encoder ``json`` itself uses) and ``_socket`` give the same
results without them. Error paths may import ``json`` lazily (to produce its exact messages).

``terway.rpc.messages`` (the daemon side, with typed NamedTuple messages) re-exports the
constants and ``RpcError`` from here, so both ends share one definition of the protocol.
"""

from __future__ import annotations

import _json
import _socket
from time import monotonic

TYPE_CHECKING = False  # mypy treats this name as True; no ``typing`` import at run time
if TYPE_CHECKING:
    from typing import Any

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


def protocol_error(message: str) -> RpcError:
    return RpcError(ERR_PROTOCOL, CLASS_PROTOCOL, f"bad reply from daemon: {message}")


# ---------------------------------------------------------------------------------------------
# JSON through the C accelerators: byte-for-byte what ``json.loads`` / ``json.dumps`` give.

_WS = " \t\n\r"
TOO_DEEP = "nested too deeply"  # arrays/objects deeper than the interpreter's recursion limit


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads (json.decoder.JSONDecoder's defaults)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "-Infinity": float("-inf"),
        "Infinity": float("inf"),
        "NaN": float("nan"),
    }.__getitem__


_scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]


def _no_default(obj: Any) -> Any:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_encode = _json.make_encoder(
    None, _no_default, _json.encode_basestring_ascii, None, ":", ",", False, False, True
)
_encode_spaced = _json.make_encoder(
    None, _no_default, _json.encode_basestring_ascii, None, ": ", ", ", False, False, True
)


def loads(data: bytes | str) -> Any:
    """``json.loads`` for UTF-8 input; any failure is re-raised by ``json.loads`` itself (so
    ``json.JSONDecodeError`` / ``UnicodeDecodeError`` carry json's exact message and position)."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        if text[:1] == "\ufeff":
            raise ValueError("BOM")
        start = len(text) - len(text.lstrip(_WS))
        obj, end = _scan(text, start)
        if text[end:].strip(_WS):
            raise ValueError("extra data")
        return obj
    except (ValueError, StopIteration, SystemError):
        # SystemError: _json reports some errors (e.g. a control character in a string) through
        # json.decoder.JSONDecodeError, which it looks up in sys.modules without importing it.
        pass
    except RecursionError:
        raise ValueError(TOO_DEEP) from None
    import json  # the slow, precise path: only for input that is not plain valid JSON

    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


def dumps(obj: Any, compact: bool = True) -> str:
    """``json.dumps(obj)`` (``compact``: with ``separators=(",", ":")``)."""
    return "".join((_encode if compact else _encode_spaced)(obj, 0))


# ---------------------------------------------------------------------------------------------
# Replies: the result fields the plugin relies on, checked like terway.rpc.messages.from_dict does.
# (tests/cni/test_cnicodec.py keeps these in step with terway.rpc.messages' NamedTuples.)

_S, _I, _B = "str", "int", "bool"
REQUIRED = object()
# method → {field: (kind, default)}; kind "str" | "int" | "bool" | "int?" | "strs"
RESULTS: dict[str, dict[str, tuple[str, object]]] = {
    "AllocIP": {
        "ip_type": (_S, REQUIRED),
        "pod_ip": (_S, REQUIRED),
        "prefix_len": (_I, REQUIRED),
        "gateway": (_S, REQUIRED),
        "eni_mac": (_S, REQUIRED),
        "vswitch_cidr": (_S, REQUIRED),
        "service_cidr": (_S, ""),
        "eni_ifindex": ("int?", None),
        "ingress_bps": (_I, 0),
        "egress_bps": (_I, 0),
        "datapath": (_S, DATAPATH_VETH),
        "ifname": (_S, "eth0"),
        "pod_mac": (_S, ""),
        "host_ifname": (_S, ""),
        "host_mac": (_S, ""),
        "mtu": (_I, 1500),
        "problems": ("strs", ()),
    },
    "ReleaseIP": {"released": (_B, REQUIRED)},
    "RecordEvent": {},
    "Status": {"ready": (_B, REQUIRED), "message": (_S, "")},
    "GC": {"released": ("strs", ())},
    "ExecCNI": {"exit": (_I, REQUIRED), "stdout": (_S, REQUIRED), "stderr": (_S, REQUIRED)},
}
RESULTS["GetIPInfo"] = RESULTS["AllocIP"]


def _check(value: Any, kind: str, where: str) -> Any:
    if kind == "int?":
        if value is None:
            return None
        kind = _I
    if kind == "strs":
        if not isinstance(value, list):
            raise protocol_error(f"{where}: expected a list, got {type(value).__name__}")
        for i, item in enumerate(value):
            _check(item, _S, f"{where}[{i}]")
        return tuple(value)
    ok = (
        isinstance(value, str)
        if kind == _S
        else value is True or value is False
        if kind == _B
        else isinstance(value, int) and not isinstance(value, bool)
    )
    if not ok:
        raise protocol_error(f"{where}: expected {kind}, got {dumps(value)}")
    return value


def decode_result(method: str, line: bytes) -> dict[str, Any]:
    """A reply line → its result (every known field, defaults filled), or raise RpcError: the
    daemon's own error, or ProtocolError when the line is not the protocol."""
    if len(line) > MAX_MESSAGE:
        raise protocol_error(f"reply: larger than {MAX_MESSAGE} bytes")
    try:
        obj = loads(line)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise protocol_error(f"reply: not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise protocol_error("reply: expected a JSON object")
    if obj.get("v") != PROTOCOL_VERSION:
        raise protocol_error(f"reply.v: unsupported protocol version {obj.get('v')!r}")
    if obj.get("ok") is not True:
        err = obj.get("error")
        if not isinstance(err, dict):
            raise protocol_error("reply.error: missing")
        raise RpcError(
            str(err.get("code", ERR_INTERNAL)),
            str(err.get("class", CLASS_FATAL)),
            str(err.get("message", "")),
        )
    result = obj.get("result", {})
    if not isinstance(result, dict):
        raise protocol_error(f"result: expected an object, got {type(result).__name__}")
    out: dict[str, Any] = {}
    for name, (kind, default) in RESULTS[method].items():
        if name in result:
            out[name] = _check(result[name], kind, f"result.{name}")
        elif default is REQUIRED:
            raise protocol_error(f"result.{name}: required field missing")
        else:
            out[name] = default
    return out


# ---------------------------------------------------------------------------------------------
# The blocking client: one connection per call.


def call(socket_path: str, timeout: float, method: str, params: dict[str, Any]) -> dict[str, Any]:
    """Send one request, return its checked result; RpcError on any failure (never OSError).

    ``timeout`` covers connect + request + reply.
    """
    line = dumps({"v": PROTOCOL_VERSION, "method": method, "params": params}).encode() + b"\n"
    return decode_result(method, exchange(socket_path, timeout, method, line))


def exchange(socket_path: str, timeout: float, method: str, line: bytes) -> bytes:
    """The transport, shared with ``terway.rpc.messages.RpcClient``: one connection, one
    request line out, one reply line back; every socket failure becomes an RpcError. ``timeout``
    bounds the whole exchange, not each read: a peer trickling bytes cannot hold the plugin
    longer."""
    deadline = monotonic() + timeout
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect(socket_path)
        except (FileNotFoundError, ConnectionRefusedError, PermissionError) as exc:
            raise RpcError(
                ERR_UNREACHABLE,
                CLASS_UNREACHABLE,
                f"terway daemon unreachable at {socket_path}: {exc.strerror}",
            ) from None
        sock.settimeout(_remaining(deadline))
        sock.sendall(line)
        return read_line(sock, deadline)
    except TimeoutError:
        raise RpcError(
            ERR_TIMEOUT,
            CLASS_TRANSIENT,
            f"{method}: no reply from terway daemon within {timeout:g}s",
        ) from None
    except OSError as exc:
        raise RpcError(
            ERR_UNREACHABLE, CLASS_UNREACHABLE, f"{method}: daemon connection failed: {exc}"
        ) from None
    finally:
        sock.close()


def _remaining(deadline: float) -> float:
    left = deadline - monotonic()
    if left <= 0:
        raise TimeoutError
    return left


def read_line(sock: Any, deadline: float) -> bytes:
    """Bytes up to the first newline (or EOF, or just past MAX_MESSAGE), by ``deadline``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        sock.settimeout(_remaining(deadline))
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
