"""Reading flat query parameters exactly as the official SDK flattens them.

Lists travel as ``Name.1``, ``Name.2``…; tags as ``Tag.1.Key``/``Tag.1.Value``; some list
parameters (DescribeInstances ``InstanceIds``, DescribeSecurityGroups ``SecurityGroupIds``) are a
JSON array in one string; booleans as ``True``/``False``. Bad values raise InvalidParameter naming
the parameter.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from . import codes

# Names may hold digits (``Ipv6Address.1``).
_INDEXED = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)\.(?P<n>\d+)(?:\.(?P<field>[A-Za-z]+))?$")


class Params:
    def __init__(self, raw: Mapping[str, str]) -> None:
        self.raw = {str(k): str(v) for k, v in raw.items()}

    def __contains__(self, name: str) -> bool:
        return name in self.raw

    def get(self, name: str, default: str = "") -> str:
        return self.raw.get(name, default)

    def required(self, name: str) -> str:
        value = self.raw.get(name, "")
        if not value:
            raise codes.missing(name)
        return value

    def integer(self, name: str, default: int, low: int | None = None,
            high: int | None = None) -> int:
        text = self.raw.get(name)
        if text is None or text == "":
            return default
        try:
            value = int(text)
        except ValueError:
            raise codes.invalid(name, f"{text!r} is not an integer") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise codes.invalid(name, f"{value} is not within [{low}, {high}]")
        return value

    def boolean(self, name: str, default: bool = False) -> bool:
        text = self.raw.get(name)
        if text is None or text == "":
            return default
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise codes.invalid(name, f"{text!r} is not a boolean")

    def items(self, name: str) -> list[str]:
        """``Name.1``, ``Name.2``… in index order (gaps allowed, empty values dropped)."""
        found: list[tuple[int, str]] = []
        for key, value in self.raw.items():
            match = _INDEXED.match(key)
            if match and match["name"] == name and match["field"] is None and value:
                found.append((int(match["n"]), value))
        return [v for _, v in sorted(found)]

    def json_items(self, name: str) -> list[str]:
        """A JSON array carried in one parameter (``InstanceIds='["i-1","i-2"]'``)."""
        text = self.raw.get(name, "")
        if not text:
            return []
        try:
            value = json.loads(text)
        except ValueError:
            raise codes.invalid(name, "not a JSON array") from None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise codes.invalid(name, "not a JSON array of strings")
        return value

    def tags(self, name: str = "Tag") -> dict[str, str]:
        """``Tag.N.Key`` / ``Tag.N.Value`` pairs; a value without a key is refused."""
        keys: dict[int, str] = {}
        values: dict[int, str] = {}
        for key, value in self.raw.items():
            match = _INDEXED.match(key)
            if not match or match["name"] != name or match["field"] is None:
                continue
            target = keys if match["field"] == "Key" else values
            target[int(match["n"])] = value
        for n in values:
            if n not in keys:
                raise codes.missing(f"{name}.{n}.Key")
        return {keys[n]: values.get(n, "") for n in sorted(keys)}
