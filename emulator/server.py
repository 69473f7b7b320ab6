"""The ``Emulator`` facade: one model, its fault engine and its credentials, behind every front end.

The HTTP server, the ``responses`` mock, the control endpoints and the CLI all talk to the model
through this class only, so the model's API can evolve behind one thin adapter::

    emu = Emulator.create(seed=7, world="worlds/demo.yaml")
    with emu.serve(port=0) as srv:           # threaded HTTP server on a free port
        Config(endpoint=srv.endpoint, protocol="http", access_key_id=emu.access_key_id, ...)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from emulator.model.errors import ApiError
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

        ``clock`` (e.g. ``emulator.model.ManualClock()``) replaces wall-clock time and makes
        ``advance()`` / ``POST /_emulator/clock/advance`` available. A world file brings its own
        seed (overriding ``seed``), cloud options and fault rules.
        """
        from emulator.model import Cloud

        if world is None:
            return cls(Cloud(seed=seed, clock=clock), None, credentials, seed=seed,
                       metadata_instance=metadata_instance, clock=clock, **kwargs)
        from emulator.world import load_world

        built = load_world(world, clock=clock)  # its own seed and cloud options (delays, lag)
        return cls(built.cloud, built.faults, credentials, seed=int(built.cloud.seed),
                   metadata_instance=metadata_instance, clock=clock, **kwargs)

    @classmethod
    def from_world(
        cls,
        spec: Mapping[str, Any],
        *,
        credentials: Credentials | Mapping[str, str] | None = None,
        metadata_instance: str | None = None,
        clock: Any = None,
        **kwargs: Any,
    ) -> Emulator:
        """Build a fresh model from a parsed world document (validated first; WorldError)."""
        from emulator.world import build_world

        built = build_world(spec, clock=clock)
        return cls(built.cloud, built.faults, credentials, seed=int(built.cloud.seed),
                   metadata_instance=metadata_instance, clock=clock, **kwargs)

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

    def new_request_id(self) -> str:
        return str(self.cloud.new_request_id())

    def apply_faults(self, product: str, action: str, params: Mapping[str, str]) -> None:
        """Sleep the rule's latency, then raise its error (if any) before the model is touched."""
        if self.faults.empty:
            return
        decision = self.faults.decide(action, params, self.now(), product)
        if decision.latency > 0:
            time.sleep(decision.latency)
        if decision.error is not None:
            raise decision.error

    def dispatch(self, product: str, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        result: dict[str, Any] = _actions().dispatch(self.cloud, product, action, params)
        return result

    def call(self, product: str, action: str, params: Mapping[str, str]) -> dict[str, Any]:
        """In-process call with faults applied, as a signed HTTP request would see it."""
        self.apply_faults(product, action, params)
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
        self.faults.reseed(seed)

    def snapshot(self) -> Any:
        return self.cloud.snapshot()

    def load_world(self, text: str) -> None:
        """Rebuild the model from a world document (YAML or JSON text): the cloud is reset to the
        world's seed and its fault rules replace the current ones. Bad input changes nothing
        (raises ``emulator.world.WorldError``, a ValueError naming the field). Cloud options
        (delays, metadata lag) only apply to a model built from a world (``create(world=…)``)."""
        import yaml

        from emulator.world import WorldError, build_world

        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as err:
            raise WorldError("world", f"not valid YAML/JSON: {err}") from None
        build_world(spec or {}, self.cloud, self.faults)
        self.seed = int(self.cloud.seed)

    def fault_rules(self) -> list[dict[str, Any]]:
        return list(self.faults.rules())

    def add_faults(self, rules: Any) -> list[str]:
        """One rule dict or a list of them; all or nothing (``emulator.faults.build_rules``
        checks every one first; ``FaultRuleError`` names the field)."""
        return [str(rid) for rid in self.faults.add_rules(rules)]

    def add_fault(self, rule: Mapping[str, Any]) -> str:
        """Add a rule (JSON-able dict, see docs/emulator.md); returns its id."""
        return str(self.faults.add_rule(rule))

    def remove_fault(self, rule_id: str) -> bool:
        return bool(self.faults.remove_rule(rule_id))

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


@functools.cache
def _actions() -> ModuleType:
    """``emulator.actions``, imported on first use (it pulls in the model) and then kept: an
    import statement in ``dispatch`` would cost a lookup on every API call."""
    import emulator.actions

    return emulator.actions


def _new_faults(seed: int) -> Any:
    from emulator.faults import FaultEngine

    return FaultEngine(seed)


__all__ = ["ApiError", "Emulator", "ServerHandle"]
