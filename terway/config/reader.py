"""Typed field readers that collect every problem (with its field path) instead of stopping."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from terway.config.errors import did_you_mean
from terway.durations import parse_duration


def _show(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


class FieldReader:
    """Reads fields of one JSON object; problems go to ``errors`` as ``"<prefix>.<key>: <why>"``."""

    def __init__(self, data: Mapping[str, Any], prefix: str) -> None:
        self.data = data
        self.prefix = prefix
        self.errors: list[str] = []
        self.warnings: list[str] = []
        self.seen: set[str] = set()

    def fail(self, key: str, why: str) -> None:
        self.errors.append(f"{self.prefix}.{key}: {why}")

    def warn(self, key: str, why: str) -> None:
        """Accepted, but the user should know how it is read."""
        self.warnings.append(f"{self.prefix}.{key}: {why}")

    def _get(self, key: str) -> Any:
        self.seen.add(key)
        value = self.data.get(key)
        return None if value == "" else value  # upstream treats "" as unset

    def string(self, key: str, default: str = "") -> str:
        value = self._get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got {_show(value)}")
            return default
        return value

    def secret(self, key: str) -> str:
        """A string that must never be shown: a wrong type is named, its value is not."""
        value = self._get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(key, f"must be a string, got a {type(value).__name__} (value not shown)")
            return ""
        return value

    def integer(self, key: str, default: int, minimum: int | None = 0) -> int:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)  # upstream's ConfigMaps sometimes quote numbers
        if isinstance(value, bool) or not isinstance(value, int) or (
            minimum is not None and value < minimum
        ):
            bound = f" >= {minimum}" if minimum is not None else ""
            self.fail(key, f"must be an integer{bound}, got {_show(value)}")
            return default
        return value

    def number(self, key: str, default: float, minimum: float = 0.0) -> float:
        value = self._get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.fail(key, f"must be a number >= {minimum:g}, got {_show(value)}")
            return default
        return float(value)

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self._get(key)
        if value is None:
            return default
        if value not in allowed:
            self.fail(key, f"must be one of {', '.join(allowed)}, got {_show(value)}")
            return default
        return str(value)

    def duration(self, key: str, default: float | None) -> float | None:
        value = self._get(key)
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.fail(key, str(exc))
            return default

    def str_list(self, key: str, max_len: int | None = None) -> tuple[str, ...]:
        value = self._get(key)
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(key, f"must be a list of non-empty strings, got {_show(value)}")
            return ()
        if max_len is not None and len(value) > max_len:
            self.fail(key, f"must have at most {max_len} entries, got {len(value)}")
        return tuple(dict.fromkeys(value))

    def str_map(self, key: str) -> dict[str, str]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self.fail(key, f"must be an object of string to string, got {_show(value)}")
            return {}
        return dict(value)

    def int_map(self, key: str, minimum: int = 0) -> dict[str, int]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be an object of name to integer, got {_show(value)}")
            return {}
        out: dict[str, int] = {}
        for name, num in value.items():
            if isinstance(num, bool) or not isinstance(num, int) or num < minimum:
                self.fail(f"{key}.{name}", f"must be an integer >= {minimum}, got {_show(num)}")
            else:
                out[name] = num
        return out

    def zone_map(self, key: str) -> dict[str, tuple[str, ...]]:
        value = self._get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(key, f"must be an object of zone to vSwitch id list, got {_show(value)}")
            return {}
        out: dict[str, tuple[str, ...]] = {}
        for zone, ids in value.items():
            if not isinstance(ids, list) or not all(isinstance(v, str) and v for v in ids):
                self.fail(f"{key}.{zone}", f"must be a list of vSwitch ids, got {_show(ids)}")
            else:
                out[zone] = tuple(dict.fromkeys(ids))
        return out

    def cidr_list(self, key: str) -> tuple[str, ...]:
        """A CIDR or a comma-separated list of CIDRs (upstream allows "v4,v6")."""
        text = self.string(key)
        if not text:
            return ()
        out = []
        for part in (p.strip() for p in text.split(",")):
            try:
                out.append(str(ipaddress.ip_network(part, strict=False)))
            except ValueError:
                self.fail(key, f"must be a CIDR like \"172.21.0.0/20\", got {_show(part)}")
        return tuple(out)

    def unknown(self, known: set[str]) -> list[str]:
        return [
            f"{self.prefix}.{k}: unknown field, ignored{did_you_mean(k, sorted(known))}"
            for k in self.data if k not in known
        ]

