"""ModelCloud: the plugin's CloudAPI on the model, errors classified, faults consulted."""

from __future__ import annotations

import pytest

from emulator.faults import FaultEngine
from emulator.inprocess import ModelCloud
from emulator.model import Cloud, ManualClock
from terway.cloud.api import CloudAPI
from terway.cloud.errors import CloudError, ErrorClass


def setup(faults: FaultEngine | None = None) -> tuple[ModelCloud, str, str, str]:
    cloud = Cloud(seed=1, clock=ManualClock())
    vpc = cloud.create_vpc("10.0.0.0/16").vpc_id
    vsw = cloud.create_vswitch(vpc, "cn-hangzhou-h", "10.0.0.0/28").vswitch_id
    sg = cloud.create_security_group(vpc).security_group_id
    [node] = cloud.run_instances("ecs.g6.large", vsw, [sg])
    return ModelCloud(cloud, node, faults), vsw, sg, node


def test_cloudapi_round_trip() -> None:
    api, vsw, sg, node = setup()
    typed: CloudAPI = api
    limits = typed.describe_instance_type("ecs.g6.large")
    assert (limits.eni_quantity, limits.ips_per_eni) == (2, 6)
    eni = typed.create_network_interface(vswitch_id=vsw, security_group_ids=[sg],
                                         secondary_ip_count=2, tags={"creator": "terway"},
                                         client_token="t")
    assert len(eni.private_ips) == 3 and eni.tags == {"creator": "terway"}
    typed.attach_network_interface(eni.eni_id, node)
    assert typed.assign_private_ips(eni.eni_id, 3)
    [listed] = typed.describe_network_interfaces(tags={"creator": "terway"})
    assert listed.status == "InUse" and len(listed.secondary_ips) == 5
    typed.unassign_private_ips(eni.eni_id, listed.secondary_ips[:1])
    [vs] = typed.describe_vswitches([vsw])
    assert vs.available_ip_count == 12 - 1 - 5
    typed.detach_network_interface(eni.eni_id, node)
    typed.delete_network_interface(eni.eni_id)
    assert api.metadata("instance-id") == node


def test_api_errors_become_classified_cloud_errors() -> None:
    api, vsw, sg, node = setup()
    eni = api.create_network_interface(vswitch_id=vsw, security_group_ids=[sg],
                                       secondary_ip_count=5, tags={}, client_token="")
    api.attach_network_interface(eni.eni_id, node)
    with pytest.raises(CloudError) as info:
        api.assign_private_ips(eni.eni_id, 1)
    err = info.value
    assert (err.code, err.http_status, err.error_class) == (
        "InvalidOperation.Ipv4CountExceeded", 403, ErrorClass.QUOTA)
    assert err.request_id
    with pytest.raises(CloudError) as info:
        api.create_network_interface(vswitch_id=vsw, security_group_ids=[sg],
                                     secondary_ip_count=9, tags={}, client_token="")
    assert info.value.error_class is ErrorClass.EXHAUSTED
    with pytest.raises(CloudError) as info:
        api.delete_network_interface("eni-none")
    assert info.value.error_class is ErrorClass.NOT_FOUND


def test_faults_inject_errors_and_report_latency() -> None:
    faults = FaultEngine(3)
    faults.add_rule({"kind": "latency", "action": "*", "distribution": "constant",
                     "value": 0.25})
    faults.add_rule({"kind": "error", "action": "AssignPrivateIpAddresses",
                     "code": "Throttling.User", "count": 1})
    seen: list[tuple[str, float]] = []
    api, vsw, sg, _ = setup(faults)
    api.on_latency = lambda action, latency: seen.append((action, latency))
    eni = api.create_network_interface(vswitch_id=vsw, security_group_ids=[sg],
                                       secondary_ip_count=0, tags={}, client_token="")
    assert api.last_latency == 0.25
    before = api.cloud.snapshot()
    with pytest.raises(CloudError) as info:
        api.assign_private_ips(eni.eni_id, 1)
    assert info.value.error_class is ErrorClass.THROTTLED
    assert api.cloud.snapshot() == before
    assert len(api.assign_private_ips(eni.eni_id, 1)) == 1
    assert [a for a, _ in seen] == ["CreateNetworkInterface", "AssignPrivateIpAddresses",
                                    "AssignPrivateIpAddresses"]
