"""Front ends over the cloud model: HTTP server, ACS3 signature check, metadata, control, mock.

Imports are lazy so ``import emulator.wire`` stays cheap; see docs/emulator.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from emulator.wire.mock import MockAliyun, mock_aliyun
    from emulator.wire.signature import Credentials

__all__ = ["Credentials", "MockAliyun", "mock_aliyun"]


def __getattr__(name: str) -> Any:
    if name in ("MockAliyun", "mock_aliyun"):
        from emulator.wire import mock

        return getattr(mock, name)
    if name == "Credentials":
        from emulator.wire.signature import Credentials

        return Credentials
    raise AttributeError(name)
