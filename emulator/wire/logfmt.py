"""Logfmt lines (``time=… level=… msg=… key=value``) like upstream Terway's, for the front ends.

Callers pass fields through ``extra={"kv": {...}}``; nothing here ever formats a secret because
callers only ever hand it ids, codes and timings.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping
from typing import Any

LOGGER_NAME = "emulator"


def _quote(value: object) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\\\n\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    return text


def format_fields(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={_quote(v)}" for k, v in fields.items() if v is not None)


class LogfmtFormatter(logging.Formatter):
    """``time=<RFC3339 UTC> level=<lower> msg=<message>`` then the record's ``kv`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        head: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        kv = getattr(record, "kv", None)
        if isinstance(kv, Mapping):
            head.update(kv)
        if record.exc_info:
            head["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return format_fields(head)


def get_logger(name: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at emit time (pytest swaps it per test)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure(level: str = "info", stream: Any = None) -> None:
    """Send the emulator's logs as logfmt to ``stream`` (default: current stderr); idempotent."""
    root = get_logger()
    for handler in list(root.handlers):
        if getattr(handler, "_emulator_logfmt", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(LogfmtFormatter())
    handler._emulator_logfmt = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
