"""terway/daemon/boltdb.py and upstream_state.py against files the real bbolt library wrote.

Every file here is written by tests/go/boltwriter (go.etcd.io/bbolt v1.4.3, upstream's pin), one
transaction per Put as upstream's DiskStorage, so freed pages and both meta pages are in play.
Without Go these tests skip, except in CI (TERWAY_REQUIRE_PRIVILEGED=1), where they fail.
"""

from __future__ import annotations

import json
import random
import struct
from pathlib import Path

import pytest

from terway.daemon.boltdb import BoltError, BoltFile
from terway.daemon.upstream_state import UpstreamPod, read_upstream_state
from tests.daemon.upstream_files import pod_info, relation, upstream_dir, write_bolt

MAC = "00:16:3e:0a:0b:0c"


def raw(entries: dict[str, str], **buckets: dict) -> dict:
    return {"kind": "raw", "entries": entries, "buckets": buckets}


def test_upstream_schema_reads_back_as_upstream_wrote_it(tmp_path: Path) -> None:
    rel = {"default/web-0": relation("default", "web-0", "192.168.0.5", mac=MAC,
                                     eni_id="eni-1", container_id="c0",
                                     netns="/var/run/netns/cni-0"),
           "kube-system/old-1": relation("kube-system", "old-1", "192.168.0.6", mac=MAC,
                                         legacy=True)}
    path = write_bolt(tmp_path / "ResRelation.db", {"buckets": {"relation": {
        "kind": "pod-resources", "entries": rel}}})
    db = BoltFile.open(path)
    assert db.root().buckets() == [b"relation"]
    items = dict(db.bucket("relation").items())
    assert sorted(items) == [b"default/web-0", b"kube-system/old-1"]
    doc = json.loads(items[b"default/web-0"])
    # what Go's encoding/json made of upstream's types: every field, in upstream's spelling
    assert doc["Resources"] == [{"type": "eniIp", "id": f"{MAC}.192.168.0.5",
                                 "extra_eip_info": None, "eni_id": "eni-1", "eni_mac": MAC,
                                 "ipv4": "192.168.0.5", "ipv6": ""}]
    assert doc["PodInfo"]["PodIPs"] == {"IPv4": "192.168.0.5", "IPv6": ""}
    assert (doc["NetNs"], doc["ContainerID"]) == ("/var/run/netns/cni-0", "c0")
    assert json.loads(items[b"kube-system/old-1"])["ContainerID"] is None


def test_upstream_state_gives_each_pod_its_address(tmp_path: Path) -> None:
    state_dir = upstream_dir(tmp_path / "up", {
        "default/web-0": relation("default", "web-0", "192.168.0.5", mac=MAC, eni_id="eni-1",
                                  container_id="c0", netns="/var/run/netns/cni-0"),
        "default/old-1": relation("default", "old-1", "192.168.0.6", mac=MAC, legacy=True),
        "default/done-2": relation("default", "done-2", "192.168.0.7", mac=MAC, exited=True),
    }, pods={"default/sticky-3": pod_info("default", "sticky-3", "192.168.0.8"),
             "default/web-0": pod_info("default", "web-0", "192.168.0.5")})
    state = read_upstream_state(str(state_dir))
    rel, pods = str(state_dir / "ResRelation.db"), str(state_dir / "pod.db")
    assert state.problems == []
    assert state.pods == [
        UpstreamPod("default", "old-1", "192.168.0.6", MAC, "", source=rel),
        UpstreamPod("default", "web-0", "192.168.0.5", MAC, "eni-1", "c0",
                    "/var/run/netns/cni-0", rel),
        UpstreamPod("default", "sticky-3", "192.168.0.8", source=pods),
        UpstreamPod("default", "web-0", "192.168.0.5", source=pods),
    ]   # done-2's sandbox exited (upstream's own mark): nothing held for it
    assert state.owners() == {"192.168.0.6": "default/old-1", "192.168.0.5": "default/web-0",
                              "192.168.0.8": "default/sticky-3"}


