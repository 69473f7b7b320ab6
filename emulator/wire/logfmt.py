"""The emulator's loggers, in the project's one logfmt format (upstream's logrus text format).

Callers pass fields through ``extra={"fields": {...}}``; they only ever hand over ids, codes and
timings, and the formatter redacts secret-looking keys as a last line of defence.

The formatter is the emulator's own copy of ``terway.daemon.logfmt``'s (the emulator imports
nothing from terway); tests/emulator/test_standalone.py checks both write the same lines.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any

__all__ = ["LogfmtFormatter", "configure", "format_fields", "get_logger", "quote"]

LOGGER_NAME = "emulator"
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
          logging.ERROR: "error", logging.CRITICAL: "fatal"}
_SECRET_KEY = re.compile(r"secret|token|password|credential", re.IGNORECASE)
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+\-]+$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_control(m: re.Match[str]) -> str:
    ch = m.group(0)
    return _NAMED.get(ch) or f"\\x{ord(ch):02x}"


def quote(value: object) -> str:
    """One logfmt value: bare when safe, else double-quoted with Go %q-like escapes (no control
    character reaches the log raw: one record stays one line)."""
    text = str(value)
    if text and _BARE.fullmatch(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(_escape_control, escaped) + '"'


def format_fields(fields: Mapping[str, Any]) -> str:
    """``k=v`` pairs; None values are left out, secret-looking keys redacted."""
    return " ".join(
        f"{key}={quote('[redacted]' if _SECRET_KEY.search(key) else value)}"
        for key, value in fields.items()
        if value is not None
    )


class LogfmtFormatter(logging.Formatter):
    """``time="2020-03-17T07:03:40Z" level=warning msg="…"`` then the record's ``fields``."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created))
        level = _NAMES.get(record.levelno, record.levelname.lower())
        parts = [f'time="{stamp}"', f"level={level}", f"msg={quote(record.getMessage())}"]
        fields: Mapping[str, Any] = getattr(record, "fields", None) or {}
        if fields:
            parts.append(format_fields(fields))
        if record.exc_info and record.levelno >= logging.ERROR:
            parts.append(f"error={quote(self.formatException(record.exc_info))}")
        return " ".join(parts)


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
