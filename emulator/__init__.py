"""The emulated Alibaba Cloud ECS/VPC: model, fault engine, front ends, fabric and simulator.

``emulator.mock_aliyun`` and ``emulator.Emulator`` are imported lazily (the SDK-facing pieces
pull in ``responses``/``requests``; the simulator does not need them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.server import Emulator
    from emulator.wire.mock import mock_aliyun

__all__ = ["Emulator", "mock_aliyun"]


def __getattr__(name: str) -> Any:
    if name == "mock_aliyun":
        from emulator.wire.mock import mock_aliyun

        return mock_aliyun
    if name == "Emulator":
        from emulator.server import Emulator

        return Emulator
    raise AttributeError(name)
