"""Upstream Terway's pod state on the node: which pod holds which address, read-only.

Upstream's per-node daemon keeps two bbolt files in ``/var/lib/cni/terway`` (facts from its
source, commit 89aadf8b):

- ``ResRelation.db``, bucket ``relation`` (daemon/resource_manager.go, daemon/builder.go): key
  ``<namespace>/<name>``, value upstream's ``PodResources`` as JSON: ``Resources`` (items
  ``{"type": "eniIp"|"eni", "id": "<mac>.<ip>", "eni_id", "eni_mac", "ipv4", "ipv6"}``; old
  versions wrote only ``type`` and ``id``), ``PodInfo`` (``Namespace``, ``Name``, ``PodIPs``
  ``{"IPv4", "IPv6"}``, ``SandboxExited``…), ``NetNs``, ``ContainerID``. Written at every ADD,
  deleted at the pod's DEL: the addresses upstream's pods hold.
- ``pod.db``, bucket ``pods`` (pkg/k8s/k8s.go): key ``<namespace>/<name>``, value
  ``{"Pod": PodInfo}``: pods upstream remembered (sticky ones, all of them in old versions).

A daemon replacing upstream in place reads both before it rebuilds its pool, so no address of a
running pod looks idle (docs/daemon.md, "Migration"). A file that is missing is nothing to read;
one that is corrupt or unknown is reported and ignored (the other sources still apply), and so is
an entry that does not parse. Nothing here writes.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terway.cni import config as cniconf
from terway.daemon.boltdb import BoltError, BoltFile

DEFAULT_DIR = "/var/lib/cni/terway"
RELATION_FILE, RELATION_BUCKET = "ResRelation.db", "relation"
PODS_FILE, PODS_BUCKET = "pod.db", "pods"
RESOURCE_TYPES = ("eniIp", "eni")   # upstream's ResourceTypeENIIP, ResourceTypeENI


@dataclass(frozen=True)
class UpstreamPod:
    """One address upstream gave a pod."""

    namespace: str
    name: str
    ip: str
    eni_mac: str = ""        # lower case; "" when upstream did not say
    eni_id: str = ""
    container_id: str = ""   # the sandbox (CNI_CONTAINERID) of upstream's ADD
    netns: str = ""
    source: str = ""         # the file it came from

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass
class UpstreamState:
    pods: list[UpstreamPod] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)   # files or entries not read, and why

    def owners(self) -> dict[str, str]:
        """{ip: pod key}, first claim wins (ResRelation.db before pod.db)."""
        out: dict[str, str] = {}
        for pod in self.pods:
            out.setdefault(pod.ip, pod.key)
        return out


def state_mark(directory: str) -> str:
    """What upstream's files in ``directory`` are now (name, size, mtime): "" when there are
    none. A daemon reads them once per mark: after that, its own records are the truth (the
    files are never updated once upstream is gone, and a pod released since must not get its
    address back)."""
    marks = []
    for name in (RELATION_FILE, PODS_FILE):
        try:
            st = (Path(directory) / name).stat()
        except OSError:
            continue
        marks.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return ",".join(marks)


def read_upstream_state(directory: str) -> UpstreamState:
    """Every address upstream's files in ``directory`` give a pod (never raises)."""
    state = UpstreamState()
    base = Path(directory)
    for name, bucket, parse in ((RELATION_FILE, RELATION_BUCKET, _from_relation),
                                (PODS_FILE, PODS_BUCKET, _from_pod_info)):
        path = base / name
        entries = _bucket_items(path, bucket, state.problems)
        for key, value in entries:
            where = f"{path}: {bucket}/{key[:120]!r}"
            try:
                doc = json.loads(value)
                if not isinstance(doc, dict):
                    raise ValueError("not a JSON object")
                state.pods += parse(key, doc, str(path))
            except (ValueError, TypeError, KeyError) as exc:
                state.problems.append(f"{where}: entry not read: {exc}")
    return state


