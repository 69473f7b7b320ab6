"""Run a core command against any CloudAPI and feed the outcome back: the drivers' shared glue.

Synchronous on purpose (the daemon runs it in a worker thread, the simulator around simpy time).
"""

from __future__ import annotations

from terway.cloud.api import CloudAPI, Eni, VSwitch
from terway.cloud.errors import CloudError
from terway.ipam.commands import (
    AssignIps,
    AttachEni,
    Command,
    CreateEni,
    DeleteEni,
    DescribeVSwitches,
    DetachEni,
    UnassignIps,
)
from terway.ipam.pool import IpamCore

Outcome = Eni | list[str] | list[VSwitch] | None


def execute(cmd: Command, cloud: CloudAPI) -> Outcome:
    """One CloudAPI call for ``cmd``. Attach/detach return when the call returns; waiting for
    InUse/Available (and the link on the node) is the driver's business. Raises CloudError."""
    match cmd:
        case CreateEni():
            return cloud.create_network_interface(
                vswitch_id=cmd.vswitch_id, security_group_ids=cmd.security_group_ids,
                secondary_ip_count=cmd.secondary_ip_count, tags=cmd.tags,
                client_token=cmd.client_token, resource_group_id=cmd.resource_group_id,
            )
        case AttachEni():
            cloud.attach_network_interface(cmd.eni_id, cmd.instance_id)
        case AssignIps():
            return cloud.assign_private_ips(cmd.eni_id, cmd.count)
        case UnassignIps():
            cloud.unassign_private_ips(cmd.eni_id, cmd.ips)
        case DetachEni():
            cloud.detach_network_interface(cmd.eni_id, cmd.instance_id)
        case DeleteEni():
            cloud.delete_network_interface(cmd.eni_id)
        case DescribeVSwitches():
            return cloud.describe_vswitches(cmd.vswitch_ids)
    return None


def feed(core: IpamCore, cmd: Command, outcome: Outcome | CloudError, now: float) -> None:
    """Hand a command's outcome (or its CloudError) back to the core."""
    if isinstance(outcome, CloudError):
        core.on_command_failed(cmd.cmd_id, outcome, now)
        return
    match cmd:
        case CreateEni():
            assert isinstance(outcome, Eni)
            core.on_eni_created(cmd.cmd_id, outcome, now)
        case AttachEni():
            core.on_eni_attached(cmd.cmd_id, now)
        case AssignIps():
            assert isinstance(outcome, list)
            core.on_ips_assigned(cmd.cmd_id, [str(ip) for ip in outcome], now)
        case UnassignIps():
            core.on_ips_unassigned(cmd.cmd_id, now)
        case DetachEni():
            core.on_eni_detached(cmd.cmd_id, now)
        case DeleteEni():
            core.on_eni_deleted(cmd.cmd_id, now)
        case DescribeVSwitches():
            assert isinstance(outcome, list)
            core.on_vswitches([v for v in outcome if isinstance(v, VSwitch)], now, cmd.cmd_id)


def run_sync(core: IpamCore, cloud: CloudAPI, now: float) -> list[Command]:
    """Tick and execute every resulting command at once until quiet (tests, simple drivers).

    Returns every command executed, in order. Attach/detach are treated as instantaneous.
    """
    done: list[Command] = []
    for _ in range(1000):
        cmds = core.tick(now)
        if not cmds:
            return done
        for cmd in cmds:
            try:
                outcome: Outcome | CloudError = execute(cmd, cloud)
            except CloudError as err:
                outcome = err
            feed(core, cmd, outcome, now)
            done.append(cmd)
    raise RuntimeError("run_sync: the core kept issuing commands (1000 rounds)")
