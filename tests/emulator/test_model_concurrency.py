"""32 threads hammering one vSwitch never double-assign an address nor exceed a quota."""

from __future__ import annotations

import threading
from collections import Counter

from emulator.model import ApiError, Cloud


def test_concurrent_allocation_is_safe() -> None:
    cloud = Cloud(seed=1)
    vpc = cloud.create_vpc("10.0.0.0/16").vpc_id
    vsw = cloud.create_vswitch(vpc, "cn-hangzhou-h", "10.0.0.0/25").vswitch_id   # 124 usable
    sg = cloud.create_security_group(vpc).security_group_id
    nodes = cloud.run_instances("ecs.g6.large", vsw, [sg], 4)                  # 2 ENIs x 6 IPs
    errors: Counter[str] = Counter()
    lock = threading.Lock()
    start = threading.Barrier(32)

    def worker(n: int) -> None:
        start.wait()
        node = nodes[n % len(nodes)]
        for _ in range(6):
            try:
                eni = cloud.create_network_interface(vsw, [sg], secondary_ip_count=1)
                cloud.attach_network_interface(eni.eni_id, node)
                for _ in range(6):
                    cloud.assign_private_ips(eni.eni_id, 1)
            except ApiError as err:
                with lock:
                    errors[err.code] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    enis = cloud.describe_network_interfaces()
    all_ips = [ip for e in enis for ip in e.private_ips]
    assert len(all_ips) == len(set(all_ips)), "an address was handed out twice"
    view = cloud.get_vswitch(vsw)
    assert view.available_ip_count == 124 - len(all_ips)
    for node in nodes:
        attached = cloud.describe_network_interfaces(instance_id=node)
        assert len(attached) <= 2
        assert all(len(e.private_ips) <= 6 for e in attached)
    assert errors["EniPerInstanceLimitExceeded"] > 0
    assert errors["InvalidOperation.Ipv4CountExceeded"] > 0
