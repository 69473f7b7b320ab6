"""The daemon's durable state: who owns which address, and which cloud calls are half done.

SQLite in WAL mode with ``synchronous=FULL``. WAL lets readers (``terway-cli``, GC) run while an
allocation commits; FULL makes every commit durable against power loss, not only against a
``kill -9`` (NORMAL+WAL would already survive a process crash). A commit happens once per pod
allocation change and once per cloud intent — tens per minute at most — so the fsync costs
nothing next to a cloud call, and an intent that is lost after a power cut would be an ENI
leaked for good. One transaction per change: a pod record and the intent it completes are
written together (``with store.transaction():``).

Pods are keyed ``namespace/name``; their resources keep upstream's shape
``{type: eniIp|eni, id: "<mac>.<ip>", eni_id, mac, ip}``. An *intent* is written before a cloud
call that changes something (with the call's ClientToken) and cleared after its result is
recorded, so reconcile on start knows exactly what may be half done.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
DB_NAME = "terway.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS pods (
    key TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    container_id TEXT NOT NULL,
    netns TEXT NOT NULL,
    ifname TEXT NOT NULL,
    ip_type TEXT NOT NULL,
    resources TEXT NOT NULL,
    extra TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS intents (
    token TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    params TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Resource:
    """One network resource a pod holds: a secondary IP (``eniIp``) or a whole ENI (``eni``)."""

    type: str
    eni_id: str
    mac: str
    ip: str

    @property
    def id(self) -> str:
        """Upstream's resource id ``<mac>.<ip>`` (what ``terway-cli mapping`` shows)."""
        return f"{self.mac}.{self.ip}"

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id, "eni_id": self.eni_id, "mac": self.mac,
                "ip": self.ip}

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> Resource:
        return cls(type=str(raw["type"]), eni_id=str(raw["eni_id"]), mac=str(raw["mac"]),
                   ip=str(raw["ip"]))


@dataclass(frozen=True)
class PodRecord:
    """A pod that holds resources on this node."""

    namespace: str
    name: str
    container_id: str
    netns: str
    ifname: str
    resources: tuple[Resource, ...]
    ip_type: str = "eniIp"
    extra: Mapping[str, str] = field(default_factory=dict)
    created_at: float = 0.0

    @property
    def key(self) -> str:
        return pod_key(self.namespace, self.name)


@dataclass(frozen=True)
class Intent:
    """A cloud call that may have happened: ``kind`` names it, ``params`` say how to check/undo."""

    token: str
    kind: str
    params: Mapping[str, Any]
    created_at: float = 0.0


def pod_key(namespace: str, name: str) -> str:
    return f"{namespace}/{name}"


ERR_STORE = "StateStoreUnavailable"  # the error code of a StoreError, wherever it is answered


class StoreError(RuntimeError):
    """A change could not be made durable (disk full, I/O error, read-only file system).

    Nothing of the change was kept. Callers answer with a specific error rather than as if the
    cloud had failed, and the daemon reports itself not ready until a write succeeds again.
    """


class Store:
    """One SQLite database in the state dir; safe to call from several threads (one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self.last_error: StoreError | None = None  # the last failed change, until one succeeds
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        with self.transaction():
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                             (str(SCHEMA_VERSION),))
        found = self.meta("schema_version")
        if found != str(SCHEMA_VERSION):
            raise RuntimeError(f"{path}: state schema version {found}, this terwayd knows "
                               f"{SCHEMA_VERSION}")

    @classmethod
    def open(cls, state_dir: str | os.PathLike[str]) -> Store:
        """Open (or create) ``state_dir/terway.db``; the dir is made 0700 and the db 0600."""
        directory = Path(state_dir)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        path = directory / DB_NAME
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(path, 0o600)
        return cls(path)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One atomic, durable change; nested uses join the outer transaction.

        A failure of SQLite itself (ENOSPC, EIO, EROFS…) rolls the change back and becomes a
        ``StoreError`` naming the state file; ``last_error`` keeps it until a change succeeds.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self._depth = 1
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    self.last_error = StoreError(f"state store {self.path}: {exc}")
                    raise self.last_error from None
                raise
            finally:
                self._depth = 0
            self.last_error = None

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

    def writable(self) -> StoreError | None:
        """After a failed change: try a small one now; the error if the store still fails."""
        if self.last_error is not None:
            with contextlib.suppress(StoreError):
                self.set_meta("probe", str(time.time()))
        return self.last_error

    # -- meta --------------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- pods --------------------------------------------------------------------------------

    def put_pod(self, rec: PodRecord) -> None:
        created = rec.created_at or time.time()
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO pods VALUES (?,?,?,?,?,?,?,?,?,?)",
                (rec.key, rec.namespace, rec.name, rec.container_id, rec.netns, rec.ifname,
                 rec.ip_type, json.dumps([r.to_json() for r in rec.resources]),
                 json.dumps(dict(rec.extra), sort_keys=True), created))

    def delete_pod(self, key: str) -> bool:
        with self.transaction():
            cur = self._db.execute("DELETE FROM pods WHERE key=?", (key,))
        return cur.rowcount > 0

    def get_pod(self, key: str) -> PodRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT namespace,name,container_id,netns,ifname,ip_type,resources,extra,"
                "created_at FROM pods WHERE key=?", (key,)).fetchone()
        return None if row is None else _pod(row)

    def pods(self) -> list[PodRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT namespace,name,container_id,netns,ifname,ip_type,resources,extra,"
                "created_at FROM pods ORDER BY key").fetchall()
        return [_pod(r) for r in rows]

    # -- intents -----------------------------------------------------------------------------

    def add_intent(self, intent: Intent) -> None:
        with self.transaction():
            self._db.execute("INSERT OR REPLACE INTO intents VALUES (?,?,?,?)",
                             (intent.token, intent.kind, json.dumps(dict(intent.params)),
                              intent.created_at or time.time()))

    def update_intent(self, token: str, params: Mapping[str, Any]) -> None:
        """Record progress of a multi-step intent (e.g. the ENI id once create returned)."""
        with self.transaction():
            self._db.execute("UPDATE intents SET params=? WHERE token=?",
                             (json.dumps(dict(params)), token))

    def clear_intent(self, token: str) -> None:
        with self.transaction():
            self._db.execute("DELETE FROM intents WHERE token=?", (token,))

    def intents(self) -> list[Intent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT token,kind,params,created_at FROM intents ORDER BY created_at").fetchall()
        return [Intent(str(t), str(k), json.loads(p), float(c)) for t, k, p, c in rows]


def _pod(row: Sequence[Any]) -> PodRecord:
    ns, name, cid, netns, ifname, ip_type, resources, extra, created = row
    return PodRecord(
        namespace=str(ns), name=str(name), container_id=str(cid), netns=str(netns),
        ifname=str(ifname), ip_type=str(ip_type),
        resources=tuple(Resource.from_json(r) for r in json.loads(resources)),
        extra=dict(json.loads(extra)), created_at=float(created))
