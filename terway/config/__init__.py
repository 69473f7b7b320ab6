"""Configuration: ``eni_conf``, the mounted ``eni-config`` ConfigMap, per-node merge patches."""

from terway.config.configmap import ConfigMapData, load_configmap_dir, parse_bool
from terway.config.eniconf import (
    EXCLUSIVE_MODE,
    SHARED_MODE,
    EniConf,
    parse_eni_conf,
)
from terway.config.errors import ConfigError
from terway.config.merge import merge_patch
from terway.config.secret import Secret
from terway.durations import parse_duration

__all__ = [
    "EXCLUSIVE_MODE",
    "SHARED_MODE",
    "ConfigError",
    "ConfigMapData",
    "EniConf",
    "Secret",
    "load_configmap_dir",
    "merge_patch",
    "parse_bool",
    "parse_duration",
    "parse_eni_conf",
]
