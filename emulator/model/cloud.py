"""``Cloud``: the emulated Alibaba ECS/VPC of one account, as typed Python methods.

Thread-safe (one re-entrant lock around every call), deterministic under ``seed``, driven by an
injectable clock. Knows nothing of HTTP: ``emulator.actions.dispatch`` maps API actions onto it.
"""

from __future__ import annotations

from typing import Any

from .compute import ComputeOps
from .enis import EniOps
from .metadata import MetadataOps
from .network import NetworkOps
from .regions import LOCAL_NAMES, REGIONS


class Cloud(NetworkOps, EniOps, ComputeOps, MetadataOps):
    """See docs/emulator-model.md for the constructor and every method."""

    def regions(self) -> dict[str, tuple[str, ...]]:
        """Region id → its zone ids."""
        return dict(REGIONS)

    def region_name(self, region_id: str) -> str:
        return LOCAL_NAMES.get(region_id, region_id)

    def snapshot(self) -> dict[str, Any]:
        """The whole state as a JSON-able dict (for the control endpoint and for tests)."""
        with self._lock:
            self._settle()
            return {
                "seed": self.seed,
                "region_id": self.region_id,
                "vpcs": [_asdict(v.view()) for v in self._vpcs.values()],
                "vswitches": [
                    {**_asdict(v.view()), "used_ips": v.pool.used(), "eni_count": v.eni_count}
                    for v in self._vswitches.values()
                ],
                "security_groups": [_asdict(s.view()) for s in self._sgs.values()],
                "instances": [
                    _asdict(i.view(self._enis[i.primary_eni_id].primary_ip))
                    for i in self._instances.values()
                ],
                "enis": [{**_asdict(e.view()), "due": e.due} for e in self._enis.values()],
                "client_tokens": sorted(f"{a}:{t}" for a, t in self._tokens),
            }


def _asdict(view: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in view.__slots__:
        value = getattr(view, name)
        out[name] = list(value) if isinstance(value, tuple) else (
            dict(value) if isinstance(value, dict) else value)
    return out
