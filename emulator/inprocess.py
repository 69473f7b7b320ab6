"""``ModelCloud``: the plugin's ``CloudAPI`` implemented directly on the emulator's model.

No HTTP and no dict round trip: typed calls in, ``terway.cloud.api`` dataclasses out, every
``ApiError`` turned into ``terway.cloud.errors.CloudError`` (code, message, HTTP status, request
id). With a ``FaultEngine`` each call first asks it for a decision: an injected error is raised,
and the drawn latency is reported (``last_latency`` and the ``on_latency`` hook) rather than slept,
so the simulator can advance simpy time by it.

It is the one adapter to terway: ``terway.cloud`` is imported when a ``ModelCloud`` is first made
or ``to_eni`` first called, never by ``import emulator.inprocess`` (the emulator stands alone).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from types import SimpleNamespace
from typing import TYPE_CHECKING, TypeVar

from emulator.faults import FaultEngine
from emulator.model import ApiError, Cloud, EniView

if TYPE_CHECKING:
    from terway.cloud.api import Eni, InstanceTypeLimits, VSwitch
    from terway.cloud.errors import CloudError

T = TypeVar("T")
LatencyHook = Callable[[str, float], None]


@functools.cache
def _terway() -> SimpleNamespace:
    """terway's CloudAPI types, imported on first use."""
    from terway.cloud import api, errors

    return SimpleNamespace(Eni=api.Eni, InstanceTypeLimits=api.InstanceTypeLimits,
                           VSwitch=api.VSwitch, CloudError=errors.CloudError)


def to_eni(view: EniView) -> Eni:
    eni: Eni = _terway().Eni(
        eni_id=view.eni_id, mac=view.mac, vswitch_id=view.vswitch_id, zone_id=view.zone_id,
        status=view.status, primary_ip=view.primary_ip, private_ips=view.private_ips,
        instance_id=view.instance_id, eni_type=view.eni_type,
        security_group_ids=view.security_group_ids, tags=dict(view.tags),
        resource_group_id=view.resource_group_id)
    return eni


class ModelCloud:
    """CloudAPI over a ``Cloud``; ``instance_id`` is the node this client runs on (optional)."""

    def __init__(self, cloud: Cloud, instance_id: str | None = None,
                 faults: FaultEngine | None = None, on_latency: LatencyHook | None = None,
                 region_id: str | None = None) -> None:
        self.cloud = cloud
        self.instance_id = instance_id
        self.faults = faults
        self.on_latency = on_latency
        self.region_id = region_id or cloud.region_id
        self.last_latency = 0.0
        self.calls = 0
        self._types = _terway()

    def _call(self, action: str, params: Mapping[str, str], run: Callable[[], T]) -> T:
        self.calls += 1
        self.last_latency = 0.0
        if self.faults is not None:
            flat = {"RegionId": self.region_id, **params}
            decision = self.faults.decide(action, flat, self.cloud.now(), "ecs")
            self.last_latency = decision.latency
            if self.on_latency is not None and decision.latency > 0:
                self.on_latency(action, decision.latency)
            if decision.error is not None:
                raise self._error(decision.error)
        try:
            return run()
        except ApiError as err:
            raise self._error(err) from None

    def _error(self, err: ApiError) -> CloudError:
        error: CloudError = self._types.CloudError(
            err.code, err.message, request_id=err.request_id or self.cloud.new_request_id(),
            http_status=err.http_status)
        return error

    # -- CloudAPI -----------------------------------------------------------------------------
    def describe_instance_type(self, instance_type: str) -> InstanceTypeLimits:
        def run() -> InstanceTypeLimits:
            t = self.cloud.get_instance_type(instance_type)
            limits: InstanceTypeLimits = self._types.InstanceTypeLimits(
                t.instance_type_id, t.eni_quantity, t.eni_private_ip_quantity,
                t.eni_total_quantity, t.trunk_supported)
            return limits
        return self._call("DescribeInstanceTypes", {"InstanceTypes.1": instance_type}, run)

    def describe_vswitches(self, vswitch_ids: Sequence[str]) -> list[VSwitch]:
        def run() -> list[VSwitch]:
            make = self._types.VSwitch
            return [make(v.vswitch_id, v.zone_id, v.cidr_block, v.available_ip_count, v.vpc_id)
                    for v in self.cloud.describe_vswitches(list(vswitch_ids))]
        params = {"VSwitchId": ",".join(vswitch_ids)}
        return self._call("DescribeVSwitches", params, run)

    def create_network_interface(
        self, *, vswitch_id: str, security_group_ids: Sequence[str], secondary_ip_count: int,
        tags: Mapping[str, str], client_token: str, description: str = "",
        resource_group_id: str = "",
    ) -> Eni:
        def run() -> Eni:
            return to_eni(self.cloud.create_network_interface(
                vswitch_id, security_group_ids, secondary_ip_count=secondary_ip_count,
                tags=tags, description=description, client_token=client_token or None,
                resource_group_id=resource_group_id))
        params = {"VSwitchId": vswitch_id, "SecondaryPrivateIpAddressCount":
                  str(secondary_ip_count), "ClientToken": client_token}
        if resource_group_id:
            params["ResourceGroupId"] = resource_group_id
        return self._call("CreateNetworkInterface", params, run)

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._call("AttachNetworkInterface",
                   {"NetworkInterfaceId": eni_id, "InstanceId": instance_id},
                   lambda: self.cloud.attach_network_interface(eni_id, instance_id))

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._call("DetachNetworkInterface",
                   {"NetworkInterfaceId": eni_id, "InstanceId": instance_id},
                   lambda: self.cloud.detach_network_interface(eni_id, instance_id or None))

    def delete_network_interface(self, eni_id: str) -> None:
        self._call("DeleteNetworkInterface", {"NetworkInterfaceId": eni_id},
                   lambda: self.cloud.delete_network_interface(eni_id))

    def describe_network_interfaces(
        self, *, instance_id: str | None = None, eni_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None, vswitch_id: str | None = None,
        status: str | None = None,
    ) -> list[Eni]:
        def run() -> list[Eni]:
            views = self.cloud.describe_network_interfaces(
                list(eni_ids) if eni_ids else None, instance_id=instance_id,
                vswitch_id=vswitch_id, status=status, tags=tags)
            return [to_eni(v) for v in views]
        params = {k: v for k, v in (("InstanceId", instance_id or ""),
                                    ("VSwitchId", vswitch_id or ""),
                                    ("Status", status or "")) if v}
        for i, eni_id in enumerate(eni_ids or (), 1):
            params[f"NetworkInterfaceId.{i}"] = eni_id
        return self._call("DescribeNetworkInterfaces", params, run)

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        return self._call("AssignPrivateIpAddresses",
                          {"NetworkInterfaceId": eni_id,
                           "SecondaryPrivateIpAddressCount": str(count)},
                          lambda: self.cloud.assign_private_ips(eni_id, count))

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None:
        params = {"NetworkInterfaceId": eni_id,
                  **{f"PrivateIpAddress.{i}": ip for i, ip in enumerate(ips, 1)}}
        self._call("UnassignPrivateIpAddresses", params,
                   lambda: self.cloud.unassign_private_ips(eni_id, ips))

    # -- extras for the simulator / tests -----------------------------------------------------
    def metadata(self, path: str) -> str | None:
        """This node's instance metadata (needs ``instance_id``)."""
        if self.instance_id is None:
            raise ValueError("ModelCloud.metadata needs the instance_id of the node")
        return self.cloud.metadata_get(self.instance_id, path)
