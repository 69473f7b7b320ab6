"""Instance metadata (``http://100.100.100.200/latest/meta-data/``) over the standard library.

Standard library only (urllib) so anything may import it cheaply. Short timeouts, a few retries
on network errors and 5xx, none on 404 (a missing path is an answer, not a failure).
The base URL may carry a path prefix: the emulator serves one instance's metadata under
``http://HOST:PORT/instances/<instance-id>``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_BASE_URL = "http://100.100.100.200"
_PREFIX = "/latest/meta-data/"


class MetadataError(Exception):
    """A metadata lookup failed: ``path`` asked, ``status`` the HTTP status (0 = none)."""

    def __init__(self, path: str, reason: str, status: int = 0) -> None:
        self.path = path
        self.status = status
        self.reason = reason
        super().__init__(f"instance metadata {path!r}: {reason}")

    @property
    def not_found(self) -> bool:
        return self.status == 404


@dataclass(frozen=True)
class MetadataEni:
    """What metadata says about one attached ENI."""

    mac: str
    eni_id: str
    vswitch_id: str
    vswitch_cidr: str
    gateway: str
    primary_ip: str
    private_ipv4s: tuple[str, ...]


class MetadataClient:
    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        *,
        timeout: float = 1.0,
        attempts: int = 3,
        retry_pause: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        observe: Callable[[str, float, bool], None] | None = None,
    ) -> None:
        """``observe(url, ms, failed)`` is told of every request (aliyun_metadata_latency)."""
        if attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {attempts}")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self.retry_pause = retry_pause
        self._sleep = sleep
        self.observe = observe

    def __repr__(self) -> str:
        return f"MetadataClient(base_url={self.base_url!r})"

    # -- raw access ---------------------------------------------------------------------------

    def get(self, path: str) -> str:
        """The text at ``/latest/meta-data/<path>``, stripped."""
        url = self.base_url + _PREFIX + path.lstrip("/")
        last: MetadataError | None = None
        for attempt in range(self.attempts):
            if attempt:
                self._sleep(self.retry_pause * attempt)
            start = time.monotonic()
            try:
                with urllib.request.urlopen(url, timeout=self.timeout) as resp:
                    body: bytes = resp.read()
                self._observed(url, start, False)
                return body.decode("utf-8").strip()
            except urllib.error.HTTPError as e:
                self._observed(url, start, True)
                last = MetadataError(path, f"HTTP {e.code} {e.reason}", e.code)
                if e.code < 500:
                    raise last from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                self._observed(url, start, True)
                reason = getattr(e, "reason", e)
                last = MetadataError(path, f"unreachable at {self.base_url}: {reason}")
        assert last is not None
        raise last

    def _observed(self, url: str, start: float, failed: bool) -> None:
        if self.observe is not None:
            self.observe(url, (time.monotonic() - start) * 1000, failed)

    def get_lines(self, path: str) -> list[str]:
        """A directory-style listing: one entry per line, trailing ``/`` removed."""
        return [ln.strip().rstrip("/") for ln in self.get(path).splitlines() if ln.strip()]

    def get_json(self, path: str) -> Any:
        text = self.get(path)
        try:
            return json.loads(text)
        except ValueError:
            raise MetadataError(path, "response is not valid JSON") from None

    # -- instance -----------------------------------------------------------------------------

    def region_id(self) -> str:
        return self.get("region-id")

    def zone_id(self) -> str:
        return self.get("zone-id")

    def instance_id(self) -> str:
        return self.get("instance-id")

    def instance_type(self) -> str:
        return self.get("instance/instance-type")

    def primary_mac(self) -> str:
        return self.get("mac")

    def macs(self) -> list[str]:
        return self.get_lines("network/interfaces/macs/")

    # -- per ENI ------------------------------------------------------------------------------

    def _mac_path(self, mac: str, leaf: str) -> str:
        return f"network/interfaces/macs/{mac}/{leaf}"

    def eni_id(self, mac: str) -> str:
        return self.get(self._mac_path(mac, "network-interface-id"))

    def vswitch_id(self, mac: str) -> str:
        return self.get(self._mac_path(mac, "vswitch-id"))

    def vswitch_cidr(self, mac: str) -> str:
        return self.get(self._mac_path(mac, "vswitch-cidr-block"))

    def gateway(self, mac: str) -> str:
        return self.get(self._mac_path(mac, "gateway"))

    def primary_ip(self, mac: str) -> str:
        return self.get(self._mac_path(mac, "primary-ip-address"))

    def private_ipv4s(self, mac: str) -> list[str]:
        """Private IPv4s of the ENI (a JSON list upstream; one per line also accepted)."""
        path = self._mac_path(mac, "private-ipv4s")
        text = self.get(path)
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                raise MetadataError(path, "response is not valid JSON") from None
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise MetadataError(path, "expected a JSON list of addresses")
            return value
        return [ln.strip() for ln in text.splitlines() if ln.strip()]

    def eni(self, mac: str) -> MetadataEni:
        ips = self.private_ipv4s(mac)
        primary = self.primary_ip(mac)
        ordered = [primary, *(ip for ip in ips if ip != primary)] if primary in ips else ips
        return MetadataEni(
            mac=mac,
            eni_id=self.eni_id(mac),
            vswitch_id=self.vswitch_id(mac),
            vswitch_cidr=self.vswitch_cidr(mac),
            gateway=self.gateway(mac),
            primary_ip=primary,
            private_ipv4s=tuple(ordered),
        )

    def enis(self) -> list[MetadataEni]:
        return [self.eni(mac) for mac in self.macs()]

    # -- RAM role -----------------------------------------------------------------------------

    def ram_roles(self) -> list[str]:
        return self.get_lines("ram/security-credentials/")

    def ram_role_credentials(self, role: str) -> dict[str, Any]:
        """The raw STS document for ``role``. Holds secrets: never log it."""
        path = f"ram/security-credentials/{role}"
        doc = self.get_json(path)
        if not isinstance(doc, dict):
            raise MetadataError(path, "expected a JSON object")
        code = doc.get("Code", "Success")
        if code != "Success":
            raise MetadataError(path, f"credentials not ready (Code={code!s:.40})")
        return doc
