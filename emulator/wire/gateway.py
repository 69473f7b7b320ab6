"""The transport-neutral front door: one request in, one response out.

Both the threaded HTTP server and the in-process ``responses`` mock hand every request here, so
signature checks, fault injection, routing and error bodies are written once. Order of checks on
an API call: signature → version/action → fault rule (sleep its latency, maybe refuse) → model.
Anything refused before the model is called changes nothing.

Action and version come from the ``x-acs-action``/``x-acs-version`` headers (ACS3), or, for a
request signed the RPC way, from its signed ``Action``/``Version`` parameters (the Go SDK sends
no such headers); the RPC signing parameters never reach the model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from emulator.model.errors import ApiError
from emulator.wire import control, metadata
from emulator.wire.envelope import WireResponse, dumps, error_response
from emulator.wire.logfmt import get_logger
from emulator.wire.signature import FORM_TYPE, RPC_SIGNING_PARAMS, parse_query

if TYPE_CHECKING:
    from emulator.server import Emulator

VERSIONS = {"2014-05-26": "ecs", "2016-04-28": "vpc"}
log = get_logger("api")


@dataclass
class WireRequest:
    """An HTTP request as both front ends see it; ``headers`` maps lowercase names to values."""

    method: str
    path: str
    query: str
    headers: dict[str, list[str]]
    body: bytes = b""
    client_ip: str = "127.0.0.1"
    _query_params: dict[str, str] | None = field(default=None, init=False, repr=False,
                                                 compare=False)

    def header(self, name: str) -> str | None:
        values = self.headers.get(name)
        return values[0] if values else None

    @property
    def query_params(self) -> dict[str, str]:
        """The decoded query string (parsed once: the signature check and the action share it).

        Cached by hand: ``functools.cached_property`` takes a lock on every read in 3.11."""
        if self._query_params is None:
            self._query_params = parse_query(self.query)
        return self._query_params

    def params(self) -> dict[str, str]:
        """Query parameters, then form-body parameters (the SDK sends RPC params in the query).

        A fresh dict: the fault engine and the model may keep it, the cached query must not
        change under the signature check of a later reader."""
        out = dict(self.query_params)
        if self.body and (self.header("content-type") or "").startswith(FORM_TYPE):
            out.update(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))
        return out


class Gateway:
    """Routes a WireRequest to the control API, the metadata service or the cloud API."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle(self, req: WireRequest) -> WireResponse:
        if req.path.startswith(control.PREFIX):
            return control.handle(self.emulator, req)
        if metadata.matches(req.path):
            return metadata.handle(self.emulator, req)
        return self.api(req)

    def api(self, req: WireRequest) -> WireResponse:
        # the clock is read only when a log line could want the duration (info covers refusals)
        started = time.perf_counter() if log.isEnabledFor(20) else 0.0
        headers = req.headers
        query = req.query_params
        # RPC-style clients may send no x-acs-* headers: the query names action and version
        action = _first(headers, "x-acs-action") or query.get("Action", "")
        version = _first(headers, "x-acs-version") or query.get("Version", "")
        product = VERSIONS.get(version, "ecs")
        emulator = self.emulator
        ak = code = None
        try:
            principal = emulator.verifier.verify(req.method, req.path, query, headers, req.body)
            ak = principal.access_key_id
            params = req.params()
            if principal.rpc:  # the signed parameters say what to do, not unsigned headers
                action = params.get("Action") or action
                version = params.get("Version") or version
                for name in RPC_SIGNING_PARAMS.intersection(params):
                    del params[name]
            product = _product(action, version)
            emulator.apply_faults(product, action, params)
            resp = WireResponse(200, dumps(emulator.dispatch(product, action, params)))
        except ApiError as err:
            code = err.code
            rid = err.request_id or emulator.new_request_id()
            resp = error_response(err, rid, product)
        level = 20 if code else 10  # refusals at info, successes at debug: a cheap hot path
        if log.isEnabledFor(level):
            log.log(
                level,
                "api call",
                extra={"fields": {
                    "action": action, "product": product, "status": resp.status, "code": code,
                    "ak": ak, "client": req.client_ip,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 3),
                }},
            )
        return resp


def _first(headers: dict[str, list[str]], name: str) -> str:
    """The header's first value, or "" when absent (``WireRequest.header`` without a call)."""
    values = headers.get(name)
    return values[0] if values else ""


def _product(action: str, version: str) -> str:
    """The product the version names; ApiError when action or version is missing or unknown."""
    if not action:
        raise ApiError("MissingParameter.Action", "The input parameter Action is mandatory.", 400)
    if not version:
        raise ApiError("MissingParameter.Version", "The input parameter Version is mandatory.", 400)
    product = VERSIONS.get(version)
    if product is None:
        raise ApiError("InvalidVersion", "Specified parameter Version is not valid.", 400)
    return product
