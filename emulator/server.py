"""The ``Emulator`` facade: one model, its fault engine and its credentials, behind every front end.

The HTTP server, the ``responses`` mock, the control endpoints and the CLI all talk to the model
through this class only, so the model's API can evolve behind one thin adapter::

    emu = Emulator.create(seed=7, world="worlds/two-nodes.yaml")
    with emu.serve(port=0) as srv:           # threaded HTTP server on a free port
        Config(endpoint=srv.endpoint, protocol="http", access_key_id=emu.access_key_id, ...)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from emulator.model.errors import ApiError
from emulator.wire.envelope import RequestIds
from emulator.wire.http import ServerHandle, serve_in_thread
from emulator.wire.signature import Credentials, Verifier


class Emulator:
    """Cloud model + fault engine + accepted credentials, with the control operations."""

    def __init__(
        self,
        cloud: Any,
        faults: Any = None,
        credentials: Credentials | Mapping[str, str] | None = None,
        *,
        seed: int = 0,
        metadata_instance: str | None = None,
        allow_remote_control: bool = False,
        check_clock: bool = True,
        clock: Any = None,
    ) -> None:
        self.cloud = cloud
        self.clock = clock
        self.faults = faults if faults is not None else _new_faults(seed)
        if credentials is None:
            credentials = Credentials.default()
        elif not isinstance(credentials, Credentials):
            credentials = Credentials.of(credentials)
        self.credentials = credentials
        self.verifier = Verifier(credentials, check_clock=check_clock)
        self.seed = seed
        self.request_ids = RequestIds(seed)
        self.metadata_instance = metadata_instance
        self.allow_remote_control = allow_remote_control

    @classmethod
    def create(
        cls,
        *,
        seed: int = 0,
        world: str | Path | None = None,
        credentials: Credentials | Mapping[str, str] | None = None,
        metadata_instance: str | None = None,
        clock: Any = None,
        **kwargs: Any,
    ) -> Emulator:
        """A fresh model seeded with ``seed``, optionally loaded from a world file.

        ``clock`` (e.g. ``emulator.model.clock.ManualClock()``) replaces wall-clock time and makes
        ``advance()`` / ``POST /_emulator/clock/advance`` available.
        """
        from emulator.model import Cloud

        emu = cls(Cloud(seed=seed, clock=clock), None, credentials, seed=seed,
                  metadata_instance=metadata_instance, clock=clock, **kwargs)
        if world is not None:
            emu.load_world(Path(world).read_text(encoding="utf-8"))
        return emu

    # -- who may call -------------------------------------------------------------------------
    @property
    def access_key_id(self) -> str:
        """The first accepted AccessKey id (the documented default unless overridden)."""
        return self.credentials.access_key_ids[0]

    # -- the API path ---------------------------------------------------------------------------
    def now(self) -> float:
        """The model's time (fault rules and throttles run on it)."""
        now = getattr(self.cloud, "now", None)
        return float(now()) if callable(now) else time.monotonic()

    def apply_faults(self, action: str, params: Mapping[str, str]) -> None:
        """Sleep the rule's latency, then raise its error (if any) before the model is touched."""
        decision = self.faults.decide(action, params, self.now())
        if decision.latency > 0:
            time.sleep(decision.latency)
        if decision.error is not None:
            raise decision.error

    def dispatch(self, product: str, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        from emulator.actions import dispatch

        result: dict[str, Any] = dispatch(self.cloud, product, action, params)
        return result

    def call(self, product: str, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """In-process call with faults applied, as a signed HTTP request would see it."""
        self.apply_faults(action, params)
        return self.dispatch(product, action, params)

    # -- metadata -----------------------------------------------------------------------------
    def metadata(self, instance_id: str, path: str) -> str | None:
        """Text at ``/latest/meta-data/<path>`` for that instance, or None (→ 404)."""
        value = self.cloud.metadata_get(instance_id, path)
        return None if value is None else str(value)

    def instance_for_ip(self, ip: str) -> str | None:
        """The instance whose primary private IP is ``ip`` (the fabric's source-address rule)."""
        for view in self.cloud.describe_instances():
            if view.primary_ip == ip:
                return str(view.instance_id)
        return None

    # -- control ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget every resource the API created and every fault rule; keep seed and credentials."""
        self.cloud.reset()
        self.clear_faults()

    def reseed(self, seed: int) -> None:
        """Reset and restart every generator (ids, request ids, faults) from ``seed``."""
        self.cloud.reseed(seed)
        self.seed = seed
        self.request_ids.reseed(seed)
        reseed = getattr(self.faults, "reseed", None)
        if callable(reseed):
            reseed(seed)
        else:
            self.faults = _new_faults(seed)

    def snapshot(self) -> Any:
        return self.cloud.snapshot()

    def load_world(self, text: str) -> None:
        """Apply a world document (YAML or JSON text) to the model; bad input changes nothing."""
        from emulator import world

        world.load_text(self.cloud, text)

    def fault_rules(self) -> list[dict[str, Any]]:
        rules = getattr(self.faults, "rules", None)
        if callable(rules):
            rules = rules()
        return [r if isinstance(r, dict) else _rule_dict(r) for r in (rules or [])]

    def add_fault(self, rule: Mapping[str, Any]) -> str:
        """Add a rule (JSON-able dict, see docs/emulator.md); returns its id."""
        added = self.faults.add(dict(rule))
        return str(getattr(added, "id", added))

    def remove_fault(self, rule_id: str) -> bool:
        return bool(self.faults.remove(rule_id))

    def clear_faults(self) -> None:
        self.faults.clear()

    def advance(self, seconds: float) -> float:
        """Move a manual model clock forward; ApiError-free ValueError when the clock is real."""
        clock = self.clock or getattr(self.cloud, "clock", None)
        advance = getattr(clock, "advance", None)
        if not callable(advance):
            raise ValueError("this emulator runs on wall-clock time; 'clock/advance' needs a "
                             "model built with a ManualClock")
        return float(advance(seconds))

    # -- front ends ---------------------------------------------------------------------------
    def serve(self, port: int = 0, host: str = "127.0.0.1") -> ServerHandle:
        """Serve HTTP (API + metadata + control) on a daemon thread; ``port=0`` picks a free one."""
        return serve_in_thread(self, host, port)


def _new_faults(seed: int) -> Any:
    from emulator.faults import FaultEngine

    return FaultEngine(seed)


def _rule_dict(rule: Any) -> dict[str, Any]:
    to_dict = getattr(rule, "to_dict", None)
    if callable(to_dict):
        return dict(to_dict())
    return dict(vars(rule))


__all__ = ["ApiError", "Emulator", "ServerHandle"]
