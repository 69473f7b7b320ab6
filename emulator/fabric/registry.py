"""On-disk record of the namespaces a fabric made, so ``fabric down`` can clean up after a crash.

Every link the fabric creates lives inside a namespace it created (veth pairs between the router
namespace and node namespaces; nothing in the root namespace), so deleting those namespaces is a
complete teardown. One JSON file per running fabric under ``STATE_DIR``.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

STATE_DIR = Path(os.environ.get("TERWAY_FABRIC_STATE_DIR", "/run/terway-emulator/fabric"))


class Registry:
    """The set of namespaces one fabric owns, mirrored to ``<STATE_DIR>/<pid>-<n>.json``."""

    _seq = 0
    _seq_lock = threading.Lock()

    def __init__(self, state_dir: Path | None = None) -> None:
        with Registry._seq_lock:
            Registry._seq += 1
            n = Registry._seq
        self.dir = state_dir or STATE_DIR
        self.path = self.dir / f"{os.getpid()}-{n}.json"
        self._names: set[str] = set()
        self._lock = threading.Lock()

    @property
    def names(self) -> set[str]:
        with self._lock:
            return set(self._names)

    def add(self, name: str) -> None:
        with self._lock:
            self._names.add(name)
            self._flush()

    def discard(self, name: str) -> None:
        with self._lock:
            self._names.discard(name)
            self._flush()

    def held_elsewhere(self, name: str) -> int | None:
        """The pid of another running fabric whose record lists ``name``, if any: a namespace
        of that name is its, not a stale one of ours to delete."""
        for path, (pid, names) in recorded(self.dir).items():
            if path != self.path and pid is not None and name in names and alive(pid):
                return pid
        return None

    def close(self) -> None:
        with self._lock:
            self._names.clear()
            self.path.unlink(missing_ok=True)

    def _flush(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "namespaces": sorted(self._names)}))
        tmp.replace(self.path)


def recorded(state_dir: Path | None = None) -> dict[Path, tuple[int | None, list[str]]]:
    """Every state file with its owner pid (None if unreadable) and the namespaces it lists."""
    base = state_dir or STATE_DIR
    out: dict[Path, tuple[int | None, list[str]]] = {}
    if not base.is_dir():
        return out
    for path in sorted(base.glob("*.json")):
        try:
            data = json.loads(path.read_text())
            pid = data.get("pid")
            names = [str(n) for n in data.get("namespaces", [])]
            out[path] = (int(pid) if isinstance(pid, int) else None, names)
        except (OSError, ValueError, AttributeError):
            out[path] = (None, [])
    return out


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (ours always does; a zombie does not)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def started(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot; None when it is gone): with the pid,
    it names one process, where a pid alone may be reused."""
    fields = _stat(pid)
    return int(fields[19]) if fields is not None and len(fields) > 19 else None


def _zombie(pid: int) -> bool:
    """Killed but not yet reaped (its parent gone): as good as dead."""
    fields = _stat(pid)
    return fields is None or fields[0] == "Z"


def _stat(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from its third field (the state) on: the command name before it
    may hold spaces and parentheses."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