def _bucket_items(path: Path, bucket: str, problems: list[str]) -> list[tuple[str, bytes]]:
    if not path.exists():
        return []
    try:
        found = BoltFile.open(path).bucket(bucket)
        items = list(found.items()) if found is not None else []
    except (BoltError, OSError) as exc:
        problems.append(f"{exc}" if isinstance(exc, BoltError) else f"{path}: {exc}")
        return []
    return [(k.decode("utf-8", "replace"), v) for k, v in items]


def _pod_name(key: str, info: Mapping[str, Any] | None) -> tuple[str, str]:
    """Upstream names the pod by its PodInfo (the key is ``PodInfoKey(namespace, name)``); the
    name becomes a store key, so it must be a Kubernetes one."""
    if info and info.get("Namespace") and info.get("Name"):
        namespace, name = str(info["Namespace"]), str(info["Name"])
    else:
        namespace, _, name = key.partition("/")
    if not (cniconf.namespace_ok(namespace) and cniconf.pod_name_ok(name)):
        raise ValueError(f"{namespace[:80]!a}/{name[:80]!a} is not a pod's namespace/name")
    return namespace, name


def _ipv4(text: Any) -> str:
    """``text`` as an IPv4 address, "" when it is none (IPv6: this daemon is IPv4 only)."""
    if not isinstance(text, str) or not text:
        return ""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return ""
    return str(ip) if ip.version == 4 else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _info_ip(info: Mapping[str, Any] | None) -> str:
    """The pod's address per PodInfo (``PodIPs.IPv4``, else ``PodIP``), "" when none."""
    if not info:
        return ""
    ips = info.get("PodIPs")
    return (_ipv4(ips.get("IPv4")) if isinstance(ips, dict) else "") or _ipv4(info.get("PodIP"))


def _resource_ips(items: Any) -> list[tuple[str, str, str]]:
    """(ip, mac, eni id) of upstream's resource items; an old item has only ``id``
    (``<mac>.<ip>``, the address part ``<ipv4>-<ipv6>`` when dual-stack)."""
    out = []
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict) or item.get("type") not in RESOURCE_TYPES:
            continue
        mac = _text(item.get("eni_mac"))
        ip = _ipv4(item.get("ipv4"))
        rid = _text(item.get("id"))
        if not ip and "." in rid:
            id_mac, _, addresses = rid.partition(".")
            ip = _ipv4(addresses.split("-")[0])
            mac = mac or id_mac
        if ip:
            out.append((ip, mac.lower(), _text(item.get("eni_id"))))
    return out


def _exited(info: Mapping[str, Any] | None) -> bool:
    """Upstream's own mark of a pod whose phase was Succeeded or Failed: no sandbox runs."""
    return info is not None and info.get("SandboxExited") is True


def _from_relation(key: str, doc: Mapping[str, Any], source: str) -> list[UpstreamPod]:
    info = doc.get("PodInfo") if isinstance(doc.get("PodInfo"), dict) else None
    namespace, name = _pod_name(key, info)
    if _exited(info):
        return []
    found = _resource_ips(doc.get("Resources"))
    if not found and _info_ip(info):
        found = [(_info_ip(info), "", "")]
    cid = _text(doc.get("ContainerID"))
    return [UpstreamPod(namespace, name, ip, mac, eni,
                        container_id=cid if cniconf.container_id_ok(cid) else "",
                        netns=_text(doc.get("NetNs")), source=source)
            for ip, mac, eni in found]


def _from_pod_info(key: str, doc: Mapping[str, Any], source: str) -> list[UpstreamPod]:
    info = doc.get("Pod") if isinstance(doc.get("Pod"), dict) else None
    namespace, name = _pod_name(key, info)
    ip = _info_ip(info)
    return [] if _exited(info) or not ip else [UpstreamPod(namespace, name, ip, source=source)]
