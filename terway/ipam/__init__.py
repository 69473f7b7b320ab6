"""The sans-IO IPAM core: one pool policy, driven by the daemon, the simulator and the tests.

Contract: docs/ipam.md.
"""

from terway.ipam.adaptive import AdaptivePolicy
from terway.ipam.audit import IpAudit
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
from terway.ipam.execute import Outcome, execute, feed, run_sync
from terway.ipam.notices import (
    Allocation,
    ConditionChanged,
    Exhausted,
    IpReady,
    LogLine,
    Notice,
    Pending,
)
from terway.ipam.policy import (
    AwsWarmPolicy,
    CiliumPolicy,
    PoolPlan,
    PoolPolicy,
    PoolState,
    TerwayPolicy,
    make_policy,
)
from terway.ipam.pool import IpamCore
from terway.ipam.settings import IpamSettings, NodeIdentity
from terway.ipam.views import EniView, MappingRow, PoolStats, RestoreReport

__all__ = [
    "AdaptivePolicy",
    "Allocation",
    "AssignIps",
    "AttachEni",
    "AwsWarmPolicy",
    "CiliumPolicy",
    "Command",
    "ConditionChanged",
    "CreateEni",
    "DeleteEni",
    "DescribeVSwitches",
    "DetachEni",
    "EniView",
    "Exhausted",
    "IpAudit",
    "IpReady",
    "IpamCore",
    "IpamSettings",
    "LogLine",
    "MappingRow",
    "NodeIdentity",
    "Notice",
    "Outcome",
    "Pending",
    "PoolPlan",
    "PoolPolicy",
    "PoolState",
    "PoolStats",
    "RestoreReport",
    "TerwayPolicy",
    "UnassignIps",
    "execute",
    "feed",
    "make_policy",
    "run_sync",
]
