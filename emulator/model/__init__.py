"""The emulated Alibaba Cloud model: typed, thread-safe, seeded, no HTTP.

See docs/emulator-model.md.
"""

from __future__ import annotations

from .catalog import CATALOG, InstanceType
from .clock import ManualClock
from .cloud import Cloud
from .errors import ApiError
from .events import CloudEvent, EventKind
from .records import EniView, InstanceView, SecurityGroupView, VpcView, VSwitchView

__all__ = [
    "CATALOG",
    "ApiError",
    "Cloud",
    "CloudEvent",
    "EniView",
    "EventKind",
    "InstanceType",
    "InstanceView",
    "ManualClock",
    "SecurityGroupView",
    "VSwitchView",
    "VpcView",
]
