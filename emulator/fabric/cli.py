"""``terway-emulator fabric up|down``: emulator + fabric in the foreground; cleanup."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .netns import netns_delete
from .registry import alive, recorded


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
    records = recorded(state_dir)
    running = {path for path, (pid, _) in records.items() if pid is not None and alive(pid)}
    live = {name for path in running for name in records[path][1]}
    for path, (pid, names) in records.items():
        if path in running and not include_live:
            print(f"fabric of running process {pid} left up ({len(names)} namespaces)")
            continue
        for name in names:
            if name in live and not include_live:
                print(f"netns {name} left up: a running fabric made one of that name too")
            elif netns_delete(name):
                print(f"deleted netns {name}")
        path.unlink(missing_ok=True)
    return 0
