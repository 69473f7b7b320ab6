"""The guest builder's pure parts: module ordering, the cpio writer, result parsing (no qemu)."""

from __future__ import annotations

from tests.vm import guest

DEP = """kernel/fs/netfs/netfs.ko:
kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko
kernel/net/9p/9pnet.ko:
kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko
kernel/drivers/net/ipvlan/ipvlan.ko:
kernel/drivers/net/ipvlan/ipvtap.ko: kernel/drivers/net/ipvlan/ipvlan.ko kernel/drivers/net/tap.ko
"""


def test_load_order_puts_every_dependency_first_once() -> None:
    order = guest.load_order(["9p", "ipvtap", "ipvlan", "not_here"], DEP)
    assert order.index("kernel/fs/netfs/netfs.ko") < order.index("kernel/fs/fscache/fscache.ko")
    assert order.index("kernel/fs/fscache/fscache.ko") < order.index("kernel/fs/9p/9p.ko")
    assert order.index("kernel/net/9p/9pnet.ko") < order.index("kernel/fs/9p/9p.ko")
    assert order.index("kernel/drivers/net/tap.ko") < order.index(
        "kernel/drivers/net/ipvlan/ipvtap.ko")
    assert len(order) == len(set(order)) == 7


def test_module_name_strips_compression_and_dashes() -> None:
    assert guest.module_name("kernel/a/sch-tbf.ko.xz") == "sch_tbf"
    assert guest.module_name("kernel/a/veth.ko") == "veth"


def parse_cpio(data: bytes) -> dict[str, tuple[int, bytes]]:
    out: dict[str, tuple[int, bytes]] = {}
    pos = 0
    while True:
        assert data[pos:pos + 6] == b"070701"
        fields = [int(data[pos + 6 + 8 * i: pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name = data[pos + 110: pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos: pos + size]
        pos += size + (-size % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (mode, body)


def test_cpio_holds_dirs_files_and_console() -> None:
    archive = guest.Cpio()
    archive.file("lib/modules/x.ko", b"abc")
    archive.file("init", b"#!/bin/sh\n", 0o755)
    archive.chardev("dev/console", 5, 1)
    entries = parse_cpio(archive.finish())
    assert entries["lib/modules/x.ko"] == (0o100644, b"abc")
    assert entries["init"][0] == 0o100755
    assert entries["lib"][0] == entries["lib/modules"][0] == 0o040755
    assert entries["dev/console"][0] == 0o020600


def test_init_reports_the_nonce_marker_on_every_path() -> None:
    script = guest.init_script("cafe01", ["/usr/bin/python3", "-m", "pytest", "a b"], "/repo")
    assert script.count("TERWAY-VM-RESULT cafe01 rc=") == 2  # normal exit and die()
    assert "'a b'" in script and "cd /repo" in script
    assert "TERWAY_IN_VM=1" in script


def result(console: str, rc: int | None, timed_out: bool = False) -> guest.GuestResult:
    return guest.GuestResult(rc, console, 1.0, "6.1", "tcg", timed_out)


def test_summary_and_failures_come_from_the_console() -> None:
    ok = result("boot\n......\n6 passed in 97.60s (0:01:37)\nTERWAY-VM-RESULT n rc=0", 0)
    assert ok.pytest_summary() == "6 passed in 97.60s (0:01:37)"
    assert list(guest.iter_failures(ok)) == []
    lost = result("boot\n", None, timed_out=True)
    assert list(guest.iter_failures(lost)) == ["guest timed out", "no result marker on the console"]
    assert list(guest.iter_failures(result("1 failed", 1))) == ["guest pytest exit code 1"]
