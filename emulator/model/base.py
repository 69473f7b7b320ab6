"""Shared state of the emulated cloud: the lock, the clock, generators, indexes, the event bus.

The operations live in sibling mixins over this state (network.py, enis.py, compute.py,
metadata.py; each derives from ``CloudBase`` only), composed by ``Cloud`` in cloud.py.
Asynchronous ENI transitions (Attaching → InUse, Detaching → Available) are kept in a heap of due
times and applied lazily by ``_settle()`` at the start of every call: no threads, and a manual
clock drives them exactly.
"""

from __future__ import annotations

import heapq
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Hashable
from datetime import UTC, datetime, timedelta

from . import codes
from .events import CloudEvent, EventKind, Subscriber
from .ids import IdGenerator
from .records import (
    ATTACHING,
    AVAILABLE,
    DETACHING,
    IN_USE,
    Eni,
    Instance,
    SecurityGroup,
    Vpc,
    VSwitch,
)
from .regions import ID_PREFIX, REGIONS

Delay = float | tuple[float, float]
_EPOCH = datetime(2024, 1, 1, tzinfo=UTC)
MetaState = tuple[tuple[str, str, str, str, str, str, tuple[str, ...]], ...]


def _delay_range(value: Delay, name: str) -> tuple[float, float]:
    low, high = (value, value) if isinstance(value, int | float) else value
    if low < 0 or high < low:
        raise ValueError(f"{name}: need 0 <= low <= high, got {value!r}")
    return float(low), float(high)


class _RegionScope:
    """The context ``Cloud.in_region`` returns (a class, not a generator: it runs per request)."""

    __slots__ = ("_local", "_previous", "_region")

    def __init__(self, local: threading.local, region: str | None) -> None:
        self._local, self._region, self._previous = local, region, None

    def __enter__(self) -> None:
        self._previous = getattr(self._local, "region", None)
        self._local.region = self._region

    def __exit__(self, *exc: object) -> None:
        self._local.region = self._previous


