"""RFC 7396 JSON merge patch: how a per-node ConfigMap's eni_conf overrides the base."""

from __future__ import annotations

from typing import Any


def merge_patch(base: Any, patch: Any) -> Any:
    """Return ``base`` with ``patch`` applied (RFC 7396). Neither argument is modified.

    Objects merge key by key, ``null`` deletes a key, anything else (lists included) replaces.
    """
    if not isinstance(patch, dict):
        return patch
    result: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
