"""``/_emulator/…``: reset, seed, snapshot, load a world, manage fault rules, advance the clock.

Loopback clients only (the emulator is a test tool; no credential is needed from the machine it
runs on) unless the Emulator was built with ``allow_remote_control=True``. Bodies are JSON
(a world may also be YAML); errors are ``{"error": "..."}`` with 400/403/404/405.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from emulator.wire.envelope import WireResponse, json_response

if TYPE_CHECKING:
    from emulator.server import Emulator
    from emulator.wire.gateway import WireRequest

PREFIX = "/_emulator/"


class ControlError(Exception):
    """A refused control request: the message names the field; nothing was changed."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(ip: str) -> bool:
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def handle(emulator: Emulator, req: WireRequest) -> WireResponse:
    if not (emulator.allow_remote_control or is_loopback(req.client_ip)):
        return json_response({"error": "control endpoints accept loopback clients only"}, 403)
    name = req.path[len(PREFIX):].strip("/")
    head, _, arg = name.partition("/")
    route = ROUTES.get((req.method, head))
    if route is None:
        allowed = sorted(m for (m, h) in ROUTES if h == head)
        if allowed:
            return json_response({"error": f"{req.method} not allowed; use {allowed}"}, 405)
        return json_response({"error": f"unknown control endpoint {req.path!r}"}, 404)
    try:
        return json_response(route(emulator, req, arg))
    except ControlError as err:
        return json_response({"error": str(err)}, err.status)
    except (ValueError, TypeError) as err:
        return json_response({"error": str(err)}, 400)


def _json_body(req: WireRequest) -> Any:
    if not req.body.strip():
        return {}
    try:
        return json.loads(req.body)
    except ValueError as err:
        raise ControlError(f"body is not valid JSON: {err}") from None


def _health(emu: Emulator, req: WireRequest, arg: str) -> Any:
    return {"ok": True, "seed": emu.seed, "access_key_ids": emu.credentials.access_key_ids}


def _reset(emu: Emulator, req: WireRequest, arg: str) -> Any:
    emu.reset()
    return {"ok": True}


def _seed(emu: Emulator, req: WireRequest, arg: str) -> Any:
    body = _json_body(req)
    from_body = body.get("seed") if isinstance(body, dict) else None
    raw = dict(parse_qsl(req.query)).get("seed", from_body)
    if raw is None:
        raise ControlError("field 'seed' is required (JSON body {\"seed\": N} or ?seed=N)")
    try:
        seed = int(raw)
    except (TypeError, ValueError):
        raise ControlError(f"field 'seed' must be an integer, got {raw!r}") from None
    emu.reseed(seed)
    return {"ok": True, "seed": seed}


def _snapshot(emu: Emulator, req: WireRequest, arg: str) -> Any:
    return emu.snapshot()


def _world(emu: Emulator, req: WireRequest, arg: str) -> Any:
    if not req.body.strip():
        raise ControlError("world body is empty: POST a YAML or JSON world document")
    emu.load_world(req.body.decode("utf-8"))
    return {"ok": True}


def _faults_list(emu: Emulator, req: WireRequest, arg: str) -> Any:
    return {"rules": emu.fault_rules()}


def _faults_add(emu: Emulator, req: WireRequest, arg: str) -> Any:
    """One rule or a list, all checked (``emulator.faults.build_rules``) before any is added."""
    return {"ids": emu.add_faults(_json_body(req))}


def _faults_delete(emu: Emulator, req: WireRequest, arg: str) -> Any:
    if not arg:
        emu.clear_faults()
        return {"ok": True}
    if not emu.remove_fault(arg):
        raise ControlError(f"no fault rule with id {arg!r}", 404)
    return {"ok": True}


def _advance(emu: Emulator, req: WireRequest, arg: str) -> Any:
    body = _json_body(req)
    raw = body.get("seconds") if isinstance(body, dict) else None
    if raw is None:
        raw = dict(parse_qsl(req.query)).get("seconds")
    try:
        seconds = float(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ControlError(f"field 'seconds' must be a number, got {raw!r}") from None
    if seconds < 0:
        raise ControlError("field 'seconds' must be >= 0")
    return {"ok": True, "now": emu.advance(seconds)}


Route = Callable[["Emulator", "WireRequest", str], Any]
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "health"): _health,
    ("POST", "reset"): _reset,
    ("POST", "seed"): _seed,
    ("GET", "snapshot"): _snapshot,
    ("POST", "world"): _world,
    ("GET", "faults"): _faults_list,
    ("POST", "faults"): _faults_add,
    ("DELETE", "faults"): _faults_delete,
    ("POST", "clock"): _advance,
}
