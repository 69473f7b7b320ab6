"""API actions → model calls: flat SDK query parameters in, response body dicts out.

``dispatch(cloud, "ecs" | "vpc", action, params)`` is what every front end calls (the HTTP server,
the ``responses`` mock). Parameter names and response shapes follow the official Python SDK
(alibabacloud_ecs20140526 / alibabacloud_vpc20160428): what its request models flatten and what
its response models' ``from_map`` read. Errors are ``ApiError`` with ``request_id`` set.

One module per resource (``vpc``, ``vswitch``, ``region``, ``security_group``, ``instance``,
``eni``) registers its actions with ``@action("Name", ...)`` into ``registry.REGISTRY``; this
package imports them all, so ``import emulator.actions`` registers every action exactly once.

Regions are real: an action that takes ``RegionId`` requires it (MissingParameter), runs inside
``cloud.in_region(RegionId)`` (another region's resources are NotFound and absent from lists)
and creates there. A documented filter is evaluated or refused (UnsupportedParameter), never
ignored: an ignored filter would answer everything.
"""

from __future__ import annotations

from collections.abc import Mapping

from emulator.model import ApiError, Cloud, codes
from emulator.model.params import Params
from emulator.model.regions import REGIONS

from . import eni, instance, region, security_group, vpc, vswitch  # noqa: F401  (registration)
from .common import ACCOUNT_ID
from .registry import REGISTRY, Action, Body, DuplicateActionError, Handler, Registry, action

__all__ = [
    "ACCOUNT_ID",
    "NOT_FOUND_MESSAGE",
    "REGIONLESS",
    "REGISTRY",
    "Action",
    "Body",
    "DuplicateActionError",
    "Handler",
    "Registry",
    "action",
    "actions",
    "dispatch",
]

NOT_FOUND_MESSAGE = codes.ACTION_NOT_FOUND.template
# The only actions whose request has no required RegionId (the SDK models: DescribeRegions takes
# it optionally, DescribeInstanceTypes and DeleteInstance have none); each says so in its
# ``@action(..., regionless=True)``.
REGIONLESS = frozenset(a.name for a in REGISTRY.entries() if a.regionless)


def dispatch(cloud: Cloud, product: str, action: str, params: Mapping[str, str]) -> Body:
    """Run one API action; returns the response body (with ``RequestId``) or raises ApiError."""
    request_id = cloud.new_request_id()
    try:
        entry = REGISTRY.get(product, action)
        if entry is None:
            raise codes.ACTION_NOT_FOUND()
        p = Params(params)
        region_id = p.get("RegionId")
        if region_id and region_id not in REGIONS:
            raise codes.REGION_NOT_FOUND()
        if not region_id and not entry.regionless:
            raise codes.missing("RegionId")
        _refuse_unsupported(entry, p)
        with cloud.in_region(region_id or None):
            body = entry.handler(cloud, p)
    except ApiError as err:
        err.request_id = request_id
        raise
    return {"RequestId": request_id, **body}


def actions(product: str) -> list[str]:
    """The actions a product answers (for docs and the server's introspection)."""
    return REGISTRY.names(product)


def _refuse_unsupported(entry: Action, p: Params) -> None:
    """A documented filter the emulator does not evaluate is refused, never silently ignored."""
    refused = entry.unsupported
    if not refused:
        return
    for key, value in p.raw.items():
        name = key.split(".", 1)[0]
        if name in refused and value not in ("", "false", "False"):
            raise codes.UNSUPPORTED_PARAMETER(param=name)