class CloudBase:
    def __init__(
        self,
        seed: int = 0,
        clock: Callable[[], float] | None = None,
        region_id: str = "cn-hangzhou",
        attach_delay: Delay = 0.0,
        detach_delay: Delay = 0.0,
        metadata_lag: float = 0.0,
        unattached_ip_limit: int = 50,
    ) -> None:
        if region_id not in REGIONS:
            raise ValueError(f"region_id: unknown region {region_id!r}")
        if metadata_lag < 0:
            raise ValueError(f"metadata_lag: must be >= 0, got {metadata_lag}")
        self._lock = threading.RLock()
        self._clock: Callable[[], float] = clock or time.monotonic
        # Wall-clock time (the default) stamps CreationTime with the real moment, as the cloud
        # does (upstream's ENI GC leaves ENIs younger than 10 minutes alone by it); an injected
        # clock (ManualClock, simpy) stamps 2024-01-01 + its seconds, deterministically.
        self._wall_stamps = clock is None
        self._scope = threading.local()   # .region: the calling request's RegionId (dispatch)
        self.region_id = region_id
        self.attach_delay = _delay_range(attach_delay, "attach_delay")
        self.detach_delay = _delay_range(detach_delay, "detach_delay")
        self.metadata_lag = float(metadata_lag)
        self.unattached_ip_limit = unattached_ip_limit
        self._subscribers: list[Subscriber] = []
        self.seed = seed
        self._ids = IdGenerator(seed, ID_PREFIX[region_id])
        self._delay_rng = random.Random(f"delays:{seed}")
        self._init_state()

    def _init_state(self) -> None:
        self._vpcs: dict[str, Vpc] = {}
        self._vswitches: dict[str, VSwitch] = {}
        self._sgs: dict[str, SecurityGroup] = {}
        self._instances: dict[str, Instance] = {}
        self._enis: dict[str, Eni] = {}
        self._tokens: dict[tuple[str, str], tuple[Hashable, str]] = {}
        self._due: list[tuple[float, int, str]] = []
        self._due_seq = 0
        self._meta: dict[str, deque[tuple[float, MetaState]]] = {}

    # -- life cycle ---------------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        """Forget every resource and restart the generators (same seed unless one is given)."""
        with self._lock:
            self._init_state()
            self._ids.forget()
            self.reseed(self.seed if seed is None else seed)

    def reseed(self, seed: int) -> None:
        """Restart the ID and delay generators from ``seed``; resources are kept."""
        with self._lock:
            self.seed = seed
            self._ids.reseed(seed)
            self._delay_rng = random.Random(f"delays:{seed}")

    # -- time ---------------------------------------------------------------------------------
    @property
    def clock(self) -> Callable[[], float]:
        """The injected clock (a ``ManualClock`` has ``advance``)."""
        return self._clock

    def now(self) -> float:
        return self._clock()

    def _timestamp(self) -> str:
        """``CreationTime`` as the API writes it (``2024-01-01T00:00:00Z``, UTC)."""
        moment = (datetime.now(UTC) if self._wall_stamps
                  else _EPOCH + timedelta(seconds=self._clock()))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    # -- regions ------------------------------------------------------------------------------
    def in_region(self, region_id: str | None) -> _RegionScope:
        """``with cloud.in_region(r):`` calls made inside see only ``r``'s resources (others are
        NotFound, absent from lists) and create there, as a request with that RegionId does on
        the real cloud. Per thread; ``None`` (the default outside) sees every region."""
        return _RegionScope(self._scope, region_id)

    def _scoped_region(self) -> str | None:
        return getattr(self._scope, "region", None)

    def _visible(self, region_id: str) -> bool:
        scope = getattr(self._scope, "region", None)
        return scope is None or scope == region_id

    def _vpc_visible(self, vpc_id: str) -> bool:
        vpc = self._vpcs.get(vpc_id)
        return vpc is not None and self._visible(vpc.region_id)

    def _vpc_filter(self) -> Callable[[str], bool] | None:
        """For lists: None when every region is visible, else a VPC-id test (one scope read)."""
        scope = getattr(self._scope, "region", None)
        if scope is None:
            return None
        vpcs = self._vpcs
        return lambda vpc_id: (vpc := vpcs.get(vpc_id)) is not None and vpc.region_id == scope

    def _id_code(self, region_id: str) -> str:
        return ID_PREFIX.get(region_id, self._ids.region_code)

    def _draw(self, bounds: tuple[float, float]) -> float:
        low, high = bounds
        return low if low == high else self._delay_rng.uniform(low, high)

    def _schedule(self, eni: Eni, delay: float) -> None:
        eni.due = self._clock() + delay
        self._due_seq += 1
        heapq.heappush(self._due, (eni.due, self._due_seq, eni.eni_id))

    def settle(self) -> None:
        """Apply every Attaching/Detaching transition whose time has come."""
        with self._lock:
            self._settle()

    def _settle(self) -> None:
        if not self._due:
            return
        now = self._clock()
        while self._due and self._due[0][0] <= now:
            due, _, eni_id = heapq.heappop(self._due)
            eni = self._enis.get(eni_id)
            if eni is None or eni.due != due:
                continue
            if eni.status == ATTACHING:
                self._finish_attach(eni, due)
            elif eni.status == DETACHING:
                self._finish_detach(eni, due)

    def _finish_attach(self, eni: Eni, at: float) -> None:
        eni.status = IN_USE
        self._meta_changed(eni.instance_id, at)
        self._emit(EventKind.ENI_ATTACHED, eni, at=at)

    def _finish_detach(self, eni: Eni, at: float) -> None:
        inst = self._instances.get(eni.instance_id)
        if inst is not None and eni.eni_id in inst.eni_ids:
            inst.eni_ids.remove(eni.eni_id)
        instance_id = eni.instance_id
        eni.status, eni.instance_id, eni.device_index = AVAILABLE, "", -1
        self._emit(EventKind.ENI_DETACHED, eni, at=at, instance_id=instance_id)

    # -- observers ----------------------------------------------------------------------------
    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` on every change; returns a function that unsubscribes.

        Callbacks run synchronously under the model's lock, in order: keep them short.
        """
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)
        return unsubscribe

    def _emit(self, kind: EventKind, eni: Eni | None = None, *, at: float | None = None,
              instance_id: str | None = None, ips: tuple[str, ...] | None = None) -> None:
        if not self._subscribers:
            return
        scope, self._scope.region = getattr(self._scope, "region", None), None
        try:
            self._notify(kind, eni, at, instance_id, ips)
        finally:
            self._scope.region = scope   # observers see every region, whoever's call it was

    def _notify(self, kind: EventKind, eni: Eni | None, at: float | None,
                instance_id: str | None, ips: tuple[str, ...] | None) -> None:
        event = CloudEvent(
            kind=kind,
            time=self._clock() if at is None else at,
            instance_id=(eni.instance_id if eni else "") if instance_id is None else instance_id,
            eni_id=eni.eni_id if eni else "",
            mac=eni.mac if eni else "",
            vswitch_id=eni.vswitch_id if eni else "",
            ips=(tuple(eni.ips) if eni else ()) if ips is None else ips,
        )
        for callback in list(self._subscribers):
            callback(event)

    # -- lookups ------------------------------------------------------------------------------
    # A resource of another region than the request's is NotFound, as on the real cloud.
    def _vpc(self, vpc_id: str) -> Vpc:
        vpc = self._vpcs.get(vpc_id)
        if vpc is None or not self._visible(vpc.region_id):
            raise codes.not_found("InvalidVpcId", vpc_id)
        return vpc

    def _vsw(self, vswitch_id: str) -> VSwitch:
        vsw = self._vswitches.get(vswitch_id)
        if vsw is None or not self._vpc_visible(vsw.vpc_id):
            raise codes.not_found("InvalidVSwitchId", vswitch_id)
        return vsw

    def _sg(self, sg_id: str) -> SecurityGroup:
        sg = self._sgs.get(sg_id)
        if sg is None or not self._vpc_visible(sg.vpc_id):
            raise codes.not_found("InvalidSecurityGroupId", sg_id)
        return sg

    def _inst(self, instance_id: str, kind: str = "InvalidInstanceId") -> Instance:
        """``kind``: the NotFound code (Attach/DetachNetworkInterface say InvalidEcsId)."""
        inst = self._instances.get(instance_id)
        if inst is None or not self._visible(inst.region_id):
            raise codes.not_found(kind, instance_id)
        return inst

    def _eni(self, eni_id: str) -> Eni:
        eni = self._enis.get(eni_id)
        if eni is None or not self._vpc_visible(eni.vpc_id):
            raise codes.not_found("InvalidEniId", eni_id)
        return eni

    def _check_sgs(self, sg_ids: tuple[str, ...], vpc_id: str) -> None:
        if not sg_ids:
            raise codes.missing("SecurityGroupId")
        if len(sg_ids) > 10:
            raise codes.invalid("SecurityGroupIds", "at most 10 security groups")
        for sg_id in sg_ids:
            if self._sg(sg_id).vpc_id != vpc_id:
                raise codes.VPC_MISMATCH()

    # -- idempotence ----------------------------------------------------------------------------
    def _token_hit(self, action: str, token: str | None, fingerprint: Hashable) -> str | None:
        """The resource id a previous call with this ClientToken made, if any."""
        if not token:
            return None
        hit = self._tokens.get((action, token))
        if hit is None:
            return None
        if hit[0] != fingerprint:
            raise codes.IDEMPOTENT_MISMATCH()
        return hit[1]

    def _remember_token(self, action: str, token: str | None, fingerprint: Hashable,
                        rid: str) -> None:
        if token:
            self._tokens[(action, token)] = (fingerprint, rid)

    def new_request_id(self) -> str:
        with self._lock:
            return self._ids.request_id()

    # -- what one sibling mixin calls on another --------------------------------------------------
    # ``Cloud`` composes the mixins side by side (each derives from CloudBase only); a method one
    # of them calls but another implements is declared here, so each mixin type-checks alone and
    # the composed class resolves it to the implementation (CloudBase comes last in its MRO).
    def _meta_changed(self, instance_id: str, at: float | None = None) -> None:
        """Record an instance's metadata change (metadata.py; called by every mixin)."""
        raise NotImplementedError

    def _drop_eni(self, eni: Eni) -> None:
        """Forget an ENI and give its addresses back (enis.py; called by compute.py)."""
        raise NotImplementedError
