"""ExecCNI (the native front's path): STATUS, DEL and CHECK never wait behind ADDs, and an ADD's
``--alloc-timeout`` counts from its arrival (issue 9, item 3).

Seen before: with 80 slow ADDs (the cloud not answering) STATUS through the front took 7 s, and
ADDs queued for a worker ran to twice ``--alloc-timeout``. Here the cloud is held shut
(``GatedCloud``) so every ADD waits for it; thread joins are hang guards, not timings.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from terway.daemon import cniexec
from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import GatedCloud, Running, World, run, running_daemon

SLOW_ADDS = cniexec.ADD_WORKERS + 6   # every ADD worker busy, six ADDs queued


def exec_cni(d: Running, command: str, pod: str) -> rpc.ExecCNIReply:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": f"cid-{pod}",
           "CNI_NETNS": d.netns(f"ns-{pod}"), "CNI_IFNAME": "eth0",
           "CNI_ARGS": f"K8S_POD_NAMESPACE=default;K8S_POD_NAME={pod}"}
    netconf = {"cniVersion": "1.0.0", "name": "terway", "type": "terway",
               "daemon_socket": d.socket, "rpc_timeout": 3600}
    raw_env = b"".join(f"{k}={v}".encode() + b"\0" for k, v in env.items())
    req = rpc.ExecCNIRequest(env=base64.b64encode(raw_env).decode(),
                             stdin=base64.b64encode(json.dumps(netconf).encode()).decode())
    reply: rpc.ExecCNIReply = rpc.RpcClient(d.socket, timeout=3600).call(req)
    return reply


def stdout_of(reply: rpc.ExecCNIReply) -> dict[str, object]:
    parsed: dict[str, object] = json.loads(base64.b64decode(reply.stdout) or b"{}")
    return parsed


def start_adds(d: Running, count: int) -> tuple[list[threading.Thread], list[rpc.ExecCNIReply]]:
    replies: list[rpc.ExecCNIReply] = []
    threads = [threading.Thread(target=lambda i=i: replies.append(exec_cni(d, "ADD", f"p{i}")),
                                daemon=True) for i in range(count)]
    for t in threads:
        t.start()
    return threads, replies


def test_status_del_and_check_do_not_wait_behind_slow_adds(tmp_path: Path) -> None:
    world = World.build(instance_type="ecs.g6.8xlarge")  # room for every ADD
    cloud = GatedCloud(world.cloud, world.instance_id)
    cloud.gate.clear()

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, cloud=cloud, alloc_timeout=3600.0,
                                  scale=1.0) as d:
            adds, _ = start_adds(d, SLOW_ADDS)
            try:
                await _until_waiting(d, cniexec.ADD_WORKERS)
                for command in ("STATUS", "DEL", "CHECK"):
                    reply = await _joined(exec_cni, d, command, "other")
                    assert reply is not None, f"{command} waited behind the ADDs"
                    if command != "CHECK":  # CHECK of an unknown pod is a specific error
                        assert reply.exit == 0, stdout_of(reply)
            finally:
                cloud.gate.set()
                for t in adds:
                    await asyncio.to_thread(t.join, 60)

    run(scenario())


def test_an_add_never_outlives_its_alloc_timeout_by_waiting_for_a_worker(tmp_path: Path) -> None:
    world = World.build(instance_type="ecs.g6.8xlarge")  # room for every ADD
    cloud = GatedCloud(world.cloud, world.instance_id)
    cloud.gate.clear()
    budget = 40.0   # clock seconds; 2 s of real time at scale 20

    async def scenario() -> None:
        async with running_daemon(tmp_path, world, cloud=cloud, alloc_timeout=budget) as d:
            adds, replies = start_adds(d, SLOW_ADDS)
            for t in adds:
                await asyncio.to_thread(t.join, 120)
            cloud.gate.set()
            assert len(replies) == SLOW_ADDS
            waited = [stdout_of(r)["msg"] for r in replies]
            for msg in waited:
                assert isinstance(msg, str)
                within = re.search(r"no address within ([0-9.]+)s", msg)
                assert "waited for a free ADD worker" in msg or \
                    (within is not None and float(within.group(1)) <= budget), msg
            assert sum("free ADD worker" in str(m) or _short(str(m), budget) for m in waited) \
                >= 1, "no queued ADD had its budget shortened by its wait for a worker"

    run(scenario())


def _short(msg: str, budget: float) -> bool:
    within = re.search(r"no address within ([0-9.]+)s", msg)
    return within is not None and float(within.group(1)) < budget


async def _joined(fn: Callable[..., Any], *args: Any) -> Any:
    """fn(*args) in a thread, or None when it has not returned within 30 s (a hang guard)."""
    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(fn(*args)), daemon=True)
    t.start()
    await asyncio.to_thread(t.join, 30)
    return out[0] if out else None


async def _until_waiting(d: Running, count: int) -> None:
    """Until ``count`` ADDs wait in the driver (every ADD worker is busy)."""
    for _ in range(3000):
        if len(d.daemon.driver._waiters) >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"only {len(d.daemon.driver._waiters)} ADDs reached the driver:\n"
                         + "\n".join(d.log_lines()[-20:]))
