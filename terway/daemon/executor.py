"""Run one IPAM command against the cloud, synchronously (the driver calls this in a thread).

Attach and detach are not done when the API call returns: the ENI goes Attaching → InUse
(Detaching → Available) asynchronously. ``AttachEni`` is complete only when
DescribeNetworkInterfaces says InUse *and* the node can use the ENI: instance metadata lists its
MAC and, when a link check is configured, an interface with that MAC exists — otherwise the
first pod on it would be wired to an interface that is not there yet.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from terway.cloud.api import CloudAPI, Eni, VSwitch
from terway.cloud.errors import CloudError, ErrorClass
from terway.ipam.commands import AttachEni, Command, DetachEni
from terway.ipam.drive import WaitPolicy, wait_timed_out
from terway.ipam.execute import execute

Outcome = Eni | list[str] | list[VSwitch] | None
T = TypeVar("T")


def link_with_mac_exists(mac: str, sys_class_net: str = "/sys/class/net") -> bool:
    """True when a network interface with this MAC exists in the daemon's namespace."""
    try:
        names = os.listdir(sys_class_net)
    except OSError:
        return False
    wanted = mac.lower()
    for name in names:
        try:
            with open(os.path.join(sys_class_net, name, "address")) as f:
                if f.read().strip().lower() == wanted:
                    return True
        except OSError:
            continue
    return False


class Executor:
    """Maps commands onto CloudAPI calls; blocking (polls with ``sleep``)."""

    def __init__(
        self,
        cloud: CloudAPI,
        *,
        sleep: Callable[[float], None],
        now: Callable[[], float],
        wait: WaitPolicy | None = None,
        macs_visible: Callable[[], set[str]] | None = None,
        link_exists: Callable[[str], bool] | None = None,
    ) -> None:
        self.cloud = cloud
        self._sleep = sleep
        self._now = now
        self.wait = wait or WaitPolicy()
        self._macs_visible = macs_visible
        self._link_exists = link_exists

    def run(self, cmd: Command) -> Outcome:
        """The core's shared mapping (``terway.ipam.execute``), plus waiting for attach and
        detach to finish: the same cloud calls as every other driver of the core."""
        match cmd:
            case AttachEni():
                self.attach(cmd.eni_id, cmd.instance_id)
                return None
            case DetachEni():
                self.detach(cmd.eni_id, cmd.instance_id)
                return None
        return execute(cmd, self.cloud)

    # -- attach / detach ----------------------------------------------------------------------

    def attach(self, eni_id: str, instance_id: str) -> Eni:
        self.cloud.attach_network_interface(eni_id, instance_id)
        return self.wait_attached(eni_id, instance_id)

    def wait_attached(self, eni_id: str, instance_id: str) -> Eni:
        """Poll until the ENI is InUse on ``instance_id`` and visible on the node."""

        def ready() -> Eni | None:
            eni = self._describe(eni_id)
            if eni is None:
                raise CloudError("InvalidEniId.NotFound",
                                 f"ENI {eni_id} disappeared while attaching")
            if eni.status != "InUse" or (eni.instance_id and eni.instance_id != instance_id):
                return None
            if self._macs_visible is not None and eni.mac.lower() not in self._macs_visible():
                return None
            if self._link_exists is not None and not self._link_exists(eni.mac):
                return None
            return eni

        return self._poll(ready, f"ENI {eni_id} to be InUse on {instance_id}")

    def detach(self, eni_id: str, instance_id: str) -> None:
        try:
            self.cloud.detach_network_interface(eni_id, instance_id)
        except CloudError as err:
            if err.error_class is not ErrorClass.NOT_FOUND:
                raise
            return
        self.wait_detached(eni_id)

    def wait_detached(self, eni_id: str) -> None:
        def ready() -> bool | None:
            eni = self._describe(eni_id)
            return True if eni is None or eni.status == "Available" else None

        self._poll(ready, f"ENI {eni_id} to be Available")

    def _describe(self, eni_id: str) -> Eni | None:
        found = self.cloud.describe_network_interfaces(eni_ids=[eni_id])
        return next((e for e in found if e.eni_id == eni_id), None)

    def _poll(self, ready: Callable[[], T | None], what: str) -> T:
        """Check, pause, check again on the shared ``WaitPolicy`` schedule until the deadline."""
        deadline = self._now() + self.wait.timeout
        for pause in self.wait.pauses():
            result = ready()
            if result is not None:
                return result
            if self._now() >= deadline:
                raise wait_timed_out(self.wait, what)
            self._sleep(pause)
        raise AssertionError("unreachable: WaitPolicy.pauses() never ends")
