"""eni_conf parsing: defaults, every field, table-driven errors, secrets, merge patch, ConfigMap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from terway.cloud.api import InstanceTypeLimits
from terway.config import (
    ConfigError,
    Secret,
    load_configmap_dir,
    merge_patch,
    parse_duration,
    parse_eni_conf,
)
from terway.limits import compute_capacity, max_enis

SEED_CONF = {
    "version": "1",
    "max_pool_size": 5,
    "min_pool_size": 0,
    "credential_path": "/var/addon/token-config",
    "vswitches": {"cn-hangzhou-k": ["vsw-AAA", "vsw-BBB"]},
    "eni_tags": {"team": "a"},
    "service_cidr": "172.21.0.0/20",
    "security_group": "sg-1",
    "vswitch_selection_policy": "ordered",
}


def test_seed_conf_parses_with_defaults() -> None:
    c = parse_eni_conf(json.dumps(SEED_CONF))
    assert c.vswitches_for_zone("cn-hangzhou-k") == ("vsw-AAA", "vsw-BBB")
    assert c.vswitches_for_zone("other") == ()
    assert c.max_pool_size == 5 and c.min_pool_size == 0
    assert c.vswitch_selection_policy == "ordered"
    assert c.eni_selection_policy == "most_ips"
    assert c.ip_pool_sync_period == 120.0 and c.ip_batch_window == 0.3
    assert c.all_security_groups == ("sg-1",)
    assert c.warnings == ()


def test_every_upstream_field() -> None:
    c = parse_eni_conf({
        **SEED_CONF, "access_key": "AK", "access_secret": "very-secret",
        "security_groups": ["sg-2", "sg-1"], "min_eni": 1, "max_eni": 3,
        "eni_cap_ratio": 0.5, "eni_cap_shift": -1, "eni_selection_policy": "least_ips",
        "ip_stack": "ipv4", "idle_ip_reclaim_after": "30m", "idle_ip_reclaim_interval": "1m",
        "idle_ip_reclaim_batch_size": 3, "rate_limit": {"AssignPrivateIpAddresses": 100},
        "backoff_override": {"eni_ops": {"duration": "2s", "factor": 1.5, "steps": 3}},
        "ipam_type": "default", "ip_pool_sync_period": "90s",
    })
    assert c.idle_ip_reclaim_after == 1800.0 and c.idle_ip_reclaim_interval == 60.0
    assert c.rate_limit == {"AssignPrivateIpAddresses": 100}
    assert c.backoff_override["eni_ops"].initial == 2.0
    assert c.backoff_override["eni_ops"].steps == 3
    assert c.all_security_groups == ("sg-2", "sg-1")
    assert c.eni_cap_shift == -1 and c.ip_pool_sync_period == 90.0


def test_secret_never_in_repr_or_errors() -> None:
    c = parse_eni_conf({"access_secret": "very-secret"})
    assert "very-secret" not in repr(c) and "very-secret" not in str(c)
    assert c.access_secret.reveal() == "very-secret"
    assert repr(Secret("x")) == "Secret('***')"
    with pytest.raises(ConfigError) as exc:
        parse_eni_conf({"access_secret": "very-secret", "max_pool_size": -1})
    assert "very-secret" not in str(exc.value)


@pytest.mark.parametrize("bad", [["very-secret"], {"k": "very-secret"}, 31337, 3.5, True])
def test_a_mistyped_secret_is_named_but_never_shown(bad: object) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_eni_conf({"access_secret": bad})
    text = str(exc.value)
    assert "eni_conf.access_secret: must be a string" in text
    assert "very-secret" not in text and "31337" not in text and "3.5" not in text


def test_unknown_keys_are_warnings() -> None:
    c = parse_eni_conf({"max_pool_size": 1, "frobnicate": True})
    assert c.warnings == ("eni_conf.frobnicate: unknown field, ignored",)


def test_upstream_switches_for_missing_features_are_accepted_off_and_refused_on() -> None:
    """Issue 10: they were 'unknown field, ignored' - a trunking node silently without it."""
    off = parse_eni_conf({"enable_eni_trunking": False, "enable_erdma": False,
                          "enable_ip_prefix": False, "ip_stack": "ipv4", "ipam_type": "default"})
    assert off.warnings == ()
    with pytest.raises(ConfigError) as exc:
        parse_eni_conf({"enable_eni_trunking": True, "enable_erdma": True,
                        "enable_ip_prefix": True, "ip_stack": "dual", "ipam_type": "crd"})
    text = str(exc.value)
    for key in ("enable_eni_trunking", "enable_erdma", "enable_ip_prefix", "ip_stack",
                "ipam_type"):
        assert f"eni_conf.{key}: " in text and "not available in terway-py yet" in text, key


@pytest.mark.parametrize(("value", "meaning", "warned"), [
    ("ordered", "ordered", False), ("random", "random", False),
    ("most", "ordered", False),      # upstream's controller: most free addresses first
    ("best", "random", True),        # upstream's per-node daemon: anything else is random
])
def test_upstream_vswitch_policies_start_and_mean_the_same(value: str, meaning: str,
                                                           warned: bool) -> None:
    """Issue 10: "most" (and any value upstream reads as random) made terwayd exit 2."""
    c = parse_eni_conf({"vswitch_selection_policy": value})
    assert c.vswitch_selection_policy == meaning
    assert any("vswitch_selection_policy" in w for w in c.warnings) is warned


BAD: list[tuple[dict[str, Any], str]] = [
    ({"max_pool_size": "abc"}, 'eni_conf.max_pool_size: must be an integer >= 0, got "abc"'),
    ({"min_pool_size": -2}, "eni_conf.min_pool_size: must be an integer >= 0, got -2"),
    ({"max_eni": 1.5}, "eni_conf.max_eni: must be an integer >= 0, got 1.5"),
    ({"vswitches": ["vsw-1"]}, "eni_conf.vswitches: must be an object of zone"),
    ({"vswitches": {"z": "vsw-1"}}, "eni_conf.vswitches.z: must be a list of vSwitch ids"),
    ({"vswitch_selection_policy": 3}, "eni_conf.vswitch_selection_policy: must be a string"),
    ({"eni_tag_block_list": [{"key": "a"}]}, "eni_conf.eni_tag_block_list: must be a list of"),
    ({"eni_tag_filter": {"a": 1}}, "eni_conf.eni_tag_filter: must be an object of string"),
    ({"eni_selection_policy": "x"}, "eni_conf.eni_selection_policy: must be one of most_ips"),
    ({"ip_stack": "v4"}, "eni_conf.ip_stack: must be one of ipv4, dual, ipv6"),
    ({"security_groups": [f"sg-{i}" for i in range(11)]},
     "eni_conf.security_groups: must have at most 10 entries, got 11"),
    ({"security_groups": [f"sg-{i}" for i in range(10)], "security_group": "sg-x"},
     "eni_conf.security_groups: security_group plus security_groups must name at most 10"),
    ({"eni_tags": {"a": 1}}, "eni_conf.eni_tags: must be an object of string to string"),
    ({"service_cidr": "172.21.0.0/40"}, "eni_conf.service_cidr: must be a CIDR"),
    ({"idle_ip_reclaim_after": "30 minutes"},
     'eni_conf.idle_ip_reclaim_after: must be a duration like "30s" or "5m"'),
    ({"ip_pool_sync_period": -1}, "eni_conf.ip_pool_sync_period: must be >= 0"),
    ({"rate_limit": {"CreateNetworkInterface": 0}},
     "eni_conf.rate_limit.CreateNetworkInterface: must be an integer >= 1, got 0"),
    ({"backoff_override": {"x": {"duration": "1s", "steps": 0}}},
     "eni_conf.backoff_override.x.steps: must be an integer >= 1"),
    ({"backoff_override": {"x": {"bogus": 1}}}, "eni_conf.backoff_override.x.bogus: unknown"),
    ({"backoff_override": {"x": {"Steps": 3}}},
     "eni_conf.backoff_override.x: duration (the first pause) is required"),
    ({"backoff_override": {"x": {"Duration": "soon"}}}, "eni_conf.backoff_override.x.Duration"),
    ({"eni_cap_ratio": "2"}, "eni_conf.eni_cap_ratio: must be a number >= 0"),
    ({"min_eni": 3, "max_eni": 2}, "eni_conf.min_eni: must be <= max_eni (2), got 3"),
    ({"ipam_type": "magic"}, "eni_conf.ipam_type: must be one of"),
    ({"daemon_mode": "VPC"}, "eni_conf.daemon_mode: must be one of ENIMultiIP, ENIOnly"),
    ({"pool_policy": "aws", "pool_policy_params": {"pre_allocate": 1}},
     "eni_conf.pool_policy_params.pre_allocate: not a parameter of pool_policy 'aws'"),
    ({"version": 1}, "eni_conf.version: must be a string, got 1"),
]


@pytest.mark.parametrize(("conf", "expected"), BAD, ids=[b[1].split(":")[0] for b in BAD])
def test_invalid_values_name_the_field(conf: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_eni_conf(conf)
    assert any(p.startswith(expected) for p in exc.value.problems), exc.value.problems


def test_all_errors_are_collected() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_eni_conf({"max_pool_size": "x", "min_pool_size": "y", "ip_stack": "z"})
    assert len(exc.value.problems) == 3


@pytest.mark.parametrize("text", ["{", "[1]", '"x"'])
def test_not_a_json_object(text: str) -> None:
    with pytest.raises(ConfigError, match="eni_conf: "):
        parse_eni_conf(text)


def test_quoted_numbers_and_empty_strings_are_accepted_like_upstream() -> None:
    c = parse_eni_conf({"max_pool_size": "5", "min_pool_size": "", "vswitches": ""})
    assert c.max_pool_size == 5 and c.min_pool_size == 0 and dict(c.vswitches) == {}


@pytest.mark.parametrize(("text", "seconds"), [
    ("300ms", 0.3), ("30m", 1800.0), ("1h30m", 5400.0), ("120s", 120.0), (5, 5.0), ("0", 0.0),
    ("1.5s", 1.5),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "m", "5x", "1h 2m", True, None, -1])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_merge_patch_rfc7396() -> None:
    base = {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}
    assert merge_patch(base, {"b": {"c": None, "e": 4}, "l": [9], "a": None}) == {
        "b": {"d": 3, "e": 4}, "l": [9]}
    assert base == {"a": 1, "b": {"c": 2, "d": 3}, "l": [1, 2]}  # not modified
    assert merge_patch(base, [1]) == [1]
    assert merge_patch(1, {"x": 1}) == {"x": 1}


def _write_cm(root: Path, **files: str) -> Path:
    for name, text in files.items():
        (root / name).write_text(text)
    return root


def test_load_configmap_dir(tmp_path: Path) -> None:
    root = _write_cm(tmp_path, eni_conf=json.dumps(SEED_CONF),
                     disable_network_policy="true",
                     **{"10-terway.conf": '{"cniVersion":"0.3.0","name":"terway","type":"terway"}'})
    data = load_configmap_dir(root)
    assert data.disable_network_policy is True
    assert data.cni_conf == {"cniVersion": "0.3.0", "name": "terway", "type": "terway"}
    assert data.eni_conf.max_pool_size == 5


def test_load_configmap_dir_with_node_patch(tmp_path: Path) -> None:
    root = _write_cm(tmp_path, eni_conf=json.dumps(SEED_CONF))
    patch = {"vswitches": {"cn-hangzhou-k": ["vsw-NEW"]}, "max_pool_size": None}
    data = load_configmap_dir(root, node_patch=json.dumps(patch))
    assert data.eni_conf.vswitches_for_zone("cn-hangzhou-k") == ("vsw-NEW",)
    assert data.eni_conf.max_pool_size == 0
    assert data.disable_network_policy is False and data.cni_conf is None


def test_load_configmap_dir_collects_errors(tmp_path: Path) -> None:
    root = _write_cm(tmp_path, eni_conf='{"max_pool_size": "abc"}',
                     disable_network_policy="maybe", **{"10-terway.conf": "{"})
    with pytest.raises(ConfigError) as exc:
        load_configmap_dir(root)
    text = " | ".join(exc.value.problems)
    assert "eni_conf.max_pool_size" in text
    assert "disable_network_policy" in text and "10-terway.conf" in text


def test_load_configmap_dir_missing_eni_conf(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="eni_conf: missing"):
        load_configmap_dir(tmp_path)


# ---------------------------------------------------------------- limits

G6_LARGE = InstanceTypeLimits("ecs.g6.large", 2, 6)
G6_XLARGE = InstanceTypeLimits("ecs.g6.xlarge", 3, 10)


def test_capacity_defaults_match_the_guide() -> None:
    cap = compute_capacity(G6_XLARGE, parse_eni_conf({}))
    assert cap.max_enis == 2
    assert cap.capacity == 20 == cap.max_pods_shared
    assert cap.max_pods_exclusive == 2


def test_cap_ratio_shift_and_max_eni() -> None:
    assert max_enis(G6_XLARGE, parse_eni_conf({"eni_cap_ratio": 2})) == 5
    assert max_enis(G6_XLARGE, parse_eni_conf({"eni_cap_shift": -1})) == 1
    assert max_enis(G6_XLARGE, parse_eni_conf({"eni_cap_ratio": 2, "max_eni": 3})) == 3
    assert max_enis(G6_LARGE, parse_eni_conf({"eni_cap_shift": -5})) == 0
    cap = compute_capacity(G6_XLARGE, parse_eni_conf({"eni_cap_ratio": 2}))
    assert cap.capacity == 50 and cap.max_pods_shared == 20  # upstream vs the guide


def test_pool_sizes_are_capped() -> None:
    cap = compute_capacity(G6_LARGE, parse_eni_conf({"max_pool_size": 100, "min_pool_size": 50}))
    assert (cap.capacity, cap.max_pool_size, cap.min_pool_size) == (6, 6, 6)
    c = parse_eni_conf({"max_pool_size": 2, "min_pool_size": 4})
    assert any("min_pool_size" in w for w in c.warnings)
    assert compute_capacity(G6_LARGE, c).min_pool_size == 2


def test_exclusive_capacity_counts_enis() -> None:
    cap = compute_capacity(G6_XLARGE, parse_eni_conf({"daemon_mode": "ENIOnly",
                                                      "max_pool_size": 5}))
    assert cap.capacity == 2 and cap.max_pool_size == 2


def test_backoff_override_in_upstreams_form_means_the_same_and_is_applied() -> None:
    """Issue 10: upstream's form (Go field names, nanoseconds) was refused, and ours was parsed
    but never reached the cloud client."""
    from terway.cloud.retry import ENI_OPS, Backoff, retry_policies

    c = parse_eni_conf({"backoff_override": {
        "eni_ip_ops": {"Duration": 1_000_000_000, "Factor": 1.5, "Jitter": 0.1, "Steps": 4},
        "eni_create": {"duration": "3s", "steps": 2},
        "CreateNetworkInterface": {"initial": 7, "steps": 3},
        "wait_podeni_status": {"Duration": 1, "Steps": 1}}})
    assert c.backoff_override["eni_ip_ops"] == Backoff(1.0, 1.5, 4, jitter=0.1)
    assert c.warnings == ("eni_conf.backoff_override.wait_podeni_status: not used by terway-py "
                          "(it retries '', 'eni_ops', 'eni_create', 'eni_release', 'eni_ip_ops' "
                          "or an API name)",)
    policies = retry_policies(c.backoff_override)
    assert policies["AssignPrivateIpAddresses"] == Backoff(1.0, 1.5, 4, jitter=0.1)
    assert policies["CreateNetworkInterface"] == Backoff(7.0, 1.0, 3)   # the API name wins
    assert policies["AttachNetworkInterface"] == ENI_OPS               # untouched


# upstream's Helm chart (charts/terway/templates/configmap.yaml) with its default values
UPSTREAM_CHART_CONF = {
    "version": "1", "max_pool_size": 5, "min_pool_size": 0, "enable_eni_trunking": False,
    "access_key": "", "access_secret": "", "vswitches": {"cn-hangzhou-k": ["vsw-1"]},
    "service_cidr": "172.21.0.0/20", "security_groups": ["sg-1"], "ip_stack": "ipv4",
    "vswitch_selection_policy": "ordered",
}
# the seeds' (vswitch-expansion blog's) eni_conf
SEEDS_CONF = {
    "version": "1", "max_pool_size": 80, "min_pool_size": 20,
    "credential_path": "/var/addon/token-config",
    "vswitches": {"cn-shanghai-f": ["vsw-AAA", "vsw-BBB"]},
    "eni_tags": {"ack.aliyun.com": "xxxxxxxxx"}, "service_cidr": "172.16.0.0/16",
    "security_group": "sg-xxxxxxx", "vswitch_selection_policy": "ordered",
}


@pytest.mark.parametrize("conf", [UPSTREAM_CHART_CONF, SEEDS_CONF], ids=["chart", "seeds"])
def test_upstream_chart_defaults_and_the_seeds_start_without_a_warning(
        conf: dict[str, Any]) -> None:
    """Issue 10 acceptance: no warning except for features documented as unavailable."""
    assert parse_eni_conf(conf).warnings == ()


def test_keys_upstream_reads_but_never_uses_are_accepted_quietly() -> None:
    c = parse_eni_conf({"region_id": "cn-hangzhou", "prefix": "terway",
                        "extra_routes": [{"dst": "192.168.0.0/16"}], "ipv4_prefix_count": 0})
    assert c.warnings == ()
    with pytest.raises(ConfigError, match=r"eni_conf\.ipv4_prefix_count: 4: IP prefix"):
        parse_eni_conf({"ipv4_prefix_count": 4})


def test_disable_device_plugin_defaults_off_as_upstream_and_takes_booleans() -> None:
    """Off by default: an ENIOnly node serves aliyun/eni (terway/daemon/deviceplugin.py)."""
    assert parse_eni_conf({}).disable_device_plugin is False
    for value, want in ((True, True), (False, False), ("true", True), ("", False)):
        c = parse_eni_conf({"disable_device_plugin": value})
        assert (c.disable_device_plugin, c.warnings) == (want, ()), value
    with pytest.raises(ConfigError, match=r"eni_conf\.disable_device_plugin: must be true or "
                       r"false, got 1"):
        parse_eni_conf({"disable_device_plugin": 1})


def test_enable_patch_pod_ips_defaults_on_as_upstream_and_takes_booleans() -> None:
    assert parse_eni_conf({}).enable_patch_pod_ips is True
    for value, want in ((False, False), (True, True), ("false", False), ("", True)):
        c = parse_eni_conf({"enable_patch_pod_ips": value})
        assert (c.enable_patch_pod_ips, c.warnings) == (want, ()), value
    with pytest.raises(ConfigError, match=r"eni_conf\.enable_patch_pod_ips: must be true or "
                       r"false, got 'no'"):
        parse_eni_conf({"enable_patch_pod_ips": "no"})
