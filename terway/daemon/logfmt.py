"""Logs in upstream's logrus text format: ``time="…" level=warning msg="…" key=value``.

Users grep the terway container log for the seed's line, so the wording and the quoting match
logrus (double quotes around values that need them, ``\\"`` inside). Secrets never reach a record:
the formatter redacts fields whose names look secret as a last line of defence.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_NAMES = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warning",
          logging.ERROR: "error", logging.CRITICAL: "fatal"}
_SECRET_KEY = re.compile(r"secret|token|password|credential", re.IGNORECASE)
_BARE = re.compile(r"^[A-Za-z0-9_.:/@+\-]+$")

LOGGER_NAME = "terwayd"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_control(m: re.Match[str]) -> str:
    ch = m.group(0)
    return _NAMED.get(ch) or f"\\x{ord(ch):02x}"


def quote(value: object) -> str:
    """Render one logfmt value: bare when safe, else double-quoted with escapes like logrus (Go's
    %q): no control character (newline, CR, NUL, ESC …) ever reaches the log raw, so one record
    stays one line and cannot rewrite a terminal."""
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
    """``time="2020-03-17T07:03:40Z" level=warning msg="…"`` then the record's ``fields``.

    The one log format of the project: terwayd, the simulator's daemon log and the emulator's
    front ends all use it."""

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


def parse_level(name: str) -> int:
    """``--log-level`` value → logging level; a clear error naming the flag otherwise."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"--log-level: expected one of {sorted(set(LEVELS))}, got {name!r}") \
            from None


def _install(logger: logging.Logger, level: int, stream: TextIO | None) -> None:
    """One logfmt handler on ``logger`` (replacing ours from an earlier call), no propagation."""
    logger.setLevel(level)
    logger.propagate = False
    for handler in list(logger.handlers):
        if getattr(handler, "_terway_logfmt", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(LogfmtFormatter())
    handler._terway_logfmt = True  # type: ignore[attr-defined]
    logger.addHandler(handler)


def setup(level: int = logging.INFO, stream: TextIO | None = None) -> logging.Logger:
    """Install one logfmt handler on the ``terwayd`` logger (idempotent) and return it."""
    logger = logging.getLogger(LOGGER_NAME)
    _install(logger, level, stream)
    return logger


def setup_library_loggers(level: int, stream: TextIO | None = None) -> None:
    """Route the shared library's loggers (``terway.*``, e.g. the SDK client) through logfmt."""
    _install(logging.getLogger("terway"), level, stream)


def get(name: str = "") -> logging.Logger:
    """A child of the ``terwayd`` logger."""
    return logging.getLogger(f"{LOGGER_NAME}.{name}" if name else LOGGER_NAME)


def fields(**kv: object) -> dict[str, Any]:
    """``extra=`` for a record carrying logfmt fields: ``log.info("x", extra=fields(pod=p))``."""
    return {"fields": kv}
