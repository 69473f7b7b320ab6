"""The ``terway`` CNI plugin: a thin, standard-library-only client of the terway daemon.

The daemon allocates the address *and* wires the pod's netns (it has pyroute2 loaded and warm);
this process only translates CNI (env + stdin) to one RPC and the reply to a CNI result. Nothing
here may import pyroute2, the cloud SDK, kubernetes or yaml: every import is paid per pod
(terway.datapath loads only its mode registry, terway/datapath/modes.py, itself import-free).
"""

from __future__ import annotations

import sys

from terway.cni import config as c
from terway.cni.config import CniEnv, CniError, NetConf
from terway.datapath import modes
from terway.rpc import cnicodec as rpc

TYPE_CHECKING = False  # mypy treats this name as True; no ``typing`` import at run time
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeAlias

    # (socket path, timeout, method, params) → checked result, or RpcError: terway.rpc.cnicodec.call
    Caller: TypeAlias = Callable[[str, float, str, dict[str, Any]], dict[str, Any]]
    Output: TypeAlias = tuple[int, str, str]  # exit code, stdout, stderr

EVENT_TIMEOUT = 2.0


def main(argv: list[str] | None = None) -> int:
    """Run one CNI command from this process's env and stdin; print its result or error.

    ``terway --version`` (a person at a shell, never the runtime, which passes no arguments)
    prints the package version; the CNI ``VERSION`` command is unchanged."""
    if (sys.argv[1:] if argv is None else argv) == ["--version"]:
        print(f"terway {_package_version()}\n"
              f"CNI spec versions: {', '.join(c.SUPPORTED_VERSIONS)}")
        return 0
    try:
        stdin = sys.stdin.buffer.read()
    except OSError as exc:
        stdin = b""
        code, out, err = _error_output(c.LATEST_VERSION, c.IO_FAILURE, f"reading stdin: {exc}")
    else:
        code, out, err = run(_environ(), stdin)
    try:
        sys.stdout.write(out)
        sys.stdout.flush()
        sys.stderr.write(err)
    except OSError:
        pass
    return code


def _package_version() -> str:
    from importlib import metadata  # only here: every pod's ADD pays for what is imported

    try:
        return metadata.version("terway-py")
    except metadata.PackageNotFoundError:
        return "unknown"


def run(environ: dict[str, str], stdin: bytes, call: Caller | None = None) -> Output:
    """One CNI command → (exit code, stdout, stderr); never raises, never leaks a traceback.

    ``call`` reaches the daemon (default: over its socket). terwayd runs this same function
    in-process for the native plugin front (terway/daemon/cniexec.py), so both paths give
    byte-identical answers.
    """
    version = c.LATEST_VERSION
    try:
        env = c.parse_env(environ)
        if env.command == "VERSION":
            return _output(_version_result(stdin))
        obj = c.decode_netconf(stdin)
        if isinstance(obj.get("cniVersion"), str):
            version = obj["cniVersion"]
        conf = c.parse_netconf(obj, env.command)
        result = COMMAND_HANDLERS[env.command](env, conf, call or rpc.call)
        return _output(result) if result is not None else (0, "", "")
    except CniError as exc:
        return _error_output(version, exc.code, exc.msg, exc.details)
    except BaseException as exc:  # the runtime must get JSON, never a traceback
        if isinstance(exc, SystemExit | KeyboardInterrupt):
            return _error_output(version, c.PLUGIN_BUG, f"interrupted: {type(exc).__name__}")
        return _error_output(
            version, c.PLUGIN_BUG, f"unexpected error in terway plugin: {type(exc).__name__}: {exc}"
        )


def _environ() -> dict[str, str]:
    """``os.environ`` without importing ``os`` (and its ``posixpath``, ``stat``…)."""
    import posix

    return {
        k.decode("utf-8", "surrogateescape"): v.decode("utf-8", "surrogateescape")
        for k, v in posix.environ.items()
    }


def _output(obj: dict[str, Any]) -> Output:
    return 0, rpc.dumps(obj, compact=False) + "\n", ""


