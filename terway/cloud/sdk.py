"""``SdkCloud``: the ``CloudAPI`` over the official ECS and VPC Python SDKs (sync clients).

Every call goes: rate-limit bucket → SDK → classify failure → retry THROTTLED/TRANSIENT with the
action's backoff. The SDK is imported lazily (about 0.9 s) so importing this module is cheap;
the CNI plugin must never import it at all.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from terway.cloud import retry as backoffs
from terway.cloud.api import Eni, InstanceTypeLimits, VSwitch
from terway.cloud.bodies import (
    assigned_ips_from_wire,
    eni_from_wire,
    enis_from_page,
    instance_types_from_wire,
    vswitches_from_wire,
)
from terway.cloud.credentials import CredentialError, CredentialProvider
from terway.cloud.errors import CloudError, ErrorClass
from terway.cloud.ratelimit import RateLimits
from terway.cloud.retry import (
    DEFAULT_POLICIES,
    Backoff,
    OnRetry,
    call_with_retry,
)
from terway.cloud.sdk_errors import to_cloud_error

log = logging.getLogger(__name__)
ERR_CREDENTIALS = "TerwayCredentialsInvalid"  # our credential source failed before any call
T = TypeVar("T")

OnCall = Callable[[str, float, str], None]
"""Metrics hook, once per attempt: (API name, seconds, error code or "" on success)."""




MAX_IDS_PER_DESCRIBE = 100


def split_endpoint(endpoint: str) -> tuple[str, str]:
    """``http://127.0.0.1:18080`` → (``127.0.0.1:18080``, ``http``); a bare host → https."""
    if "://" not in endpoint:
        return endpoint.rstrip("/"), "https"
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"endpoint: expected http(s)://host[:port] or a host, got {endpoint!r}")
    if parts.path not in ("", "/"):
        raise ValueError(f"endpoint: a path is not supported, got {endpoint!r}")
    return parts.netloc, parts.scheme


@dataclass(frozen=True)
class SdkConfig:
    region_id: str
    endpoint: str = ""          # ECS; "" = the SDK's regional endpoint
    vpc_endpoint: str = ""      # VPC; "" = same as ``endpoint`` if set, else regional
    connect_timeout_ms: int = 5_000
    read_timeout_ms: int = 10_000
    page_size: int = 100

    def __post_init__(self) -> None:
        if not self.region_id:
            raise ValueError("region_id: required")
        for name in ("endpoint", "vpc_endpoint"):
            value = getattr(self, name)
            if value:
                split_endpoint(value)
        if not 1 <= self.page_size <= 100:
            raise ValueError(f"page_size: expected 1..100, got {self.page_size}")


class _SdkCredential:
    """Adapts a ``CredentialProvider`` to what tea-openapi asks of ``Config.credential``,
    so refreshed credentials are picked up on the next request."""

    def __init__(self, provider: CredentialProvider) -> None:
        self._provider = provider

    def __repr__(self) -> str:
        return f"_SdkCredential({self._provider!r})"

    def get_credential(self) -> Any:
        from alibabacloud_credentials.models import CredentialModel

        c = self._provider.get()
        return CredentialModel(
            access_key_id=c.access_key_id,
            access_key_secret=c.access_key_secret.reveal(),
            security_token=c.security_token.reveal() if c.security_token else None,
            type=c.kind,
        )

    def get_access_key_id(self) -> str:
        return self._provider.get().access_key_id

    def get_access_key_secret(self) -> str:
        return self._provider.get().access_key_secret.reveal()

    def get_security_token(self) -> str:
        tok = self._provider.get().security_token
        return tok.reveal() if tok else ""

    def get_type(self) -> str:
        return self._provider.get().kind


