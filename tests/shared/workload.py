"""One deterministic workload, run through the simulator's node driver and through the real daemon.

Both sides build the same world with ``simulator.engine.Run`` (same seed → the same vSwitch,
security group and instance ids), record every ``CloudAPI`` call with the virtual time it was
made at, and return the calls the *core's commands* caused (create/attach/assign/unassign/
detach/delete ENI, DescribeVSwitches) and the attach/detach status polls (DescribeNetworkInterfaces
of one ENI), whose schedule both drivers take from ``terway.ipam.drive.WaitPolicy``. The daemon's
own node-wide ENI audits (DescribeNetworkInterfaces by instance: at start and every few minutes)
are left out: the simulator does not model them. The pods' answers are compared too: when each
pod got which address.

The story (zone cn-hangzhou-k, ecs.g6.2xlarge: 3 secondary ENIs of 10 addresses):

- ``vsw-a`` (/28, 12 free addresses) is the only vSwitch in eni_conf; the pool keeps 2..5 idle.
- 12 pods arrive one by one; the pool's top-up runs vsw-a dry: **IpNotEnough** (the seeds' line),
  ``SufficientIP=False``; every pod is still served from idle addresses.
- at 80 s pod c-0 finds no address and nothing in flight: the daemon **answers at once** (it does
  not hold the CNI call for the timeout); the kubelet retries every 10 to 15 s (its own backoff,
  the same draws on both sides) until an address comes.
- at 150 s **vsw-b is added to eni_conf** (picked up without a restart): counts are re-read,
  a third ENI on vsw-b serves the next pods.
- pods go away; the pool shrinks above ``max_pool_size`` (addresses unassigned, ENIs released).
"""

from __future__ import annotations

import asyncio
import io
import json
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emulator.inprocess import ModelCloud
from simulator.engine import Run
from simulator.scenario import parse_scenario
from terway.cloud.errors import CloudError
from terway.config import merge_patch
from terway.daemon import logfmt
from terway.daemon.app import Daemon, DaemonOptions
from terway.daemon.node import LoadedConfig, NodeInfo, cloud_eni_net, load_config
from terway.rpc import messages as rpc
from tests.shared.virtual import VirtualClock, VirtualLoop

ZONE = "cn-hangzhou-k"
SEED = 11
ADD_VSWITCH_AT = 150.0
SETUP = 0.05
END = 400.0
Call = tuple[float, str, str, str]     # (time, CloudAPI method, arguments, OK | error code)
Answer = tuple[float, str, str]        # (time, pod key, address or error): what the pod was told
# (key, created at, lifetime after set-up); times avoid whole seconds (config polls, ENI polls)
PODS: list[tuple[str, float, float]] = (
    [(f"default/a-{i}", 5.37 + 6.1 * i, 240.0 - 9.0 * i) for i in range(12)]
    + [("default/c-0", 80.13, 30.0)]      # vsw-a is dry and every address taken: told at once
    + [(f"default/b-{i}", 160.41 + 4.3 * i, 120.0 + 11.0 * i) for i in range(5)]
)
UNAVAILABLE = "unavailable"
CORE_CALLS = {"create_network_interface", "attach_network_interface", "assign_private_ips",
              "unassign_private_ips", "detach_network_interface", "delete_network_interface",
              "describe_vswitches", "describe_network_interfaces"}
UNSET = re.compile(r"(, )?\b\w+=None\b")


