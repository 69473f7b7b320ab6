"""Regions and zones the emulated cloud offers, with the ID prefix each region uses."""

from __future__ import annotations

REGIONS: dict[str, tuple[str, ...]] = {
    "cn-hangzhou": ("cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j", "cn-hangzhou-k"),
    "cn-beijing": ("cn-beijing-g", "cn-beijing-h", "cn-beijing-i"),
    "cn-shanghai": ("cn-shanghai-e", "cn-shanghai-f", "cn-shanghai-g"),
    "ap-southeast-1": ("ap-southeast-1a", "ap-southeast-1b", "ap-southeast-1c"),
}

ID_PREFIX: dict[str, str] = {
    "cn-hangzhou": "bp1", "cn-beijing": "2ze", "cn-shanghai": "uf6", "ap-southeast-1": "t4n",
}

LOCAL_NAMES: dict[str, str] = {
    "cn-hangzhou": "China (Hangzhou)", "cn-beijing": "China (Beijing)",
    "cn-shanghai": "China (Shanghai)", "ap-southeast-1": "Singapore",
}
