"""Parse the CNI environment and the network configuration from stdin, refusing bad input early.

Standard library only, and not even ``json``/``typing`` (the plugin's hot path: see
terway/rpc/cnicodec.py). Every refusal is a ``CniError`` carrying the CNI
spec code and a message naming the variable or field at fault.
"""

from __future__ import annotations

from terway.datapath import modes
from terway.rpc.cnicodec import dumps, loads

TYPE_CHECKING = False  # mypy treats this name as True; no ``typing`` import at run time
if TYPE_CHECKING:
    from typing import Any

MIN_RPC_TIMEOUT, MAX_RPC_TIMEOUT = 1, 3600  # seconds; the default is cnicodec.DEFAULT_TIMEOUT
SUPPORTED_VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

# CNI spec codes (1-11, 50) and ours (100+): docs/cni.md "Error codes" lists them all,
# docs/upstream.md "CNI error codes" compares them with upstream's.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
DAEMON_UNREACHABLE = 100
DAEMON_TIMEOUT = 101
DAEMON_PROTOCOL = 102
DAEMON_REFUSED = 103
CHECK_MISMATCH = 104
PLUGIN_BUG = 199


class CniError(Exception):
    """A failure the runtime sees as ``{cniVersion, code, msg, details}``."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details


class _Record:
    """Keyword-built, slotted, compared by value (a NamedTuple without ``typing``'s import)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, **fields: Any) -> None:
        for name in self.__slots__:
            setattr(self, name, fields.pop(name))
        if fields:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(fields)}")

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"


class NetConf(_Record):
    """The fields of the network configuration terway reads."""

    __slots__ = (
        "cni_version",
        "daemon_socket",
        "disable_host_peer",
        "egress_bps",
        "eniip_virtual_type",
        "host_stack_cidrs",
        "ingress_bps",
        "mtu",
        "name",
        "prev_result",
        "rpc_timeout",
        "valid_attachments",
    )
    cni_version: str
    name: str
    daemon_socket: str | None
    eniip_virtual_type: str | None  # normalised: "veth" | "ipvlan"
    mtu: int | None
    disable_host_peer: bool | None
    host_stack_cidrs: list[str] | None  # exclusive ENI and IPVLAN: sent to the host stack
    ingress_bps: int | None  # runtimeConfig.bandwidth, bits/s
    egress_bps: int | None
    prev_result: dict[str, Any] | None
    valid_attachments: list[tuple[str, str]] | None  # GC: (containerID, ifname)
    rpc_timeout: float | None


class CniEnv(_Record):
    __slots__ = (
        "command",
        "container_id",
        "ifname",
        "infra_container_id",
        "netns",
        "pod_name",
        "pod_namespace",
    )
    command: str
    container_id: str
    netns: str
    ifname: str
    pod_name: str
    pod_namespace: str
    infra_container_id: str


DEFAULT_POD_NAMESPACE = "default"


def parse_cni_args(raw: str) -> dict[str, str]:
    """``K=V;K=V`` → dict; a malformed item is an INVALID_ENV error."""
    out: dict[str, str] = {}
    for item in raw.split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CniError(
                INVALID_ENV, f"CNI_ARGS: malformed item {item!r} (want KEY=VALUE;KEY=VALUE)"
            )
        out[key] = value
    return out


def parse_env(environ: dict[str, str] | Any) -> CniEnv:
    """Read and check the ``CNI_*`` variables the command needs."""
    command = environ.get("CNI_COMMAND", "")
    if not command:
        raise CniError(INVALID_ENV, "CNI_COMMAND is not set")
    if command not in COMMANDS:
        raise CniError(
            INVALID_ENV, f"CNI_COMMAND={command!r} is not one of {', '.join(COMMANDS)}"
        )
    args = parse_cni_args(environ.get("CNI_ARGS", ""))
    env = CniEnv(
        command=command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        pod_name=args.get("K8S_POD_NAME", ""),
        # podman (libnetwork) sends K8S_POD_NAME alone: such a pod lives in "default".
        pod_namespace=args.get("K8S_POD_NAMESPACE", "") or DEFAULT_POD_NAMESPACE,
        infra_container_id=args.get("K8S_POD_INFRA_CONTAINER_ID", ""),
    )
    if command in ("ADD", "DEL", "CHECK"):
        _require(env.container_id, "CNI_CONTAINERID")
        _require(env.ifname, "CNI_IFNAME")
        if command != "DEL":  # DEL must work when the sandbox is already gone
            _require(env.netns, "CNI_NETNS")
        _require(env.pod_name, "CNI_ARGS K8S_POD_NAME")
        _check_env(env)
    return env