class SdkCloud:
    """The daemon's cloud client: official SDK, client-side limits, retries, metrics."""

    def __init__(
        self,
        config: SdkConfig,
        credentials: CredentialProvider,
        *,
        limits: RateLimits | None = None,
        policies: Mapping[str, Backoff] | None = None,
        on_call: OnCall | None = None,
        on_retry: Callable[[str, int, CloudError, float], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._credentials = credentials
        self.limits = limits if limits is not None else RateLimits(now=clock())
        self.policies: dict[str, Backoff] = dict(DEFAULT_POLICIES)
        if policies is not None:
            self.policies.update(policies)
        self._on_call = on_call
        self._on_retry = on_retry
        self._sleep = sleep
        self._clock = clock
        self._rng = rng if rng is not None else random.Random(0)
        self._ecs_client: Any = None
        self._vpc_client: Any = None

    def __repr__(self) -> str:
        return f"SdkCloud(region_id={self.config.region_id!r}, endpoint={self.config.endpoint!r})"

    # -- plumbing -----------------------------------------------------------------------------

    def _sdk_config(self, endpoint: str) -> Any:
        from alibabacloud_tea_openapi.utils_models import Config

        cfg = Config(
            region_id=self.config.region_id,
            credential=_SdkCredential(self._credentials),
            connect_timeout=self.config.connect_timeout_ms,
            read_timeout=self.config.read_timeout_ms,
        )
        if endpoint:
            cfg.endpoint, cfg.protocol = split_endpoint(endpoint)
        return cfg

    def _ecs(self) -> Any:
        if self._ecs_client is None:
            from alibabacloud_ecs20140526.client import Client

            self._ecs_client = Client(self._sdk_config(self.config.endpoint))
        return self._ecs_client

    def _vpc(self) -> Any:
        if self._vpc_client is None:
            from alibabacloud_vpc20160428.client import Client

            self._vpc_client = Client(
                self._sdk_config(self.config.vpc_endpoint or self.config.endpoint))
        return self._vpc_client

    def _policy(self, api: str) -> Backoff:
        return self.policies.get(api) or self.policies.get("") or backoffs.NO_RETRY

    def _attempt(self, api: str, fn: Callable[[], T]) -> T:
        start = self._clock()
        try:
            self._credentials.get()  # a bad token file is ours to name; the SDK would wrap it
        except CredentialError as exc:
            self._record(api, start, ERR_CREDENTIALS)
            raise CloudError(ERR_CREDENTIALS, str(exc), error_class=ErrorClass.AUTH) from None
        try:
            result = fn()
        except Exception as exc:
            err = to_cloud_error(exc)
            self._record(api, start, err.code if err else type(exc).__name__)
            if err is None:
                raise
            if not err.retryable:
                log.warning("%s failed: %s", api, err.describe())
            raise err from None
        self._record(api, start, "")
        return result

    def _record(self, api: str, start: float, error: str) -> None:
        if self._on_call is not None:
            self._on_call(api, self._clock() - start, error)

    def _call(self, api: str, fn: Callable[[], T]) -> T:
        def retried(attempt: int, err: CloudError, pause: float) -> None:
            log.info("%s attempt %d failed (%s, request %s); retrying in %.1fs",
                     api, attempt, err.code, err.request_id, pause)
            if self._on_retry is not None:
                self._on_retry(api, attempt, err, pause)

        on_retry: OnRetry = retried
        try:
            return call_with_retry(
                lambda: self._attempt(api, fn), self._policy(api),
                sleep=self._sleep, now=self._clock, limiter=self.limits.bucket(api),
                on_retry=on_retry, rng=self._rng,
            )
        except CloudError as err:
            if err.retryable:
                log.warning("%s gave up after retries: %s", api, err.describe())
            raise

    def _ecs_map(self, api: str, method: str, request: Any) -> dict[str, Any]:
        def go() -> dict[str, Any]:
            resp = getattr(self._ecs(), method)(request)
            body: dict[str, Any] = resp.body.to_map() if resp.body is not None else {}
            return body

        return self._call(api, go)

    # -- CloudAPI -----------------------------------------------------------------------------

    def describe_instance_type(self, instance_type: str) -> InstanceTypeLimits:
        from alibabacloud_ecs20140526 import models as m

        if not instance_type:
            raise ValueError("instance_type: required")
        body = self._ecs_map("DescribeInstanceTypes", "describe_instance_types",
                             m.DescribeInstanceTypesRequest(instance_types=[instance_type]))
        for limits in instance_types_from_wire(body):
            if limits.instance_type == instance_type:
                return limits
        raise CloudError("InvalidInstanceType.NotFound",
                         f"instance type {instance_type!r} is not known to DescribeInstanceTypes",
                         request_id=str(body.get("RequestId", "")),
                         error_class=ErrorClass.NOT_FOUND)

    def describe_vswitches(self, vswitch_ids: Sequence[str]) -> list[VSwitch]:
        """One call per id (the API filters by a single VSwitchId); unknown ids are left out."""
        from alibabacloud_vpc20160428 import models as m

        out: list[VSwitch] = []
        for vsw in dict.fromkeys(vswitch_ids):
            req = m.DescribeVSwitchesRequest(region_id=self.config.region_id, v_switch_id=vsw)

            def go(req: Any = req) -> dict[str, Any]:
                body: dict[str, Any] = self._vpc().describe_vswitches(req).body.to_map()
                return body

            out.extend(v for v in vswitches_from_wire(self._call("DescribeVSwitches", go))
                       if v.vswitch_id == vsw)
        return out

    def create_network_interface(
        self,
        *,
        vswitch_id: str,
        security_group_ids: Sequence[str],
        secondary_ip_count: int,
        tags: Mapping[str, str],
        client_token: str,
        description: str = "",
        resource_group_id: str = "",
    ) -> Eni:
        from alibabacloud_ecs20140526 import models as m

        if not client_token:
            raise ValueError("client_token: required (derive it from the daemon's intent)")
        if not vswitch_id:
            raise ValueError("vswitch_id: required")
        if secondary_ip_count < 0:
            raise ValueError(f"secondary_ip_count: must be >= 0, got {secondary_ip_count}")
        req = m.CreateNetworkInterfaceRequest(
            region_id=self.config.region_id,
            v_switch_id=vswitch_id,
            security_group_ids=list(security_group_ids) or None,
            secondary_private_ip_address_count=secondary_ip_count or None,
            tag=[m.CreateNetworkInterfaceRequestTag(key=k, value=v) for k, v in tags.items()]
            or None,
            client_token=client_token,
            description=description or None,
            resource_group_id=resource_group_id or None,
        )
        body = self._ecs_map("CreateNetworkInterface", "create_network_interface", req)
        return eni_from_wire(body)

    def attach_network_interface(self, eni_id: str, instance_id: str) -> None:
        from alibabacloud_ecs20140526 import models as m

        self._ecs_map("AttachNetworkInterface", "attach_network_interface",
                      m.AttachNetworkInterfaceRequest(region_id=self.config.region_id,
                                                      network_interface_id=eni_id,
                                                      instance_id=instance_id))

    def detach_network_interface(self, eni_id: str, instance_id: str) -> None:
        from alibabacloud_ecs20140526 import models as m

        self._ecs_map("DetachNetworkInterface", "detach_network_interface",
                      m.DetachNetworkInterfaceRequest(region_id=self.config.region_id,
                                                      network_interface_id=eni_id,
                                                      instance_id=instance_id))

    def delete_network_interface(self, eni_id: str) -> None:
        from alibabacloud_ecs20140526 import models as m

        self._ecs_map("DeleteNetworkInterface", "delete_network_interface",
                      m.DeleteNetworkInterfaceRequest(region_id=self.config.region_id,
                                                      network_interface_id=eni_id))

    def describe_network_interfaces(
        self,
        *,
        instance_id: str | None = None,
        eni_ids: Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        vswitch_id: str | None = None,
        status: str | None = None,
    ) -> list[Eni]:
        """All matching ENIs across pages (ids in chunks of 100, as the API allows)."""
        if eni_ids is not None and not eni_ids:
            return []
        chunks: list[list[str] | None] = [None]
        if eni_ids:
            ids = list(dict.fromkeys(eni_ids))
            chunks = [ids[i:i + MAX_IDS_PER_DESCRIBE]
                      for i in range(0, len(ids), MAX_IDS_PER_DESCRIBE)]
        seen: dict[str, Eni] = {}
        for chunk in chunks:
            for eni in self._describe_pages(instance_id, chunk, tags, vswitch_id, status):
                seen.setdefault(eni.eni_id, eni)
        return list(seen.values())

    def _describe_pages(
        self,
        instance_id: str | None,
        eni_ids: list[str] | None,
        tags: Mapping[str, str] | None,
        vswitch_id: str | None,
        status: str | None,
    ) -> list[Eni]:
        """Follow NextToken; fall back to PageNumber when a server only reports TotalCount."""
        from alibabacloud_ecs20140526 import models as m

        size = self.config.page_size
        out: list[Eni] = []
        token: str | None = None
        page_number: int | None = None
        tokens_seen: set[str] = set()
        while True:
            req = m.DescribeNetworkInterfacesRequest(
                region_id=self.config.region_id,
                instance_id=instance_id or None,
                network_interface_id=eni_ids or None,
                tag=[m.DescribeNetworkInterfacesRequestTag(key=k, value=v)
                     for k, v in (tags or {}).items()] or None,
                v_switch_id=vswitch_id or None,
                status=status or None,
            )
            if page_number is None:
                req.max_results, req.next_token = size, token
            else:
                req.page_number, req.page_size = page_number, size
            body = self._ecs_map("DescribeNetworkInterfaces", "describe_network_interfaces", req)
            page = enis_from_page(body)
            out.extend(page)
            next_token = str(body.get("NextToken") or "")
            total = int(body.get("TotalCount") or 0)
            if next_token and next_token not in tokens_seen:
                tokens_seen.add(next_token)
                token = next_token
            elif not next_token and page and total > len(out):
                page_number = (page_number or 1) + 1
            else:
                return out

    def assign_private_ips(self, eni_id: str, count: int) -> list[str]:
        from alibabacloud_ecs20140526 import models as m

        if count < 1:
            raise ValueError(f"count: must be >= 1, got {count}")
        body = self._ecs_map(
            "AssignPrivateIpAddresses", "assign_private_ip_addresses",
            m.AssignPrivateIpAddressesRequest(region_id=self.config.region_id,
                                              network_interface_id=eni_id,
                                              secondary_private_ip_address_count=count))
        return assigned_ips_from_wire(body)

    def unassign_private_ips(self, eni_id: str, ips: Sequence[str]) -> None:
        from alibabacloud_ecs20140526 import models as m

        if not ips:
            raise ValueError("ips: at least one address required")
        self._ecs_map(
            "UnassignPrivateIpAddresses", "unassign_private_ip_addresses",
            m.UnassignPrivateIpAddressesRequest(region_id=self.config.region_id,
                                                network_interface_id=eni_id,
                                                private_ip_address=list(ips)))
