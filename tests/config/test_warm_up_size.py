"""``ip_warm_up_size``: upstream's per-node daemon reads it and never uses it (only centralized
IPAM copies it into the Node CR for terway-controlplane), so ours accepts it quietly and the
pool's settings do not change; text is refused as upstream's JSON decoder refuses it."""

from __future__ import annotations

import pytest

from terway.config import ConfigError, parse_eni_conf


def test_accepted_quietly_and_changes_nothing() -> None:
    base = parse_eni_conf({"min_pool_size": 2, "max_pool_size": 5})
    warm = parse_eni_conf({"min_pool_size": 2, "max_pool_size": 5, "ip_warm_up_size": 10})
    assert warm.warnings == () and warm == base


def test_text_is_refused_naming_the_field() -> None:
    with pytest.raises(ConfigError) as err:
        parse_eni_conf({"ip_warm_up_size": "ten"})
    assert list(err.value.problems) == ['eni_conf.ip_warm_up_size: must be an integer, got "ten"']


def test_jitter_factor_below_zero_is_refused() -> None:
    with pytest.raises(ConfigError) as err:
        parse_eni_conf({"ip_pool_sync_jitter_factor": -1})
    assert err.value.problems[0].startswith("eni_conf.ip_pool_sync_jitter_factor:")