# What the CNI spec allows for a container ID and an interface name, and what Kubernetes allows
# for a namespace (DNS-1123 label). Pod names take the superset podman and Docker send for
# container names; neither may hold "/" (the daemon's key "<namespace>/<name>" names one pod).
# Plain set checks, not ``re``: importing it costs the plugin ~5 ms per pod.
_LOWER_DIGITS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_ALNUM = _LOWER_DIGITS | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ID_CHARS = _ALNUM | frozenset("_.-")


def _fits(value: str, first: frozenset[str], rest: frozenset[str], longest: int) -> bool:
    return 0 < len(value) <= longest and value[0] in first and all(ch in rest for ch in value)


def _ifname_ok(value: str) -> bool:
    return 0 < len(value) <= 15 and value not in (".", "..") and \
        not any(ch in "/:" or ch.isspace() for ch in value)


def namespace_ok(value: str) -> bool:
    """A Kubernetes namespace name (DNS-1123 label)."""
    return _fits(value, _LOWER_DIGITS, _LOWER_DIGITS | {"-"}, 63) and value[-1] != "-"


def pod_name_ok(value: str) -> bool:
    """A pod name (DNS-1123 subdomain) or a podman/Docker container name; never a "/"."""
    return _fits(value, _ALNUM, _ID_CHARS, 253)


def container_id_ok(value: str) -> bool:
    """A container ID as the CNI spec has it."""
    return _fits(value, _ALNUM, _ID_CHARS, 1024)


NAMESPACE_RULE = "lower-case letters, digits and '-', at most 63"
POD_NAME_RULE = "letters, digits, '-', '_', '.', at most 253, no '/'"
CONTAINER_ID_RULE = "letters, digits, '_', '.', '-', at most 1024"


def _check_env(env: CniEnv) -> None:
    """Refuse what no runtime sends (and no daemon record can hold) before any RPC."""
    checks = (
        (env.container_id, container_id_ok(env.container_id), "CNI_CONTAINERID",
         CONTAINER_ID_RULE),
        (env.ifname, _ifname_ok(env.ifname), "CNI_IFNAME",
         "at most 15 characters, no '/', ':' or space"),
        (env.pod_namespace, namespace_ok(env.pod_namespace), "CNI_ARGS K8S_POD_NAMESPACE",
         NAMESPACE_RULE),
        (env.pod_name, pod_name_ok(env.pod_name), "CNI_ARGS K8S_POD_NAME", POD_NAME_RULE),
    )
    for value, ok, name, rule in checks:
        if not ok:
            raise CniError(INVALID_ENV, f"{name}={value[:80]!a} is not valid ({rule})")


def _require(value: str, name: str) -> None:
    if not value:
        raise CniError(INVALID_ENV, f"{name} is not set (required for this command)")


def decode_netconf(data: bytes) -> dict[str, Any]:
    """stdin → JSON object, or DECODE_FAILURE saying where."""
    try:
        obj = loads(data)
    except UnicodeDecodeError as exc:
        raise CniError(DECODE_FAILURE, f"network config on stdin is not UTF-8: {exc}") from None
    except ValueError as exc:  # json.JSONDecodeError (imported only on this path)
        where = getattr(exc, "msg", str(exc))
        raise CniError(
            DECODE_FAILURE,
            f"network config on stdin is not valid JSON: {where} "
            f"at line {getattr(exc, 'lineno', '?')} column {getattr(exc, 'colno', '?')}",
        ) from None
    if not isinstance(obj, dict):
        raise CniError(DECODE_FAILURE, "network config on stdin must be a JSON object")
    return obj


def check_version(obj: dict[str, Any]) -> str:
    version = obj.get("cniVersion")
    if not isinstance(version, str) or not version:
        raise CniError(INVALID_CONFIG, "cniVersion: required string field missing")
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"incompatible CNI version {version!r}; supported: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return version


def _opt(obj: dict[str, Any], key: str, kind: type, where: str = "") -> Any:
    value = obj.get(key)
    if value is None:
        return None
    if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
        raise CniError(
            INVALID_CONFIG,
            f"{where}{key}: expected {kind.__name__}, got {dumps(value, compact=False)}",
        )
    return value


