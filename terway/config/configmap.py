"""The ``eni-config`` ConfigMap as mounted at ``/etc/eni``: one file per key."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terway.config.eniconf import EniConf, parse_eni_conf
from terway.config.errors import ConfigError
from terway.config.merge import merge_patch

ENI_CONF_KEY = "eni_conf"
CNI_CONF_KEY = "10-terway.conf"
DISABLE_POLICY_KEY = "disable_network_policy"


@dataclass(frozen=True)
class ConfigMapData:
    """What the daemon needs from the ConfigMap. ``cni_conf`` is the raw 10-terway.conf object
    (the CNI plugin parses it itself, with the standard library only)."""

    eni_conf: EniConf
    cni_conf: Mapping[str, Any] | None = None
    disable_network_policy: bool = False
    warnings: tuple[str, ...] = field(default=(), compare=False)


def parse_bool(text: str, path: str) -> bool:
    """Kubernetes-style boolean strings ("true"/"false", any case); empty is false."""
    value = text.strip().lower()
    if value in ("", "false", "0", "no"):
        return False
    if value in ("true", "1", "yes"):
        return True
    raise ConfigError([f'{path}: must be "true" or "false", got "{text.strip()}"'])


def load_configmap_dir(
    path: str | Path, node_patch: str | bytes | Mapping[str, Any] | None = None
) -> ConfigMapData:
    """Read ``eni_conf`` (required), ``10-terway.conf`` and ``disable_network_policy``.

    ``node_patch`` is the ``eni_conf`` of the node's own ConfigMap (node label ``terway-config``),
    applied over the base as an RFC 7396 merge patch before validation.
    """
    root = Path(path)
    errors: list[str] = []
    base = _read_json(root / ENI_CONF_KEY, ENI_CONF_KEY, errors, required=True)
    patch = _decode_patch(node_patch, errors)
    cni = _read_json(root / CNI_CONF_KEY, CNI_CONF_KEY, errors, required=False)
    disable = False
    policy_file = root / DISABLE_POLICY_KEY
    if policy_file.exists():
        try:
            disable = parse_bool(policy_file.read_text(), DISABLE_POLICY_KEY)
        except ConfigError as exc:
            errors.extend(exc.problems)
    conf: EniConf | None = None
    if base is not None:
        try:
            conf = parse_eni_conf(merge_patch(base, patch) if patch is not None else base)
        except ConfigError as exc:
            errors.extend(exc.problems)
    if errors or conf is None:
        raise ConfigError(errors)
    return ConfigMapData(conf, cni, disable, conf.warnings)


def _read_json(
    file: Path, key: str, errors: list[str], *, required: bool
) -> dict[str, Any] | None:
    if not file.exists():
        if required:
            errors.append(f"{key}: missing (expected file {file})")
        return None
    try:
        data = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        errors.append(f"{key}: not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        errors.append(f"{key}: must be a JSON object, got {type(data).__name__}")
        return None
    return data


def _decode_patch(
    patch: str | bytes | Mapping[str, Any] | None, errors: list[str]
) -> dict[str, Any] | None:
    if patch is None:
        return None
    if isinstance(patch, Mapping):
        return dict(patch)
    try:
        data = json.loads(patch)
    except ValueError as exc:
        errors.append(f"node eni_conf: not valid JSON ({exc})")
        return None
    if not isinstance(data, dict):
        errors.append(f"node eni_conf: must be a JSON object, got {type(data).__name__}")
        return None
    return data
