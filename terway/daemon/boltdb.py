"""A read-only reader of bbolt (go.etcd.io/bbolt) database files, in pure Python.

Upstream Terway keeps its pod state in bbolt files (docs/daemon.md, "Migration"); a daemon that
replaces it in place must read them to know which addresses its pods hold. Only reading is
needed, so this is a small walk of the on-disk format (bbolt's file format version 2, as
documented by its source): two meta pages, each naming the root bucket's page, branch and leaf
pages, buckets nested in leaf values (inline ones carried in the value itself) and pages
spanning several page sizes (overflow).

Every offset is checked against the page it belongs to and the file's size: a corrupt or unknown
file raises ``BoltError`` naming the path and what is wrong, never an ``IndexError`` or a loop.
The file is read into memory in one go (no mmap: a file truncated under us must not kill the
daemon with SIGBUS) and the reader takes no lock: upstream must be stopped, as it is when it is
replaced.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

MAGIC = 0xED0CDAED
VERSION = 2
BRANCH, LEAF, META = 0x01, 0x02, 0x04          # page flags
BUCKET_LEAF = 0x01                              # leaf element flag: the value is a bucket
PAGE_HEADER = struct.Struct("<QHHI")            # id, flags, count, overflow
META_BODY = struct.Struct("<IIIIQQQQQQ")        # magic version page_size flags root sequence
                                                # freelist pgid txid checksum
BRANCH_ELEM = struct.Struct("<IIQ")             # pos ksize pgid
LEAF_ELEM = struct.Struct("<IIII")              # flags pos ksize vsize
BUCKET_HEADER = struct.Struct("<QQ")            # root (0: inline) sequence
MAX_FILE = 256 << 20   # a pod state file holds a few KiB per pod: refuse what cannot be one
MAX_DEPTH = 64         # a B+tree of a few hundred pages is 2-3 deep; deeper is a cycle
PAGE_SIZES = (4096, 8192, 16384, 32768, 65536, 1024, 2048)


class BoltError(ValueError):
    """The file is not a bbolt database this reader can trust (message names the path)."""


def fnv64a(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


@dataclass(frozen=True)
class Meta:
    page_size: int
    root: int
    high_water: int   # first page id past the used part of the file
    txid: int


class BoltFile:
    """A bbolt file read at one committed transaction (the newer valid meta page)."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path = path
        self._data = data
        self.meta = self._pick_meta()

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> BoltFile:
        """Read ``path``; ``OSError`` when it cannot be read, ``BoltError`` when it is not a
        sound bbolt file."""
        p = Path(path)
        size = p.stat().st_size
        if size > MAX_FILE:
            raise BoltError(f"{p}: {size} bytes, more than a pod state file can be "
                            f"({MAX_FILE} at most); not read")
        with p.open("rb") as f:
            data = f.read(MAX_FILE + 1)
        return cls(str(p), data)

    def _fail(self, why: str) -> BoltError:
        return BoltError(f"{self.path}: not a readable bbolt database: {why}")

    # -- meta ---------------------------------------------------------------------------------

    def _meta_at(self, offset: int) -> Meta | str:
        """The meta page at ``offset``, or why it is not one."""
        end = offset + PAGE_HEADER.size + META_BODY.size
        if end > len(self._data):
            return "file too short for a meta page"
        _, flags, _, _ = PAGE_HEADER.unpack_from(self._data, offset)
        body = offset + PAGE_HEADER.size
        magic, version, page_size, _, root, _, _, pgid, txid, checksum = \
            META_BODY.unpack_from(self._data, body)
        if magic != MAGIC:
            return f"bad magic {magic:#x}"
        if version != VERSION:
            return f"file format version {version}, only {VERSION} is known"
        if flags != META:
            return f"page flags {flags:#x} are not a meta page's"
        if fnv64a(self._data[body:body + META_BODY.size - 8]) != checksum:
            return "meta page checksum mismatch"
        if page_size < 1024 or page_size & (page_size - 1) or page_size > 1 << 20:
            return f"page size {page_size}"
        return Meta(page_size, root, pgid, txid)

    def _pick_meta(self) -> Meta:
        first = self._meta_at(0)
        sizes = [first.page_size] if isinstance(first, Meta) else list(PAGE_SIZES)
        second: Meta | str = "not found"
        for size in sizes:
            second = self._meta_at(size)
            if isinstance(second, Meta):
                break
        valid = [m for m in (first, second) if isinstance(m, Meta)]
        if not valid:
            raise self._fail(f"no valid meta page (first: {first}; second: {second})")
        meta = max(valid, key=lambda m: m.txid)
        if meta.high_water * meta.page_size > len(self._data) or meta.high_water < 2:
            raise self._fail(f"meta page says {meta.high_water} pages of {meta.page_size} "
                             f"bytes, the file has {len(self._data)} bytes")
        return meta

    # -- pages --------------------------------------------------------------------------------

    def _page(self, pgid: int) -> tuple[int, int, int, int]:
        """(start, end, flags, count) of page ``pgid`` with its overflow pages."""
        ps = self.meta.page_size
        if not 2 <= pgid < self.meta.high_water:
            raise self._fail(f"page {pgid} is outside the file's pages 2.."
                             f"{self.meta.high_water - 1}")
        start = pgid * ps
        own_id, flags, count, overflow = PAGE_HEADER.unpack_from(self._data, start)
        if own_id != pgid:
            raise self._fail(f"page {pgid} calls itself page {own_id}")
        if pgid + overflow >= self.meta.high_water:
            raise self._fail(f"page {pgid} overflows past the file's last page")
        return start, start + (overflow + 1) * ps, flags, count

    def _elements(self, data: bytes, start: int, end: int, flags: int, count: int,
                  depth: int) -> Iterator[tuple[bytes, bytes, int]]:
        """(key, value, element flags) of a branch or leaf page in ``data[start:end]`` (the
        file, or an inline bucket's value), in key order (a branch page's children walked)."""
        if depth > MAX_DEPTH:
            raise self._fail("bucket tree deeper than any sane one (a page cycle?)")
        elem = BRANCH_ELEM if flags == BRANCH else LEAF_ELEM if flags == LEAF else None
        if elem is None:
            raise self._fail(f"page at byte {start} has flags {flags:#x}, not a branch or leaf")
        if start + PAGE_HEADER.size + count * elem.size > end:
            raise self._fail(f"page at byte {start}: {count} elements do not fit")
        for i in range(count):
            at = start + PAGE_HEADER.size + i * elem.size
            if flags == BRANCH:
                pos, ksize, child = BRANCH_ELEM.unpack_from(data, at)
                self._span(at, pos, ksize, end)
                cstart, cend, cflags, ccount = self._page(child)
                yield from self._elements(self._data, cstart, cend, cflags, ccount, depth + 1)
            else:
                eflags, pos, ksize, vsize = LEAF_ELEM.unpack_from(data, at)
                self._span(at, pos, ksize + vsize, end)
                key = data[at + pos:at + pos + ksize]
                yield key, data[at + pos + ksize:at + pos + ksize + vsize], eflags

    def _span(self, at: int, pos: int, size: int, end: int) -> None:
        if at + pos + size > end:
            raise self._fail(f"element at byte {at} points past its page")

    # -- buckets ------------------------------------------------------------------------------

    def root(self) -> Bucket:
        """The root bucket: its keys are the top-level buckets."""
        return Bucket(self, self.meta.root, None, 0)

    def bucket(self, *names: str | bytes) -> Bucket | None:
        """The bucket at ``names`` (nested), None when absent."""
        b: Bucket | None = self.root()
        for name in names:
            b = b.bucket(name) if b is not None else None
        return b


