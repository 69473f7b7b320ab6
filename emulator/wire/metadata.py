"""The instance metadata service (``100.100.100.200``) over HTTP, text/plain like the real one.

Which instance answers: (a) a ``/instances/<instance-id>`` prefix on the path (so a daemon outside
any netns can use ``--metadata-endpoint http://127.0.0.1:P/instances/i-xxx``); else (b) the
instance whose primary private IP is the client's source address (the fabric); else (c) the
emulator's default ``metadata_instance``. Unknown instance or path → 404.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from emulator.wire.envelope import WireResponse, text_response

if TYPE_CHECKING:
    from emulator.server import Emulator
    from emulator.wire.gateway import WireRequest

ROOT = "/latest/"
META = "/latest/meta-data"
INSTANCES = "/instances/"
TOKEN_PATH = "/latest/api/token"
NOT_FOUND = "404 - Not Found"


def matches(path: str) -> bool:
    return path.startswith(ROOT) or path == "/latest" or path.startswith(INSTANCES)


def split(path: str) -> tuple[str | None, str]:
    """``(prefix instance id or None, path below /latest/)``: ``('i-1', 'meta-data/mac')``."""
    instance = None
    if path.startswith(INSTANCES):
        instance, _, rest = path[len(INSTANCES):].partition("/")
        path = "/" + rest
    if path in ("/latest", ROOT):
        return instance, ""
    if not path.startswith(ROOT):
        return instance, "\0"  # never a valid metadata path
    return instance, path[len(ROOT):]


def handle(emulator: Emulator, req: WireRequest) -> WireResponse:
    instance, below = split(req.path)
    if req.method == "PUT" and below == "api/token":
        return text_response(secrets.token_urlsafe(32))
    if req.method not in ("GET", "HEAD"):
        return text_response("405 - Method Not Allowed", 405)
    if below == "":
        return text_response("dynamic/\nmeta-data/\nuser-data")
    if instance is None:
        instance = emulator.instance_for_ip(req.client_ip) or emulator.metadata_instance
    if instance is None:
        return text_response(NOT_FOUND, 404)
    if below == "meta-data":
        below = "meta-data/"
    if not below.startswith("meta-data/"):
        return text_response(NOT_FOUND, 404)
    value = emulator.metadata(instance, below[len("meta-data/"):])
    if value is None:
        return text_response(NOT_FOUND, 404)
    return text_response(value)
