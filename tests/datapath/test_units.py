"""Pure functions of the datapath: names, tables, tc parameters (no root needed)."""

from __future__ import annotations

import hashlib

import pytest

from terway.datapath import eni_table, host_veth_name, tbf_burst, tbf_limit
from terway.datapath.naming import parked_eni_name


def test_host_veth_name_is_cali_plus_sha1_prefix() -> None:
    expect = "cali" + hashlib.sha1(b"default.nginx-0").hexdigest()[:11]
    assert host_veth_name("default", "nginx-0") == expect
    assert len(expect) == 15  # IFNAMSIZ - 1


def test_host_veth_name_separates_namespace_and_name() -> None:
    assert host_veth_name("ns1", "pod") != host_veth_name("ns2", "pod")


def test_eni_table() -> None:
    assert eni_table(3) == 1003


def test_parked_name_fits_ifnamsiz() -> None:
    name = parked_eni_name("02:AA:00:00:01:02")
    assert name == "eni02aa00000102"
    assert len(name) <= 15


@pytest.mark.parametrize(
    ("rate_bps", "mtu", "burst"),
    [
        (10_000_000, 1500, 3000),  # 1 ms at 10 Mbit/s = 1250 B < mtu + 1500
        (1_000_000_000, 1500, 125_000),  # 1 ms at 1 Gbit/s = 125 kB
        (1_000_000_000, 9000, 125_000),
        (100_000_000, 9000, 12_500),
    ],
)
def test_tbf_burst_bytes(rate_bps: int, mtu: int, burst: int) -> None:
    assert tbf_burst(rate_bps, mtu) == burst


def test_tbf_limit_holds_25ms_plus_burst() -> None:
    assert tbf_limit(8_000_000, 1500) == 25_000 + 3000
