"""A tiny in-memory CloudAPI for the core's tests: real address accounting, injectable errors.

(emulator.inprocess.ModelCloud did not exist when these tests were written; this fake keeps the
core's tests independent of the emulator anyway.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from terway.cloud.api import Eni, InstanceTypeLimits, VSwitch
from terway.cloud.errors import CloudError


def ip_not_enough(vswitch_id: str) -> CloudError:
    return CloudError(
        "InvalidVSwitchId.IpNotEnough",
        f'The specified VSwitch "{vswitch_id}" has not enough IpAddress.',
        request_id="2095E971-E473-4BA0-853F-0C41CF52651D",
        http_status=403,
    )


class FakeCloud:
    def __init__(self, vswitches: Mapping[str, int], zone: str = "cn-hangzhou-k") -> None:
        self.zone = zone
        self.free: dict[str, int] = dict(vswitches)     # vswitch id -> free addresses
        self.subnet = {v: i + 1 for i, v in enumerate(vswitches)}
        self.next_host = {v: 10 for v in vswitches}
        self.enis: dict[str, Eni] = {}
        self.fail: dict[str, list[CloudError]] = {}     # action -> errors to raise next
        self.calls: list[str] = []
        self.tokens: dict[str, str] = {}
        self._n = 0

    def add_vswitch(self, vswitch_id: str, free: int) -> None:
        self.free[vswitch_id] = free
        self.subnet[vswitch_id] = len(self.subnet) + 1
        self.next_host[vswitch_id] = 10

    def _maybe_fail(self, action: str) -> None:
        self.calls.append(action)
        errs = self.fail.get(action)
        if errs:
            raise errs.pop(0)

    def _take(self, vswitch_id: str, n: int) -> list[str]:
        if self.free[vswitch_id] < n:
            raise ip_not_enough(vswitch_id)
        self.free[vswitch_id] -= n
        out = []
        for _ in range(n):
            h = self.next_host[vswitch_id]
            self.next_host[vswitch_id] += 1
            out.append(f"10.{self.subnet[vswitch_id]}.{h // 250}.{h % 250}")
        return out

    def describe_instance_type(self, instance_type: str) -> InstanceTypeLimits:
        return InstanceTypeLimits(instance_type, 3, 10)

    def describe_vswitches(self, vswitch_ids: Sequence[str]) -> list[VSwitch]:
        self._maybe_fail("describe_vswitches")
        return [
            VSwitch(v, self.zone, f"10.{self.subnet[v]}.0.0/16", self.free[v])
            for v in vswitch_ids if v in self.free
        ]

    def create_network_interface(
        self, *, vswitch_id: str, security_group_ids: Sequence[str], secondary_ip_count: int,
        tags: Mapping[str, str], client_token: str, description: str = "",
        resource_group_id: str = "",
    ) -> Eni:
        self._maybe_fail("create")
        if client_token in self.tokens:
            return self.enis[self.tokens[client_token]]
        ips = self._take(vswitch_id, 1 + secondary_ip_count)
        self._n += 1
        eni = Eni(f"eni-{self._n}", f"00:16:3e:00:00:{self._n:02x}", vswitch_id, self.zone,
                  "Available", ips[0], tuple(ips), security_group_ids=tuple(security_group_ids),
                  tags=dict(tags))
        self.enis[eni.eni_id] = eni
        self.tokens[client_token] = eni.eni_id
        return eni

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._maybe_fail("attach")
        self.enis[eni_id] = replace(self.enis[eni_id], status="InUse", instance_id=instance_id)

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._maybe_fail("detach")
        self.enis[eni_id] = replace(self.enis[eni_id], status="Available", instance_id="")

    def delete_network_interface(self, eni_id: str) -> None:
        self._maybe_fail("delete")
        eni = self.enis.pop(eni_id)
        self.free[eni.vswitch_id] += len(eni.private_ips)

    def describe_network_interfaces(
        self, *, instance_id: str | None = None, eni_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None, vswitch_id: str | None = None,
        status: str | None = None,
    ) -> list[Eni]:
        return [e for e in self.enis.values() if instance_id in (None, e.instance_id)]

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        self._maybe_fail("assign")
        assert 1 <= count <= 10, count
        eni = self.enis[eni_id]
        ips = self._take(eni.vswitch_id, count)
        self.enis[eni_id] = replace(eni, private_ips=eni.private_ips + tuple(ips))
        return ips

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None:
        self._maybe_fail("unassign")
        eni = self.enis[eni_id]
        assert eni.primary_ip not in ips
        self.enis[eni_id] = replace(
            eni, private_ips=tuple(i for i in eni.private_ips if i not in ips)
        )
        self.free[eni.vswitch_id] += len(ips)
