"""What travels back on the wire: request ids, the JSON error body, and the response type.

Error bodies are exactly the cloud's: ``{"RequestId","HostId","Code","Message","Recommend"}``
with the ApiError's HTTP status, so the SDK raises ClientException/ServerException as it would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any

from emulator.model.errors import ApiError

JSON_TYPE = "application/json;charset=utf-8"
TEXT_TYPE = "text/plain;charset=utf-8"
HOST_IDS = {"ecs": "ecs.aliyuncs.com", "vpc": "vpc.aliyuncs.com"}
PRODUCT_NAMES = {"ecs": "Ecs", "vpc": "Vpc"}


@dataclass
class WireResponse:
    """A transport-neutral HTTP response, sent by the HTTP server and the ``responses`` mock."""

    status: int
    body: bytes
    content_type: str = JSON_TYPE
    headers: list[tuple[str, str]] = field(default_factory=list)


def _unencodable(obj: Any) -> Any:
    """What ``json.JSONEncoder.default`` does: refuse, with the stdlib's message."""
    raise TypeError(f"Object of type {obj.__class__.__name__} is not JSON serializable")


# The C encoder ``json.dumps`` ends up in, built once and called directly: ``JSONEncoder.encode``
# pays a Python layer (iterencode, one-shot checks) per call that cost a fifth of the encoding.
# No circular check (``markers=None``): a shared markers dict would make two threads encoding the
# same object refuse it; bodies are fresh trees built per request, never cyclic.
_ENCODE = c_make_encoder(
    None, _unencodable, encode_basestring, None, ":", ",", False, False, True)


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON: ``json.dumps(obj, separators=(",", ":"), ensure_ascii=False)``."""
    return "".join(_ENCODE(obj, 0)).encode("utf-8")


def error_body(err: ApiError, request_id: str, product: str = "ecs") -> dict[str, str]:
    return {
        "RequestId": request_id,
        "HostId": HOST_IDS.get(product, "ecs.aliyuncs.com"),
        "Code": err.code,
        "Message": err.message,
        "Recommend": (
            f"https://api.aliyun.com/troubleshoot?q={err.code}"
            f"&product={PRODUCT_NAMES.get(product, 'Ecs')}&requestId={request_id}"
        ),
    }


def error_response(err: ApiError, request_id: str, product: str = "ecs") -> WireResponse:
    return WireResponse(err.http_status, dumps(error_body(err, request_id, product)))


def json_response(obj: Any, status: int = 200) -> WireResponse:
    return WireResponse(status, dumps(obj))


def text_response(text: str, status: int = 200) -> WireResponse:
    return WireResponse(status, text.encode("utf-8"), TEXT_TYPE)
