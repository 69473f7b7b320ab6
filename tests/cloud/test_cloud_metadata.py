"""MetadataClient against a local http.server with a canned tree (root and path-prefixed)."""

from __future__ import annotations

import socket

import pytest

from terway.cloud.metadata import MetadataClient, MetadataEni, MetadataError
from tests.cloud.conftest import MAC0, MAC1, MetaServer


def client(srv: MetaServer, **kw: object) -> MetadataClient:
    return MetadataClient(srv.url, timeout=2.0, sleep=lambda s: None, **kw)  # type: ignore[arg-type]


def test_instance_fields(meta_server: MetaServer) -> None:
    md = client(meta_server)
    assert md.region_id() == "cn-hangzhou"
    assert md.zone_id() == "cn-hangzhou-i"
    assert md.instance_id() == "i-node1"
    assert md.instance_type() == "ecs.g6.large"
    assert md.primary_mac() == MAC0
    assert md.macs() == [MAC0, MAC1]
    assert all(h.startswith(meta_server.prefix + "/latest/meta-data/") for h in meta_server.hits)


def test_per_mac_fields(meta_server: MetaServer) -> None:
    md = client(meta_server)
    assert md.eni_id(MAC1) == "eni-2"
    assert md.vswitch_id(MAC1) == "vsw-1"
    assert md.vswitch_cidr(MAC1) == "192.168.1.0/24"
    assert md.gateway(MAC1) == "192.168.1.253"
    assert md.primary_ip(MAC1) == "192.168.1.20"
    assert md.private_ipv4s(MAC1) == ["192.168.1.21", "192.168.1.20"]


def test_eni_puts_primary_first(meta_server: MetaServer) -> None:
    eni = client(meta_server).eni(MAC1)
    assert eni == MetadataEni(MAC1, "eni-2", "vsw-1", "192.168.1.0/24", "192.168.1.253",
                              "192.168.1.20", ("192.168.1.20", "192.168.1.21"))
    assert [e.eni_id for e in client(meta_server).enis()] == ["eni-primary", "eni-2"]


def test_newline_separated_ipv4s_accepted(meta_server: MetaServer) -> None:
    meta_server.tree[f"network/interfaces/macs/{MAC1}/private-ipv4s"] = "10.0.0.1\n10.0.0.2\n"
    assert client(meta_server).private_ipv4s(MAC1) == ["10.0.0.1", "10.0.0.2"]


def test_missing_path_is_404_without_retry(meta_server: MetaServer) -> None:
    with pytest.raises(MetadataError) as info:
        client(meta_server).get("no/such/thing")
    assert info.value.not_found
    assert "no/such/thing" in str(info.value)
    assert len(meta_server.hits) == 1


def test_5xx_is_retried(meta_server: MetaServer) -> None:
    meta_server.fail_next[:] = [500, 503]
    assert client(meta_server, attempts=3).region_id() == "cn-hangzhou"
    assert len(meta_server.hits) == 3


def test_5xx_gives_up_after_attempts(meta_server: MetaServer) -> None:
    meta_server.fail_next[:] = [500, 500, 500]
    with pytest.raises(MetadataError) as info:
        client(meta_server, attempts=2).region_id()
    assert info.value.status == 500
    assert len(meta_server.hits) == 2


def test_bad_json_is_a_clear_error(meta_server: MetaServer) -> None:
    meta_server.tree[f"network/interfaces/macs/{MAC1}/private-ipv4s"] = "[not json"
    with pytest.raises(MetadataError, match=r"private-ipv4s.*not valid JSON"):
        client(meta_server).private_ipv4s(MAC1)


def test_unreachable_service_names_the_url() -> None:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    md = MetadataClient(f"http://127.0.0.1:{port}", timeout=0.5, attempts=2, sleep=lambda s: None)
    with pytest.raises(MetadataError, match=f"unreachable at http://127.0.0.1:{port}"):
        md.region_id()


def test_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError):
        MetadataClient(attempts=0)
