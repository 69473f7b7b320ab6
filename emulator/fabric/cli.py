"""``terway-emulator fabric up|down``: emulator + fabric in the foreground; cleanup."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .netns import netns_delete
from .registry import recorded


def cli_up(world: str | None, port: int, seed: int | None = None) -> int:
    """Serve the emulator on ``127.0.0.1:port`` with the fabric on, until SIGINT/SIGTERM.

    Returns the process exit code (0 on a clean stop, 1 when the fabric cannot come up).
    """
    from emulator.server import Emulator

    from . import start
    from .netns import FabricError

    emu = Emulator.create(seed=seed or 0, world=world)
    server = emu.serve(port=port)
    try:
        fabric = start(emu, server.port)
    except FabricError as exc:
        server.stop()
        print(f"terway-emulator fabric up: {exc}", file=sys.stderr)
        return 1
    print(f"fabric up: api={server.url} routers={','.join(fabric.routers)} "
          f"nodes={','.join(sorted(fabric.plumber.nodes))}", flush=True)
    stopped = threading.Event()

    def on_signal(_sig: int, _frame: FrameType | None) -> None:
        stopped.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    stopped.wait()
    fabric.stop()
    server.stop()
    print("fabric down", flush=True)
    return 0


def cli_down(state_dir: Path | None = None, *, include_live: bool = False) -> int:
    """Delete the namespaces recorded by fabrics whose process is gone (idempotent); exit 0.

    A fabric that is still running (its recorded pid alive) is left alone unless ``include_live``:
    stop it with SIGINT/SIGTERM instead, so a ``fabric down`` never pulls namespaces out from
    under a running emulator or test.
    """
    for path, (pid, names) in recorded(state_dir).items():
        if pid is not None and _alive(pid) and not include_live:
            print(f"fabric of running process {pid} left up ({len(names)} namespaces)")
            continue
        for name in names:
            if netns_delete(name):
                print(f"deleted netns {name}")
        path.unlink(missing_ok=True)
    return 0


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped (its parent gone): as good as dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"