def parse_netconf(obj: dict[str, Any], command: str) -> NetConf:
    """Validate the fields terway reads; unknown fields are ignored as the spec asks."""
    version = check_version(obj)
    name = _opt(obj, "name", str) or ""
    if command in ("ADD", "DEL", "CHECK", "GC") and not name:
        raise CniError(INVALID_CONFIG, "name: required string field missing")
    vtype = _opt(obj, "eniip_virtual_type", str)
    if vtype is not None:
        vtype = vtype.lower()
        if vtype == "datapathv2":
            raise CniError(
                INVALID_CONFIG,
                "eniip_virtual_type: 'datapathv2' (upstream's eBPF datapath) is not implemented "
                "by terway-py; use IPVlan (pods on the ENI through IPVLAN) or Veth",
            )
        spellings = {m.virtual_type: m.name for m in modes.REGISTRY.values() if m.virtual_type}
        if vtype not in {m.lower() for m in spellings}:
            raise CniError(
                INVALID_CONFIG,
                f"eniip_virtual_type: {obj['eniip_virtual_type']!r} is not "
                f"{' or '.join(spellings)}",
            )
    mtu = _opt(obj, "mtu", int)
    if mtu is not None and not 68 <= mtu <= 65535:
        raise CniError(INVALID_CONFIG, f"mtu: {mtu} is outside 68..65535")
    timeout = _opt(obj, "rpc_timeout", int)
    if timeout is not None and not MIN_RPC_TIMEOUT <= timeout <= MAX_RPC_TIMEOUT:
        raise CniError(INVALID_CONFIG, f"rpc_timeout: {timeout} is outside "
                       f"{MIN_RPC_TIMEOUT}..{MAX_RPC_TIMEOUT} (seconds)")
    ingress, egress = _bandwidth(obj)
    prev = _opt(obj, "prevResult", dict)
    if command == "CHECK" and prev is None and version not in ("0.3.0", "0.3.1"):
        raise CniError(INVALID_CONFIG, "prevResult: required for CHECK")
    return NetConf(
        cni_version=version,
        name=name,
        daemon_socket=_opt(obj, "daemon_socket", str),
        eniip_virtual_type=vtype,
        mtu=mtu,
        disable_host_peer=_opt(obj, "disable_host_peer", bool),
        host_stack_cidrs=_host_stack_cidrs(obj),
        ingress_bps=ingress,
        egress_bps=egress,
        prev_result=prev,
        valid_attachments=_attachments(obj) if command == "GC" else None,
        rpc_timeout=float(timeout) if timeout is not None else None,
    )


def _host_stack_cidrs(obj: dict[str, Any]) -> list[str] | None:
    """IPv4 CIDRs (upstream's ``host_stack_cidrs``); each checked here as the daemon does."""
    cidrs: list[str] | None = _opt(obj, "host_stack_cidrs", list)
    for i, cidr in enumerate(cidrs or ()):
        problem = cidr_problem(cidr)
        if problem:
            raise CniError(INVALID_CONFIG, f"host_stack_cidrs[{i}]: {problem}")
    return cidrs


def cidr_problem(cidr: object) -> str:
    """Why ``cidr`` is not an IPv4 CIDR (``a.b.c.d/n``), or "" when it is one."""
    if not isinstance(cidr, str):
        return f"expected a string, got {dumps(cidr, compact=False)}"
    import ipaddress  # only when the field is used: the plugin's start-up stays cheap

    try:
        net = ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return f"{cidr[:80]!a} is not a CIDR (a.b.c.d/n)"
    if net.version != 4:
        return f"{cidr[:80]!a}: IPv6 is not available in terway-py"
    return ""


def _bandwidth(obj: dict[str, Any]) -> tuple[int | None, int | None]:
    runtime = _opt(obj, "runtimeConfig", dict) or {}
    bw = _opt(runtime, "bandwidth", dict, "runtimeConfig.") or {}
    rates = []
    for key in ("ingressRate", "egressRate"):
        rate = _opt(bw, key, int, "runtimeConfig.bandwidth.")
        if rate is not None and rate < 0:
            raise CniError(INVALID_CONFIG, f"runtimeConfig.bandwidth.{key}: {rate} is negative")
        rates.append(rate or None)
    return rates[0], rates[1]


def _attachments(obj: dict[str, Any]) -> list[tuple[str, str]]:
    key = "cni.dev/valid-attachments"
    raw = obj.get(key, [])
    if not isinstance(raw, list):
        raise CniError(INVALID_CONFIG, f"{key}: expected a list")
    out = []
    for i, item in enumerate(raw):
        cid = item.get("containerID") if isinstance(item, dict) else None
        ifname = item.get("ifname") if isinstance(item, dict) else None
        if not isinstance(cid, str) or not isinstance(ifname, str):
            raise CniError(INVALID_CONFIG, f"{key}[{i}]: want {{containerID, ifname}} strings")
        out.append((cid, ifname))
    return out