def test_many_keys_fill_several_leaf_pages_under_a_branch(tmp_path: Path) -> None:
    entries = {f"ns-{i % 7}/pod-{i:05d}": "v" * (100 + i % 50) for i in range(800)}
    path = write_bolt(tmp_path / "many.db", {"buckets": {"many": raw(entries)}})
    bucket = BoltFile.open(path).bucket("many")
    assert bucket is not None
    layout = bucket.page_counts()
    assert layout["branch"] >= 1 and layout["leaf"] >= 10, layout
    got = list(bucket.items())
    assert [k.decode() for k, _ in got] == sorted(entries)
    assert {k.decode(): v.decode() for k, v in got} == entries


@pytest.mark.parametrize("page_size", [4096, 16384])
def test_a_value_larger_than_a_page_is_read_from_its_overflow_pages(
        tmp_path: Path, page_size: int) -> None:
    rng = random.Random(5)
    big = "".join(rng.choice("abcdef0123456789") for _ in range(3 * page_size + 17))
    path = write_bolt(tmp_path / "big.db", {"page_size": page_size, "buckets": {
        "b": raw({"big": big, "small": "x"})}})
    db = BoltFile.open(path)
    assert db.meta.page_size == page_size
    bucket = db.bucket("b")
    assert bucket is not None
    assert dict(bucket.items()) == {b"big": big.encode(), b"small": b"x"}
    assert bucket.page_counts()["overflow"] >= 3


def test_nested_buckets_inline_and_on_their_own_pages(tmp_path: Path) -> None:
    many = {f"k{i:04d}": "w" * 64 for i in range(300)}
    path = write_bolt(tmp_path / "nested.db", {"buckets": {"outer": raw(
        {"a": "1"}, small=raw({"x": "y"}), large=raw(many, deeper=raw({"z": "2"})))}})
    db = BoltFile.open(path)
    outer = db.bucket("outer")
    assert outer is not None
    assert dict(outer.items()) == {b"a": b"1"}              # nested buckets are not values
    assert outer.buckets() == [b"large", b"small"]
    small = db.bucket("outer", "small")
    assert small is not None and dict(small.items()) == {b"x": b"y"}
    assert small.page_counts() == {"branch": 0, "leaf": 0, "overflow": 0}   # inline
    large = db.bucket("outer", "large")
    assert large is not None and len(list(large.items())) == 300
    assert large.page_counts()["leaf"] >= 2
    deeper = db.bucket("outer", "large", "deeper")
    assert deeper is not None and dict(deeper.items()) == {b"z": b"2"}
    assert db.bucket("outer", "missing") is None and db.bucket("nope") is None


def test_deleted_keys_are_gone(tmp_path: Path) -> None:
    entries = {f"p{i:03d}": "v" * 200 for i in range(100)}
    gone = [f"p{i:03d}" for i in range(0, 100, 3)]
    path = write_bolt(tmp_path / "del.db", {"buckets": {"b": raw(entries)},
                                            "deleted": {"b": gone}})
    bucket = BoltFile.open(path).bucket("b")
    assert bucket is not None
    assert sorted(k.decode() for k, _ in bucket.items()) == sorted(set(entries) - set(gone))


def _meta_txid(data: bytes, offset: int) -> int:
    return struct.unpack_from("<Q", data, offset + 16 + 48)[0]


def test_a_torn_meta_page_falls_back_to_the_other(tmp_path: Path) -> None:
    """bbolt writes the two meta pages in turn; a crash mid-write leaves the older one."""
    path = write_bolt(tmp_path / "m.db", {"buckets": {"b": raw({"a": "1", "b": "2"})}})
    data = bytearray(path.read_bytes())
    page = 4096
    newer = 0 if _meta_txid(data, 0) > _meta_txid(data, page) else page
    data[newer + 40] ^= 0xFF                              # inside the meta's checksummed part
    torn = tmp_path / "torn.db"
    torn.write_bytes(bytes(data))
    db = BoltFile.open(torn)
    assert db.meta.txid == _meta_txid(data, page - newer)
    bucket = db.bucket("b")
    assert bucket is not None and dict(bucket.items())      # the older state reads whole