def _error_output(version: str, code: int, msg: str, details: str = "") -> Output:
    if version not in c.SUPPORTED_VERSIONS:
        version = c.LATEST_VERSION
    out = {"cniVersion": version, "code": code, "msg": msg, "details": details}
    return 1, rpc.dumps(out, compact=False) + "\n", f"terway: {msg}\n"


def _version_result(stdin: bytes) -> dict[str, Any]:
    version = c.LATEST_VERSION
    if stdin.strip():
        obj = c.decode_netconf(stdin)
        if obj.get("cniVersion") is not None:
            version = c.check_version(obj)
    return {"cniVersion": version, "supportedVersions": list(c.SUPPORTED_VERSIONS)}


def _call(
    call: Caller, conf: NetConf, method: str, params: dict[str, Any], timeout: float | None = None
) -> dict[str, Any]:
    return call(
        conf.daemon_socket or rpc.DEFAULT_SOCKET,
        timeout or conf.rpc_timeout or rpc.DEFAULT_TIMEOUT,
        method,
        params,
    )


def cni_code(err: rpc.RpcError) -> int:
    """Daemon/cloud error → CNI code: specific codes first, then by class."""
    by_code = {
        rpc.ERR_UNKNOWN_CONTAINER: c.UNKNOWN_CONTAINER,
        rpc.ERR_UNREACHABLE: c.DAEMON_UNREACHABLE,
        rpc.ERR_TIMEOUT: c.DAEMON_TIMEOUT,
        rpc.ERR_PROTOCOL: c.DAEMON_PROTOCOL,
    }
    if err.code in by_code:
        return by_code[err.code]
    return c.TRY_AGAIN_LATER if err.retryable else c.DAEMON_REFUSED


def _as_cni(err: rpc.RpcError, action: str) -> CniError:
    message = err.message if err.code in err.message else f"{err.code}: {err.message}"
    details = f"code={err.code} class={err.error_class}"
    return CniError(cni_code(err), f"{action}: {message}", details)


# ---------------------------------------------------------------------------------------------


def cmd_add(env: CniEnv, conf: NetConf, call: Caller) -> dict[str, Any]:
    request = {  # terway.rpc.messages.AllocIPRequest
        "pod_name": env.pod_name,
        "pod_namespace": env.pod_namespace,
        "container_id": env.container_id,
        "netns": env.netns,
        "ifname": env.ifname,
        "eniip_virtual_type": conf.eniip_virtual_type,
        "mtu": conf.mtu,
        "disable_host_peer": conf.disable_host_peer,
        "host_stack_cidrs": conf.host_stack_cidrs or [],
        "ingress_bps": conf.ingress_bps,
        "egress_bps": conf.egress_bps,
    }
    try:
        info = _call(call, conf, "AllocIP", request)
    except rpc.RpcError as exc:
        failure = _as_cni(exc, f"allocating IP for pod {env.pod_namespace}/{env.pod_name}")
        if exc.error_class not in (rpc.CLASS_UNREACHABLE, rpc.CLASS_PROTOCOL):
            _record_failure(call, conf, env, failure.msg)
        raise failure from None
    return build_result(conf.cni_version, env, info)


def _record_failure(call: Caller, conf: NetConf, env: CniEnv, message: str) -> None:
    """Best effort: the pod gets an AllocIPFailed event (the daemon records successes itself)."""
    try:  # noqa: SIM105 (contextlib is an import the hot path does not need)
        _call(
            call,
            conf,
            "RecordEvent",
            {
                "pod_name": env.pod_name,
                "pod_namespace": env.pod_namespace,
                "reason": "AllocIPFailed",
                "message": message,
            },
            EVENT_TIMEOUT,
        )
    except rpc.RpcError:
        pass


