"""The emulator's loggers, in the project's one logfmt format (``terway.daemon.logfmt``).

Callers pass fields through ``extra={"fields": {...}}``; they only ever hand over ids, codes and
timings, and the formatter redacts secret-looking keys as a last line of defence.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from terway.daemon.logfmt import LogfmtFormatter, format_fields

__all__ = ["configure", "format_fields", "get_logger"]

LOGGER_NAME = "emulator"


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
