"""``TimedCloud``: any ``CloudAPI`` with upstream's ``aliyun_openapi_latency`` recorded per call.

A decorator around the interface rather than a hook inside one client, so every cloud the
daemon is given (the SDK client, the emulator's in-process model, a test double) is measured the
same way. One sample per ``CloudAPI`` call, in ms, labelled with the OpenAPI action and the error
code ("" on success); the SDK's own retries are inside one call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from terway.cloud.api import CloudAPI, Eni, InstanceTypeLimits, VSwitch
from terway.cloud.errors import CloudError

T = TypeVar("T")
Observe = Callable[[str, float, str], None]
"""(OpenAPI action, milliseconds, error code or "")."""


class TimedCloud:
    def __init__(self, inner: CloudAPI, observe: Observe,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self._observe = observe
        self._clock = clock

    def _timed(self, action: str, call: Callable[[], T]) -> T:
        start = self._clock()
        error = ""
        try:
            return call()
        except CloudError as err:
            error = err.code
            raise
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            self._observe(action, (self._clock() - start) * 1000, error)

    def describe_instance_type(self, instance_type: str) -> InstanceTypeLimits:
        return self._timed("DescribeInstanceTypes",
                           lambda: self.inner.describe_instance_type(instance_type))

    def describe_vswitches(self, vswitch_ids: Sequence[str]) -> list[VSwitch]:
        return self._timed("DescribeVSwitches",
                           lambda: self.inner.describe_vswitches(vswitch_ids))

    def create_network_interface(
        self, *, vswitch_id: str, security_group_ids: Sequence[str], secondary_ip_count: int,
        tags: Mapping[str, str], client_token: str, description: str = "",
        resource_group_id: str = "",
    ) -> Eni:
        extra = {"description": description} if description else {}   # forwarded as given
        return self._timed("CreateNetworkInterface", lambda: self.inner.create_network_interface(
            vswitch_id=vswitch_id, security_group_ids=security_group_ids,
            secondary_ip_count=secondary_ip_count, tags=tags, client_token=client_token,
            resource_group_id=resource_group_id, **extra))

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._timed("AttachNetworkInterface",
                    lambda: self.inner.attach_network_interface(eni_id, instance_id))

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._timed("DetachNetworkInterface",
                    lambda: self.inner.detach_network_interface(eni_id, instance_id))

    def delete_network_interface(self, eni_id: str) -> None:
        self._timed("DeleteNetworkInterface",
                    lambda: self.inner.delete_network_interface(eni_id))

    def describe_network_interfaces(
        self, *, instance_id: str | None = None, eni_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None, vswitch_id: str | None = None,
        status: str | None = None,
    ) -> list[Eni]:
        return self._timed("DescribeNetworkInterfaces",
                           lambda: self.inner.describe_network_interfaces(
                               instance_id=instance_id, eni_ids=eni_ids, tags=tags,
                               vswitch_id=vswitch_id, status=status))

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        return self._timed("AssignPrivateIpAddresses",
                           lambda: self.inner.assign_private_ips(eni_id, count))

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None:
        self._timed("UnassignPrivateIpAddresses",
                    lambda: self.inner.unassign_private_ips(eni_id, ips))