@pytest.mark.parametrize("damage", ["text", "empty", "truncated", "both metas",
                                    "pages overwritten"])
def test_a_corrupt_file_is_refused_with_its_path(tmp_path: Path, damage: str) -> None:
    good = write_bolt(tmp_path / "good.db", {"buckets": {"b": raw(
        {f"k{i:03d}": "v" * 300 for i in range(200)})}})
    data = bytearray(good.read_bytes())
    bad = tmp_path / "bad.db"
    if damage == "text":
        data = bytearray(b"this is not a database\n")
    elif damage == "empty":
        data = bytearray()
    elif damage == "truncated":
        data = data[:len(data) // 8]
    elif damage == "both metas":
        data[40] ^= 1
        data[4096 + 40] ^= 1
    else:
        data[2 * 4096:] = b"\xff" * (len(data) - 2 * 4096)
    bad.write_bytes(bytes(data))
    with pytest.raises(BoltError, match=str(bad)):
        db = BoltFile.open(bad)
        bucket = db.bucket("b")
        assert bucket is not None
        list(bucket.items())


def test_random_damage_gives_a_bolt_error_or_a_reading_never_a_crash(tmp_path: Path) -> None:
    good = write_bolt(tmp_path / "good.db", {"buckets": {"b": raw(
        {f"k{i:03d}": "v" * 300 for i in range(200)}, inner=raw({"x": "y"}))}})
    clean = good.read_bytes()
    rng = random.Random(11)
    bad = tmp_path / "bad.db"
    refused = 0
    for _ in range(300):
        data = bytearray(clean)
        for _ in range(rng.randint(1, 8)):
            at = rng.randrange(2 * 4096, len(data))           # pages past the metas
            data[at] = rng.randrange(256)
        bad.write_bytes(bytes(data))
        try:
            db = BoltFile.open(bad)
            for bucket in (db.bucket("b"), db.bucket("b", "inner")):
                if bucket is not None:
                    list(bucket.items())
                    bucket.page_counts()
        except BoltError as exc:
            assert str(bad) in str(exc)
            refused += 1
    assert refused > 0          # the damage did reach pages the reader walks


def test_a_corrupt_state_file_is_reported_and_the_other_still_read(tmp_path: Path) -> None:
    state_dir = upstream_dir(tmp_path / "up", {}, pods={
        "default/sticky-3": pod_info("default", "sticky-3", "192.168.0.8")})
    (state_dir / "ResRelation.db").write_bytes(b"\0" * 8192)
    state = read_upstream_state(str(state_dir))
    assert [p.key for p in state.pods] == ["default/sticky-3"]
    assert len(state.problems) == 1 and str(state_dir / "ResRelation.db") in state.problems[0]


def test_entries_that_do_not_parse_are_skipped_one_by_one(tmp_path: Path) -> None:
    up = tmp_path / "up"
    up.mkdir()
    write_bolt(up / "ResRelation.db", {"buckets": {"relation": raw({
        "default/a": "{not json",
        "default/b": json.dumps(relation("default", "b", "192.168.0.9")),
        "bad/name/c": json.dumps({"Resources": []}),
        "default/d": "[1, 2]",
    })}})
    state = read_upstream_state(str(up))
    assert [p.key for p in state.pods] == ["default/b"]
    assert len(state.problems) == 3, state.problems
    assert read_upstream_state(str(tmp_path / "absent")).problems == []   # nothing to read


def test_the_go_writer_is_built_from_its_pinned_module() -> None:
    """The pin the files are written with is upstream's (its go.mod: bbolt v1.4.3)."""
    mod = (Path(__file__).resolve().parents[1] / "go" / "boltwriter" / "go.mod").read_text()
    assert "go.etcd.io/bbolt v1.4.3" in mod
