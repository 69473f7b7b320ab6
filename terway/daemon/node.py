"""What the daemon knows about its node and its configuration, resolved once at start.

Config comes either from one ``eni_conf`` file (``--config``, upstream ``/etc/eni/eni.json``) or
from the mounted ConfigMap directory (``--configmap-dir``, one file per key). Either way every
problem is reported at once with its field path (``terway.config.ConfigError``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from terway.cloud.api import CloudAPI, InstanceTypeLimits
from terway.cloud.bodies import instance_types_from_wire
from terway.cloud.metadata import MetadataClient
from terway.config import ConfigError, EniConf, load_configmap_dir, merge_patch, parse_eni_conf
from terway.daemon import logfmt
from terway.datapath import modes
from terway.ipam.settings import IpamSettings, NodeIdentity
from terway.limits import NodeCapacity, compute_capacity

log = logfmt.get("node")

CNI_CONF_NAME = "10-terway.conf"


@dataclass(frozen=True)
class LoadedConfig:
    eni_conf: EniConf
    cni_conf: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    files: tuple[str, ...] = ()      # what to watch for changes

    @property
    def datapath(self) -> str:
        """The mode's name (terway/datapath/modes.py), from daemon_mode and 10-terway.conf's
        eniip_virtual_type."""
        virtual_type = self.cni_conf.get("eniip_virtual_type", "Veth")
        return modes.from_config(self.eni_conf.exclusive, virtual_type).name

    @property
    def mtu(self) -> int:
        mtu = self.cni_conf.get("mtu", 1500)
        return mtu if isinstance(mtu, int) and not isinstance(mtu, bool) and mtu > 0 else 1500

    @property
    def disable_host_peer(self) -> bool:
        return self.cni_conf.get("disable_host_peer") is True

    @property
    def service_cidr(self) -> str:
        return self.eni_conf.service_cidr.split(",")[0].strip()


def load_config(config_file: str | None, configmap_dir: str | None, *,
                node_patch_file: str = "",
                node_patch: Mapping[str, Any] | None = None) -> LoadedConfig:
    """Read and validate the config; raise ``ConfigError`` listing every problem.

    The node's own overlay (upstream: the ConfigMap named by the node label ``terway-config``)
    is an RFC 7396 merge patch of ``eni_conf``: from ``node_patch_file`` when given (it is then
    watched like the base), else ``node_patch`` (fetched from Kubernetes by the caller).
    """
    patch = load_node_patch(node_patch_file) if node_patch_file else node_patch
    watched = (node_patch_file,) if node_patch_file else ()
    if configmap_dir:
        root = Path(configmap_dir)
        data = load_configmap_dir(root, patch)
        files = tuple(str(root / k) for k in ("eni_conf", CNI_CONF_NAME)) + watched
        return LoadedConfig(data.eni_conf, dict(data.cni_conf or {}), str(root / "eni_conf"),
                            files)
    path = Path(config_file or "/etc/eni/eni.json")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError([f"--config: cannot read {path}: {exc.strerror or exc}"]) from None
    conf = parse_eni_conf(_patched(text, patch) if patch is not None else text)
    cni_path = path.parent / CNI_CONF_NAME
    cni: dict[str, Any] = {}
    if cni_path.exists():
        try:
            loaded = json.loads(cni_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{CNI_CONF_NAME}: not valid JSON ({exc})"]) from None
        if not isinstance(loaded, dict):
            raise ConfigError([f"{CNI_CONF_NAME}: must be a JSON object"])
        cni = loaded
    return LoadedConfig(conf, cni, str(path), (str(path), str(cni_path), *watched))


def load_node_patch(path: str) -> dict[str, Any]:
    """The per-node eni_conf merge patch (a JSON object) from a file."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError([f"--node-config-patch: cannot read {path}: "
                           f"{exc.strerror or exc}"]) from None
    except ValueError as exc:
        raise ConfigError([f"--node-config-patch: {path} is not valid JSON ({exc})"]) from None
    if not isinstance(data, dict):
        raise ConfigError([f"--node-config-patch: {path} must hold a JSON object "
                           f"(an eni_conf merge patch), got {type(data).__name__}"])
    return data


def _patched(text: str, patch: Mapping[str, Any]) -> str | dict[str, Any]:
    """``text`` (the base eni_conf) with the patch applied; unparsable text is returned as is
    so ``parse_eni_conf`` reports it the usual way."""
    try:
        base = json.loads(text)
    except ValueError:
        return text
    if not isinstance(base, dict):
        return text
    merged: dict[str, Any] = merge_patch(base, dict(patch))
    return merged