def scenario_doc(policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """The story's scenario; ``policy``: a scenario ``policy:`` (default: terway's watermarks)."""
    return {**({"policy": policy} if policy else {}),
        "name": "daemon-vs-sim", "seed": SEED, "duration": f"{END:g}s",
        "cluster": {"zone": ZONE, "nodes": 1, "instance_type": "ecs.g6.2xlarge",
                    "vswitches": [{"id": "vsw-a", "cidr": "10.0.0.0/28"},
                                  {"id": "vsw-b", "cidr": "10.0.1.0/26"}],
                    "attach_delay": 1.5, "detach_delay": 1.5},
        "eni_conf": {"min_pool_size": 2, "max_pool_size": 5, "ip_pool_sync_period": "30s",
                     "vswitch_selection_policy": "random",
                     "vswitches": {ZONE: ["vsw-a"]}},
        "latency": {"default": 0.0},
        "kubelet": {"setup_time": SETUP},
        "events": [{"at": f"{ADD_VSWITCH_AT:g}s", "action": "set_config",
                    "eni_conf": {"vswitches": {ZONE: ["vsw-a", "vsw-b"]}}}],
        "expectations": ["invariant_violations == 0"],
    }


class Recorder:
    """A CloudAPI wrapper: every call with the virtual time, its name and its arguments."""

    def __init__(self, inner: Any, now: Callable[[], float], log: list[Call],
                 drop: str | None = None) -> None:
        self.inner, self.now, self.log, self.drop = inner, now, log, drop
        self.dropped = False

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            if name == self.drop and not self.dropped:   # a broken driver: one call lost
                self.dropped = True
                return None
            args_s = ", ".join([*map(repr, args),
                                *(f"{k}={v!r}" for k, v in sorted(kwargs.items()))])
            at = round(self.now(), 6)
            try:
                result = fn(*args, **kwargs)
            except CloudError as err:
                self.log.append((at, name, args_s, err.code))
                raise
            self.log.append((at, name, args_s, "OK"))
            return result
        return call


def core_calls(calls: list[Call], prefix: str) -> list[Call]:
    """The calls the core's commands caused, ClientToken prefixes (node name vs instance id
    plus generation: each driver's own choice) normalised. Calls made at the same instant are
    sorted: which of two ENIs that finished detaching together is deleted first is the event
    loop's order, not a decision."""
    return sorted((t, n, UNSET.sub("", a.replace(prefix, "<node>")).lstrip(", "), r)
                  for t, n, a, r in calls if n in CORE_CALLS and _not_an_audit(n, a))


def _not_an_audit(name: str, args: str) -> bool:
    return name != "describe_network_interfaces" or "eni_ids=[" in args


# -- (a) the simulator ---------------------------------------------------------------------------


def simulated(eager_tick: bool = True,
              policy: dict[str, Any] | None = None) -> tuple[list[Call], Run]:
    """``eager_tick``: tick after every input, as the daemon does (the simulator's default,
    lazy pumping, skips ticks that cannot have work; both must give the same calls)."""
    calls: list[Call] = []
    run = Run(parse_scenario(scenario_doc(policy)), eager_tick=eager_tick)
    run.cloud = Recorder(run.cloud, lambda: run.env.now, calls)
    ready = run.cluster._ready
    answers: list[Answer] = []

    def record(pod: Any, allocation: Any) -> None:
        answers.append((round(run.env.now, 6), pod.key, allocation.ip))
        ready(pod, allocation)
    run.cluster._ready = record  # type: ignore[method-assign]
    unavailable = run.cluster.on_unavailable

    def told(key: str) -> None:
        answers.append((round(run.env.now, 6), key, UNAVAILABLE))
        unavailable(key)
    run.cluster.on_unavailable = told  # type: ignore[method-assign]
    run.answers = answers  # type: ignore[attr-defined]
    run.add_nodes(1)
    for ev in run.scenario.events:
        run._at(ev.at, run._event_fn(ev))
    for key, at, life in PODS:
        run._at(at, _creator(run, key, life))
    run.env.run(until=END)
    return core_calls(calls, "node-0001-g1"), run


def _creator(run: Run, key: str, life: float) -> Callable[[], None]:
    def create() -> None:
        run.cluster.create(key, lifetime=life)
    return create


# -- (b) the daemon ------------------------------------------------------------------------------


async def _rpc(socket_path: str, request: Any) -> Any:
    """terway/rpc/messages.py's wire format over an asyncio connection (the loop's virtual time)."""
    method = next(m for m, (req, _) in rpc.METHODS.items() if req is type(request))
    reader, writer = await asyncio.open_unix_connection(socket_path)
    try:
        writer.write(rpc.encode_request(request))
        await writer.drain()
        line = await reader.readline()
    finally:
        writer.close()
    return rpc.decode_reply(line, rpc.METHODS[method][1])


class DaemonRun:
    """The real ``Daemon`` on a ``VirtualLoop``, driven over its unix socket."""

    def __init__(self, tmp: Path, drop: str | None = None,
                 policy: dict[str, Any] | None = None) -> None:
        self.tmp = tmp
        self.drop = drop
        self.policy = policy
        self.calls: list[Call] = []
        self.failures: list[str] = []
        self.answers: list[Answer] = []
        self._backoff = random.Random(f"{SEED}:kubelet-backoff")   # the simulator's draws
        self.prefix = ""
        self.log_text = ""

    def kubelet_backoff(self) -> float:
        """The kubelet's sandbox retry (simulator.kubelet's defaults: 10 s, up to 50 % more)."""
        return 10.0 * (1.0 + self._backoff.random() * 0.5)

    def run(self) -> list[Call]:
        loop = VirtualLoop()
        try:
            loop.run_until_complete(self._main(loop))
        finally:
            loop.close()
        return core_calls(self.calls, self.prefix)

    def _world(self, loop: VirtualLoop) -> tuple[Run, str]:
        run = Run(parse_scenario(scenario_doc(self.policy)))   # the same world, not simulated
        run.model._clock = loop.time
        (iid,) = run.model.run_instances(run.scenario.instance_type, run.node_vsw,
                                         [run.sg_id], 1)
        return run, iid

    async def _main(self, loop: VirtualLoop) -> None:
        run, iid = self._world(loop)
        inst = run.model.get_instance(iid)
        node = NodeInfo(instance_id=iid, instance_type=inst.instance_type,
                        region_id=inst.region_id, zone_id=inst.zone_id,
                        primary_vswitch_id=inst.vswitch_id,
                        primary_security_group_ids=tuple(inst.security_group_ids))
        self.prefix = f"{iid}-g1"
        conf_file = self.tmp / "eni.json"
        conf_raw = merge_patch(run.conf_raw, dict(run.policy_runtime.conf_patch))  # as the sim
        conf_file.write_text(json.dumps(conf_raw))

        def loader() -> LoadedConfig:
            return load_config(str(conf_file), None)

        clock = VirtualClock(loop)
        cloud = Recorder(ModelCloud(run.model, iid), clock.now, self.calls, self.drop)
        options = DaemonOptions(
            state_dir=str(self.tmp / "state"), socket_path=str(self.tmp / "run" / "eni.socket"),
            alloc_timeout=120.0, gc_period=3600.0, config_poll=1.0,
            seed=f"{SEED}:node-0001:1")           # the simulator's seed for node 1, generation 1
        stream = io.StringIO()
        logfmt.setup(logfmt.parse_level("info"), stream)
        daemon = Daemon(options, loader(), cloud, node=node, clock=clock, config_loader=loader,
                        eni_net=cloud_eni_net(ModelCloud(run.model)))   # metadata's part
        await daemon.start()
        try:
            pods = [asyncio.ensure_future(self._pod(daemon, key, at, life))
                    for key, at, life in PODS]
            await asyncio.sleep(ADD_VSWITCH_AT - 0.5 - loop.time())
            raw = json.loads(json.dumps(conf_raw))
            raw["vswitches"] = {ZONE: [run.vsw_ids["vsw-a"], run.vsw_ids["vsw-b"]]}
            conf_file.write_text(json.dumps(raw))
            await asyncio.sleep(END - loop.time())
            for p in pods:
                p.cancel()
            await asyncio.gather(*pods, return_exceptions=True)
        finally:
            await daemon.stop()
            self.log_text = stream.getvalue()

    async def _pod(self, daemon: Daemon, key: str, at: float, life: float) -> None:
        await asyncio.sleep(at - asyncio.get_running_loop().time())
        ns, name = key.split("/")
        sock = daemon.options.socket_path
        loop = asyncio.get_running_loop()
        while True:
            try:
                info = await _rpc(sock, rpc.AllocIPRequest(pod_name=name, pod_namespace=ns,
                                                           container_id=f"cid-{name}", netns="",
                                                           ifname="eth0"))
                break
            except rpc.RpcError as exc:
                if "no address can be had now" not in str(exc):
                    self.failures.append(f"{key}: {exc}")
                    return
                self.answers.append((round(loop.time(), 6), key, UNAVAILABLE))
                await asyncio.sleep(self.kubelet_backoff())
        self.answers.append((round(loop.time(), 6), key, info.pod_ip))
        await asyncio.sleep(SETUP + life)
        await _rpc(sock, rpc.ReleaseIPRequest(pod_name=name, pod_namespace=ns,
                                              container_id=f"cid-{name}", ifname="eth0"))


def daemon_calls(drop: str | None = None,
                 policy: dict[str, Any] | None = None) -> tuple[list[Call], DaemonRun]:
    with tempfile.TemporaryDirectory(prefix="terway-shared-") as tmp:
        dr = DaemonRun(Path(tmp), drop, policy)
        return dr.run(), dr


__all__ = ["ADD_VSWITCH_AT", "PODS", "UNAVAILABLE", "Answer", "Call", "DaemonRun", "daemon_calls",
           "simulated"]
