"""Helpers for SdkCloud-against-the-emulator tests: a small world and a scripted fault seam.

``ScriptedFaults`` implements the Emulator's fault seam (``decide(action, params, now)`` →
latency + error) so these tests do not depend on the fault-rule format; the test that uses a
real fault rule goes through ``Emulator.add_fault`` when the fault engine is installed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from terway.cloud.credentials import StaticProvider

ZONE = "cn-hangzhou-i"


@dataclass
class Decision:
    latency: float = 0.0
    error: Exception | None = None


@dataclass
class ScriptedFaults:
    """Fail ``action`` with ``code`` for the next ``times`` calls (-1 = forever)."""

    script: dict[str, tuple[str, str, int, int]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    empty = False  # always consulted: it records every call in ``seen``

    def fail(self, action: str, code: str, message: str, status: int, times: int) -> None:
        self.script[action] = (code, message, status, times)

    def decide(self, action: str, params: Mapping[str, str], now: float, *extra: Any,
               **kw: Any) -> Decision:
        from emulator.model.errors import ApiError

        self.seen.append(action)
        entry = self.script.get(action)
        if entry is None or entry[3] == 0:
            return Decision()
        code, message, status, times = entry
        self.script[action] = (code, message, status, times - 1 if times > 0 else -1)
        return Decision(error=ApiError(code, message, status))

    def rules(self) -> list[dict[str, Any]]:
        return []

    def clear(self) -> None:
        self.script.clear()

    def reseed(self, seed: int) -> None:
        pass


@dataclass
class World:
    emulator: Any
    faults: ScriptedFaults
    vpc_id: str
    vswitch_id: str
    small_vswitch_id: str
    sg_id: str
    instance_id: str


def build_world(seed: int = 1, *, real_faults: bool = False) -> World:
    """A VPC, a /24 and a /29 vSwitch, a security group and one ecs.g6.xlarge instance.

    ``real_faults`` uses the emulator's own fault engine (rules via ``add_fault``), else the
    scripted seam above.
    """
    from emulator.server import Emulator

    scripted = ScriptedFaults()
    if real_faults:
        emu = Emulator.create(seed=seed)
    else:
        from emulator.model import Cloud

        emu = Emulator(Cloud(seed=seed), scripted, seed=seed)
    cloud = emu.cloud
    vpc = cloud.create_vpc("192.168.0.0/16")
    vsw = cloud.create_vswitch(vpc.vpc_id, ZONE, "192.168.1.0/24")
    small = cloud.create_vswitch(vpc.vpc_id, ZONE, "192.168.2.0/29")
    sg = cloud.create_security_group(vpc.vpc_id)
    (inst,) = cloud.run_instances("ecs.g6.xlarge", vsw.vswitch_id, [sg.security_group_id])
    return World(emu, scripted, vpc.vpc_id, vsw.vswitch_id, small.vswitch_id,
                 sg.security_group_id, inst)


def emulator_credentials() -> StaticProvider:
    from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET

    return StaticProvider(DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET)


class FakeTime:
    """Injected sleep/clock: retries and limiter waits cost no wall time."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self.rng = random.Random(7)

    def now(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.t += s
