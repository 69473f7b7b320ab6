"""The cloud a simulated node talks to: ``emulator.inprocess.ModelCloud`` over the model.

``make_cloud_api`` prefers ``ModelCloud``; if that module is not importable it falls back to
``_ModelShim``, the same mapping written minimally here (model errors → ``CloudError`` with the
model's request id), so the simulator does not depend on import order during development.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emulator.model.errors import ApiError
from terway.cloud.api import CloudAPI, Eni, InstanceTypeLimits, VSwitch
from terway.cloud.errors import CloudError


def to_cloud_error(model: Any, err: ApiError) -> CloudError:
    return CloudError(err.code, err.message, request_id=model.new_request_id(),
                      http_status=err.http_status)


def _eni(v: Any) -> Eni:
    return Eni(eni_id=v.eni_id, mac=v.mac, vswitch_id=v.vswitch_id, zone_id=v.zone_id,
               status=v.status, primary_ip=v.primary_ip, private_ips=tuple(v.private_ips),
               instance_id=v.instance_id, eni_type=v.eni_type,
               security_group_ids=tuple(v.security_group_ids), tags=dict(v.tags))


class _ModelShim:
    """CloudAPI on the model, for when emulator.inprocess is unavailable."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiError as err:
            raise to_cloud_error(self.model, err) from None

    def describe_instance_type(self, instance_type: str) -> InstanceTypeLimits:
        t = self._call(self.model.get_instance_type, instance_type)
        return InstanceTypeLimits(t.instance_type_id, t.eni_quantity, t.eni_private_ip_quantity,
                                  t.eni_total_quantity, t.trunk_supported)

    def describe_vswitches(self, vswitch_ids: Sequence[str]) -> list[VSwitch]:
        views = self._call(self.model.describe_vswitches, list(vswitch_ids))
        return [VSwitch(v.vswitch_id, v.zone_id, v.cidr_block, v.available_ip_count, v.vpc_id)
                for v in views]

    def create_network_interface(self, *, vswitch_id: str, security_group_ids: Sequence[str],
                                 secondary_ip_count: int, tags: Mapping[str, str],
                                 client_token: str, description: str = "") -> Eni:
        return _eni(self._call(self.model.create_network_interface, vswitch_id,
                               list(security_group_ids), secondary_ip_count=secondary_ip_count,
                               tags=dict(tags), description=description,
                               client_token=client_token))

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._call(self.model.attach_network_interface, eni_id, instance_id)

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None:
        self._call(self.model.detach_network_interface, eni_id, instance_id)

    def delete_network_interface(self, eni_id: str) -> None:
        self._call(self.model.delete_network_interface, eni_id)

    def describe_network_interfaces(self, *, instance_id: str | None = None,
                                    eni_ids: Sequence[str] | None = None,
                                    tags: Mapping[str, str] | None = None,
                                    vswitch_id: str | None = None,
                                    status: str | None = None) -> list[Eni]:
        views = self._call(self.model.describe_network_interfaces, eni_ids,
                           instance_id=instance_id, tags=tags, vswitch_id=vswitch_id,
                           status=status)
        return [_eni(v) for v in views]

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        return list(self._call(self.model.assign_private_ips, eni_id, count))

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None:
        self._call(self.model.unassign_private_ips, eni_id, list(ips))


def make_cloud_api(model: Any) -> CloudAPI:
    try:
        from emulator.inprocess import ModelCloud  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return _ModelShim(model)
    return ModelCloud(model)  # type: ignore[no-any-return]
