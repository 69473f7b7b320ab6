"""The VPC fabric: emulated instances as network namespaces, emulated ENIs as real interfaces.

Entry points (see docs/fabric.md):

- ``start(cloud, http_port, http_host="127.0.0.1") -> Fabric`` — used by
  ``terway-emulator serve --fabric netns``; ``Fabric.stop()`` removes everything it made.
- ``cli_up(world, port, seed=None) -> int`` / ``cli_down() -> int`` — ``terway-emulator fabric``.
"""

from __future__ import annotations

from typing import Any

from .cli import cli_down, cli_up
from .fabric import Fabric
from .netns import FabricError
from .proxy import API_IP, METADATA_IP


def start(cloud: Any, http_port: int, http_host: str = "127.0.0.1", *,
          poll_interval: float = 0.2) -> Fabric:
    """Bring up every running instance of ``cloud`` as a netns and keep them in step.

    ``cloud`` is the model (``emulator.model.Cloud``) or the ``Emulator`` facade holding it;
    ``http_host:http_port`` is where the emulator's HTTP server listens in the root namespace.
    Returns once the nodes existing now are up. Raises ``FabricError`` (e.g. not root).
    """
    model = getattr(cloud, "cloud", cloud)
    return Fabric(model, http_port, http_host, poll_interval).start()


__all__ = ["API_IP", "METADATA_IP", "Fabric", "FabricError", "cli_down", "cli_up", "start"]