def redacted_json(conf: EniConf) -> str:
    """eni_conf as JSON for ``terway-cli config``: secrets replaced, derived fields dropped."""
    raw = dataclasses.asdict(conf)
    raw.pop("warnings", None)
    raw["access_secret"] = "******" if conf.access_secret else ""
    return json.dumps(raw, indent=2, sort_keys=True, default=str)


@dataclass(frozen=True)
class NodeInfo:
    instance_id: str
    instance_type: str
    region_id: str
    zone_id: str
    primary_mac: str = ""
    primary_vswitch_id: str = ""
    primary_security_group_ids: tuple[str, ...] = ()

    def identity(self) -> NodeIdentity:
        return NodeIdentity(instance_id=self.instance_id, zone_id=self.zone_id,
                            primary_vswitch_id=self.primary_vswitch_id,
                            primary_security_group_ids=self.primary_security_group_ids)


def discover_node(metadata: MetadataClient, cloud: CloudAPI) -> NodeInfo:
    """Instance facts from metadata; the primary ENI's security groups from the cloud."""
    instance_id = metadata.instance_id()
    primary_mac = metadata.primary_mac()
    sgs: tuple[str, ...] = ()
    for eni in cloud.describe_network_interfaces(instance_id=instance_id):
        if eni.eni_type == "Primary":
            sgs = eni.security_group_ids
    return NodeInfo(
        instance_id=instance_id, instance_type=metadata.instance_type(),
        region_id=metadata.region_id(), zone_id=metadata.zone_id(), primary_mac=primary_mac,
        primary_vswitch_id=metadata.vswitch_id(primary_mac) if primary_mac else "",
        primary_security_group_ids=sgs)


INSTANCE_TYPE_INFO = "alibabacloud.com/instance-type-info"   # node annotation (upstream)


def instance_limits(cloud: CloudAPI, instance_type: str,
                    annotation: str | None = None) -> InstanceTypeLimits:
    """The instance type's limits: from the node's ``alibabacloud.com/instance-type-info``
    annotation (DescribeInstanceTypes' item as JSON) when it names this type, as upstream, else
    from DescribeInstanceTypes. An annotation that does not parse is logged and not used."""
    if annotation:
        try:
            found = instance_types_from_wire({"InstanceTypes": {"InstanceType": [
                json.loads(annotation)]}})
        except (ValueError, TypeError, AttributeError) as exc:
            log.error("node annotation does not parse; asking DescribeInstanceTypes",
                      extra=logfmt.fields(annotation=INSTANCE_TYPE_INFO, error=str(exc)[:200]))
            found = []
        if found and found[0].instance_type == instance_type and found[0].eni_quantity > 0:
            return found[0]
    return cloud.describe_instance_type(instance_type)


def ipam_settings(conf: EniConf, limits: InstanceTypeLimits,
                  node: NodeInfo) -> tuple[IpamSettings, NodeCapacity]:
    cap = compute_capacity(limits, conf)
    return IpamSettings.from_config(conf, cap, node.identity()), cap


def gateway_of(cidr: str) -> str:
    """Alibaba Cloud's vSwitch gateway: the third address from the end of the CIDR."""
    net = ipaddress.ip_network(cidr, strict=False)
    return str(net.network_address + net.num_addresses - 3)


EniNet = Callable[[str], tuple[str, str]]
"""mac → (gateway, vSwitch CIDR) of an attached ENI."""


def metadata_eni_net(metadata: MetadataClient) -> EniNet:
    cache: dict[str, tuple[str, str]] = {}

    def lookup(mac: str) -> tuple[str, str]:
        if mac not in cache:
            cache[mac] = (metadata.gateway(mac), metadata.vswitch_cidr(mac))
        return cache[mac]

    return lookup


def cloud_eni_net(cloud: CloudAPI) -> EniNet:
    """Without metadata (in-process tests): the ENI's vSwitch CIDR from the cloud API."""
    cache: dict[str, tuple[str, str]] = {}

    def lookup(mac: str) -> tuple[str, str]:
        if mac not in cache:
            enis = [e for e in cloud.describe_network_interfaces() if e.mac == mac]
            if not enis:
                raise LookupError(f"no ENI with MAC {mac}")
            (vsw,) = cloud.describe_vswitches([enis[0].vswitch_id])
            cache[mac] = (gateway_of(vsw.cidr), vsw.cidr)
        return cache[mac]

    return lookup


def netns_exists(netns: str) -> bool:
    """A bare name means ``/var/run/netns/<name>``; "" counts as existing (nothing to judge)."""
    if not netns:
        return True
    return os.path.exists(netns if "/" in netns else os.path.join("/var/run/netns", netns))
