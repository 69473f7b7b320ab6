"""A core as the simulator sees it, with every method call it makes passed through a wrapper.

Why: ``bench.layers`` times the calls the simulator makes into each node's ``IpamCore`` and
``bench.replay`` records them; both need the same stand-in. The core's calls to itself go to
the core, not through here, so they cost nothing extra.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Wrap = Callable[[str, Callable[..., Any]], Callable[..., Any]]


class CallsThrough:
    """``target``'s attributes; each method as ``wrap(name, method)``, made once per name."""

    def __init__(self, target: Any, wrap: Wrap) -> None:
        self._target = target
        self._wrap = wrap

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if callable(attr):
            attr = self._wrap(name, attr)
            setattr(self, name, attr)              # the next lookup finds it at once
        return attr
