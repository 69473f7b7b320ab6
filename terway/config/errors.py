"""Configuration errors: every problem found, each naming its field path and why."""

from __future__ import annotations

from collections.abc import Sequence


class ConfigError(ValueError):
    """Invalid configuration; ``problems`` lists every ``"<path>: <why>"`` found, not the first."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("; ".join(self.problems) if self.problems else "invalid configuration")