def build_result(version: str, env: CniEnv, info: dict[str, Any]) -> dict[str, Any]:
    """A CNI result for ``version`` from an AllocIP result: interfaces, ips, routes, dns."""
    interfaces: list[dict[str, Any]] = []
    if info["host_ifname"]:
        interfaces.append({"name": info["host_ifname"], "mac": info["host_mac"]})
    pod_if: dict[str, Any] = {"name": info["ifname"] or env.ifname, "sandbox": env.netns}
    if info["pod_mac"]:
        pod_if["mac"] = info["pod_mac"]
    interfaces.append(pod_if)
    gateway = modes.get(info["datapath"]).pod_gateway(info["gateway"])
    ip: dict[str, Any] = {
        "address": f"{info['pod_ip']}/{info['prefix_len']}",
        "gateway": gateway,
        "interface": len(interfaces) - 1,
    }
    if version.startswith("0."):
        ip["version"] = "4"
    return {
        "cniVersion": version,
        "interfaces": interfaces,
        "ips": [ip],
        "routes": [{"dst": "0.0.0.0/0", "gw": gateway}],
        "dns": {},
    }


def cmd_del(env: CniEnv, conf: NetConf, call: Caller) -> None:
    try:
        _call(call, conf, "ReleaseIP", _pod_params(env))
    except rpc.RpcError as exc:
        if exc.code == rpc.ERR_UNKNOWN_CONTAINER:  # nothing held: DEL is idempotent
            return
        raise _as_cni(exc, f"releasing IP of pod {env.pod_namespace}/{env.pod_name}") from None


def cmd_check(env: CniEnv, conf: NetConf, call: Caller) -> None:
    try:
        info = _call(call, conf, "GetIPInfo", _pod_params(env))
    except rpc.RpcError as exc:
        raise _as_cni(exc, f"checking pod {env.pod_namespace}/{env.pod_name}") from None
    problems = list(info["problems"])
    problems.extend(compare_prev_result(conf.prev_result or {}, env, info))
    if problems:
        raise CniError(c.CHECK_MISMATCH, "CHECK failed: " + "; ".join(problems))


def _pod_params(env: CniEnv) -> dict[str, Any]:
    """terway.rpc.messages.ReleaseIPRequest / GetIPInfoRequest."""
    return {
        "pod_name": env.pod_name,
        "pod_namespace": env.pod_namespace,
        "container_id": env.container_id,
        "ifname": env.ifname,
        "netns": env.netns,
    }


def compare_prev_result(prev: dict[str, Any], env: CniEnv, info: dict[str, Any]) -> list[str]:
    """What in prevResult disagrees with the daemon's record."""
    problems = []
    want = f"{info['pod_ip']}/{info['prefix_len']}"
    ips = prev.get("ips") or []
    addresses = [ip.get("address") for ip in ips if isinstance(ip, dict)]
    if want not in addresses:
        problems.append(f"prevResult ips {addresses} lack the daemon's address {want}")
    interfaces = prev.get("interfaces") or []
    names = [i.get("name") for i in interfaces if isinstance(i, dict) and i.get("sandbox")]
    if names and env.ifname not in names:
        problems.append(f"prevResult has no sandbox interface {env.ifname!r} (has {names})")
    return problems


def cmd_status(env: CniEnv, conf: NetConf, call: Caller) -> None:
    try:
        status = _call(call, conf, "Status", {})
    except rpc.RpcError as exc:
        raise CniError(c.NOT_AVAILABLE, f"terway not available: {exc.message}") from None
    if not status["ready"]:
        reason = status["message"] or "no reason given"
        raise CniError(c.NOT_AVAILABLE, f"terway not ready: {reason}")


def cmd_gc(env: CniEnv, conf: NetConf, call: Caller) -> None:
    valid = [
        {"container_id": cid, "ifname": ifname} for cid, ifname in conf.valid_attachments or []
    ]
    try:
        _call(call, conf, "GC", {"valid_attachments": valid})
    except rpc.RpcError as exc:
        raise _as_cni(exc, "garbage collection") from None


COMMAND_HANDLERS: dict[str, Any] = {
    "ADD": cmd_add,
    "DEL": cmd_del,
    "CHECK": cmd_check,
    "STATUS": cmd_status,
    "GC": cmd_gc,
}


if __name__ == "__main__":
    raise SystemExit(main())