class Bucket:
    """One bucket: a page tree (``root`` page id) or an inline page carried in its value."""

    def __init__(self, db: BoltFile, root: int, inline: bytes | None, depth: int) -> None:
        self._db, self._root, self._inline, self._depth = db, root, inline, depth

    def _entries(self) -> Iterator[tuple[bytes, bytes, int]]:
        db = self._db
        if self._depth > MAX_DEPTH:
            raise db._fail("buckets nested deeper than any sane file")
        if self._inline is None:
            start, end, flags, count = db._page(self._root)
            yield from db._elements(db._data, start, end, flags, count, 0)
            return
        page = self._inline
        if len(page) < PAGE_HEADER.size:
            raise db._fail("inline bucket shorter than a page header")
        _, flags, count, _ = PAGE_HEADER.unpack_from(page, 0)
        if flags != LEAF:
            raise db._fail(f"inline bucket page has flags {flags:#x}, not a leaf")
        yield from db._elements(page, 0, len(page), flags, count, 0)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) of every plain value here, in key order (nested buckets left out)."""
        for key, value, flags in self._entries():
            if not flags & BUCKET_LEAF:
                yield key, value

    def buckets(self) -> list[bytes]:
        return [key for key, _, flags in self._entries() if flags & BUCKET_LEAF]

    def bucket(self, name: str | bytes) -> Bucket | None:
        want = name.encode() if isinstance(name, str) else name
        for key, value, flags in self._entries():
            if key == want and flags & BUCKET_LEAF:
                return self._open_nested(value)
        return None

    def page_counts(self) -> dict[str, int]:
        """How this bucket's tree lies on disk: its branch, leaf and overflow pages (an inline
        bucket has none). For tests and diagnostics."""
        counts = {"branch": 0, "leaf": 0, "overflow": 0}
        todo = [] if self._inline is not None else [(self._root, 0)]
        while todo:
            pgid, depth = todo.pop()
            if depth > MAX_DEPTH:
                raise self._db._fail("bucket tree deeper than any sane one (a page cycle?)")
            start, end, flags, count = self._db._page(pgid)
            counts["overflow"] += (end - start) // self._db.meta.page_size - 1
            if flags == BRANCH:
                counts["branch"] += 1
                for i in range(count):
                    at = start + PAGE_HEADER.size + i * BRANCH_ELEM.size
                    if at + BRANCH_ELEM.size > end:
                        raise self._db._fail(f"page {pgid}: {count} elements do not fit")
                    todo.append((BRANCH_ELEM.unpack_from(self._db._data, at)[2], depth + 1))
            else:
                counts["leaf"] += 1
        return counts

    def _open_nested(self, value: bytes) -> Bucket:
        if len(value) < BUCKET_HEADER.size:
            raise self._db._fail("bucket value shorter than a bucket header")
        root, _ = BUCKET_HEADER.unpack_from(value, 0)
        if root == 0:
            return Bucket(self._db, 0, value[BUCKET_HEADER.size:], self._depth + 1)
        return Bucket(self._db, root, None, self._depth + 1)
