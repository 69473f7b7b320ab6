"""After any failure the node holds nothing the store does not know (issue 9, item 2).

A failed ADD is rolled back (unwired, record gone, address back to the pool); what a crash or a
failure leaves undone (a ``wiring`` record, a release whose unwiring failed, an address the pool
holds for a pod without a record) is finished by GC and restart. A full disk is answered at once
with the store's error and makes the daemon not ready until it can write again.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from terway.daemon.ports import PodAttachment
from terway.daemon.service import RELEASING, WIRING
from terway.daemon.store import ERR_STORE, PodRecord, Store, StoreError
from terway.rpc import messages as rpc
from tests.daemon.daemon_harness import FakeDatapath, World, run, running_daemon


class FlakyDatapath(FakeDatapath):
    """``fail_teardown`` makes teardowns raise (a netlink error, say)."""

    def __init__(self) -> None:
        super().__init__()
        self.fail_teardown = False

    def teardown(self, net: PodAttachment) -> None:
        if self.fail_teardown:
            raise RuntimeError("netlink said no")
        super().teardown(net)


def fail_final_commit(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store accepts the ``wiring`` record, then fails the completed one (ENOSPC)."""
    real = store.put_pod

    def put_pod(rec: PodRecord) -> None:
        if not rec.extra.get(WIRING):
            raise StoreError("state store: database or disk is full")
        real(rec)

    monkeypatch.setattr(store, "put_pod", put_pod)


def test_a_failed_commit_after_setup_is_rolled_back(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build()) as d:
            fail_final_commit(d.daemon.store, monkeypatch)
            with pytest.raises(rpc.RpcError) as err:
                await d.alloc("web-0")
            assert err.value.code == ERR_STORE
            assert [n.pod_key for n in d.datapath.setups] == ["default/web-0"]
            assert [n.pod_key for n in d.datapath.teardowns] == ["default/web-0"]
            assert d.daemon.store.get_pod("default/web-0") is None
            assert d.daemon.core.allocation("default/web-0") is None
            assert "default/web-0" not in d.daemon.core.owner_keys()

    run(scenario())


def test_a_failed_setup_leaves_no_record_and_no_address(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build()) as d:
            d.datapath.fail_setup = "File exists"
            with pytest.raises(rpc.RpcError, match="datapath setup failed"):
                await d.alloc("web-0")
            assert d.daemon.store.pods() == []
            assert d.daemon.core.owner_keys() == []

    run(scenario())


def test_a_wiring_record_left_by_a_crash_is_rolled_back_at_start(tmp_path: Path) -> None:
    world = World.build()

    async def first() -> str:
        async with running_daemon(tmp_path, world) as d:
            info = await d.alloc("web-0")
            # what a kill -9 between the datapath setup and the final commit leaves
            rec = d.daemon.store.get_pod("default/web-0")
            assert rec is not None
            d.daemon.store.put_pod(replace(rec, extra={**rec.extra, WIRING: "1"}))
            return info.pod_ip

    async def second(ip: str) -> None:
        dp = FakeDatapath()
        async with running_daemon(tmp_path, world, datapath=dp) as d:
            assert [n.net.pod_ip for n in dp.teardowns] == [ip]
            assert dp.setups == [], "a half-wired pod was re-wired instead of rolled back"
            assert d.daemon.store.pods() == []
            assert d.daemon.core.owner_keys() == []

    run(second(run(first())))


def test_gc_with_no_valid_attachment_frees_an_address_without_record(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build()) as d:
            await d.alloc("web-0")
            d.daemon.store.delete_pod("default/web-0")  # an address no record holds
            reply = await asyncio.to_thread(d.client().gc, ())
            assert reply.released == ()
            assert d.daemon.core.owner_keys() == []

    run(scenario())


def test_failed_unwiring_keeps_the_address_until_gc_finishes_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        dp = FlakyDatapath()
        async with running_daemon(tmp_path, World.build(), datapath=dp) as d:
            info = await d.alloc("web-0")
            dp.fail_teardown = True
            assert (await d.release("web-0")).released
            rec = d.daemon.store.get_pod("default/web-0")
            assert rec is not None and rec.extra.get(RELEASING)
            assert d.daemon.core.allocation("default/web-0") is not None, \
                "the address went back to the pool while its interface may still exist"
            dp.fail_teardown = False
            await d.daemon.gc()
            assert d.daemon.store.pods() == []
            assert d.daemon.core.owner_keys() == []
            assert [n.net.pod_ip for n in dp.teardowns] == [info.pod_ip]

    run(scenario())


def test_a_wiring_record_is_never_answered_as_a_pod(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build()) as d:
            await d.alloc("web-0")
            rec = d.daemon.store.get_pod("default/web-0")
            assert rec is not None
            d.daemon.store.put_pod(replace(rec, extra={**rec.extra, WIRING: "1"}))
            req = rpc.GetIPInfoRequest("web-0", "default", rec.container_id, "eth0")
            with pytest.raises(rpc.RpcError) as err:
                await asyncio.to_thread(d.client().get_ip_info, req)
            assert err.value.code == rpc.ERR_UNKNOWN_CONTAINER

    run(scenario())


@pytest.mark.parametrize("cid", ["cid\udcff", "", "a/b", "-x", "x" * 1025])
def test_a_bad_container_id_is_refused_before_anything(tmp_path: Path, cid: str) -> None:
    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build()) as d:
            req = d.alloc_req("web-0")._replace(container_id=cid)
            with pytest.raises(rpc.RpcError) as err:
                await asyncio.to_thread(d.client().alloc_ip, req)
            assert err.value.code == rpc.ERR_INVALID_REQUEST
            assert d.daemon.store.pods() == [] and d.daemon.core.owner_keys() == []
            assert d.datapath.setups == []

    run(scenario())


# -- a full disk, for real: the state dir on a 16 MiB tmpfs ---------------------------------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path: Path) -> None:
    """Write zeros until the file system says ENOSPC."""
    try:
        with open(path, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass


@pytest.mark.privileged
def test_a_full_disk_is_answered_at_once_and_reported_by_status(tmp_path: Path,
                                                                small_fs: Path) -> None:
    def state_on_small_fs(tmp: Path) -> None:
        (tmp / "state").symlink_to(small_fs)

    async def scenario() -> None:
        async with running_daemon(tmp_path, World.build(), prepare=state_on_small_fs,
                                  alloc_timeout=3600.0, scale=1.0) as d:
            client = d.client(timeout=30.0)
            assert (await asyncio.to_thread(client.status)).ready
            fill(small_fs / "filler")
            with pytest.raises(rpc.RpcError) as err:   # the pool is empty: a cloud call
                await d.alloc("web-0")                   # whose intent cannot be written
            assert err.value.code in (ERR_STORE, "TerwayStoreUnavailable"), err.value
            assert "disk is full" in err.value.message
            status = await asyncio.to_thread(client.status)
            assert not status.ready and "state store not writable" in status.message
            assert d.datapath.setups == []

            (small_fs / "filler").unlink()
            assert (await asyncio.to_thread(client.status)).ready
            info = await d.alloc("web-1")
            assert info.pod_ip

    run(scenario())

