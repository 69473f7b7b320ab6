"""The action registry: every API action, registered once by its resource module's decorator.

``@action("CreateNetworkInterface")`` above a handler ``(cloud, params) -> body`` adds it to
``REGISTRY`` under each product that answers it (ECS by default; the VPC basics are answered by
both, as the 2014-05-26 ECS API is). What ``dispatch`` needs to know of an action besides its
handler is said in the same decorator: ``regionless`` (its request has no required ``RegionId``)
and ``unsupported`` (documented filters that are refused, never silently ignored).
Registering a name twice for one product raises ``DuplicateActionError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from emulator.model import Cloud
from emulator.model.params import Params

Body = dict[str, Any]
Handler = Callable[[Cloud, Params], Body]
ECS, VPC = "ecs", "vpc"
PRODUCTS = (ECS, VPC)


class DuplicateActionError(ValueError):
    """An action name registered twice for the same product."""


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    handler: Handler
    products: tuple[str, ...]
    regionless: bool = False
    unsupported: frozenset[str] = frozenset()


class Registry:
    """Product → action name → ``Action``."""

    def __init__(self) -> None:
        self._products: dict[str, dict[str, Action]] = {p: {} for p in PRODUCTS}

    def register(self, entry: Action) -> None:
        """Add ``entry`` under each of its products; all or nothing."""
        if not entry.products:
            raise ValueError(f"action {entry.name}: no product")
        for product in entry.products:
            table = self._products.get(product)
            if table is None:
                raise ValueError(f"action {entry.name}: unknown product {product!r} "
                                 f"(known: {', '.join(PRODUCTS)})")
            if entry.name in table:
                raise DuplicateActionError(
                    f"action {entry.name} is already registered for {product} "
                    f"(by {table[entry.name].handler.__module__})")
        for product in entry.products:
            self._products[product][entry.name] = entry

    def get(self, product: str, name: str) -> Action | None:
        table = self._products.get(product.lower())
        return table.get(name) if table is not None else None

    def names(self, product: str) -> list[str]:
        return sorted(self._products.get(product.lower(), {}))

    def entries(self) -> list[Action]:
        """Every registered action once (an action answered by two products counts once)."""
        seen: dict[str, Action] = {}
        for table in self._products.values():
            for name, entry in table.items():
                seen.setdefault(name, entry)
        return [seen[name] for name in sorted(seen)]

    def decorator(self, name: str, *, products: Iterable[str] = (ECS,),
                  regionless: bool = False,
                  unsupported: Iterable[str] = ()) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.register(Action(name, handler, tuple(products), regionless,
                                 frozenset(unsupported)))
            return handler
        return register


REGISTRY = Registry()
action = REGISTRY.decorator
