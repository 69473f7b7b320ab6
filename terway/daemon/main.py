"""``terwayd``: flags, config validation, wiring of the real outside world, signals.

Exit codes: 0 stopped by a signal, 1 failed at run time (cloud unreachable, lock held),
2 invalid configuration or flags (every problem printed, one per line, no traceback, no state
touched: the config is validated before the lock, the store or the cloud is opened).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace

from terway import cliargs
from terway.cloud.credentials import ADDON_SECRET_DIR, CredentialError, provider_from_config
from terway.cloud.errors import CloudError
from terway.cloud.metadata import DEFAULT_BASE_URL, MetadataClient, MetadataError
from terway.cloud.ratelimit import RateLimits
from terway.cloud.retry import retry_policies
from terway.cloud.sdk import SdkCloud, SdkConfig
from terway.config import ConfigError
from terway.daemon import logfmt
from terway.daemon.app import DEFAULT_STATE_DIR, Daemon, DaemonOptions
from terway.daemon.clock import Clock, RealClock, ScaledClock
from terway.daemon.deviceplugin import DEFAULT_DIR as DEVICE_PLUGIN_DIR, SOCKET_SUFFIX
from terway.daemon.executor import link_with_mac_exists
from terway.daemon.k8s import KubeApi, kube_from_env
from terway.daemon.lock import AlreadyRunning
from terway.daemon.metrics import Metrics
from terway.daemon.node import LoadedConfig, load_config
from terway.daemon.ports import Datapath, Kube, NoDatapath
from terway.daemon.upstream_state import DEFAULT_DIR as UPSTREAM_STATE_DIR
from terway.rpc import messages as rpc

DEFAULT_CONFIG = "/etc/eni/eni.json"
EXIT_RUNTIME = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="terwayd", description="Terway node daemon",
        epilog="other commands: `terwayd install-cni --help` (the init container), "
               "`terwayd policy --help` (the policy container: NetworkPolicy)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help=f"eni_conf JSON file (default {DEFAULT_CONFIG})")
    p.add_argument("--configmap-dir", default=None, metavar="DIR",
                   help="the mounted eni-config ConfigMap (files eni_conf, 10-terway.conf, …); "
                        "overrides --config")
    p.add_argument("--cloud-endpoint", default="", metavar="URL",
                   help="ECS/VPC OpenAPI endpoint (default: the SDK's regional endpoint)")
    p.add_argument("--metadata-endpoint", default=DEFAULT_BASE_URL, metavar="URL",
                   help="instance metadata base URL (emulator: http://HOST:P/instances/<id>)")
    p.add_argument("--region", default="", help="region id (default: from metadata)")
    p.add_argument("--node-config-patch", default="", metavar="FILE",
                   help="this node's eni_conf overlay: an RFC 7396 JSON merge patch applied "
                        "over the base (upstream: the terway-config node label's ConfigMap); "
                        "watched for changes like the base")
    p.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR",
                   help="where the pod records live (survive restarts)")
    p.add_argument("--socket", default=rpc.DEFAULT_SOCKET, metavar="PATH",
                   help="unix socket for the CNI plugin and terway-cli (mode 0600)")
    p.add_argument("--lock-file", default="", metavar="PATH",
                   help="default: terwayd.lock next to the socket")
    p.add_argument("--log-level", default="info",
                   help="debug | info | warning | error (default info)")
    p.add_argument("--node-name", default=os.environ.get("NODE_NAME", ""),
                   help="Kubernetes node name (default $NODE_NAME)")
    p.add_argument("--kubeconfig", default=None, metavar="FILE",
                   help="talk to Kubernetes with this kubeconfig (in-cluster config is used "
                        "automatically when present)")
    p.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                   help="serve Prometheus metrics and the probes on this port (0: any free "
                        "port, logged)")
    p.add_argument("--metrics-address", default="127.0.0.1", metavar="ADDR",
                   help="the address they listen on (default 127.0.0.1: this node only; "
                        "0.0.0.0 lets Prometheus scrape them, without authentication)")
    p.add_argument("--debug-socket", default=None, metavar="PATH",
                   help="also serve /metrics on this unix socket, mode 0600 (upstream's "
                        "--readonly-listen; default eni_debug.socket next to --socket, i.e. "
                        "/var/run/eni/eni_debug.socket as upstream; \"\": none)")
    p.add_argument("--device-plugin-dir", default=DEVICE_PLUGIN_DIR, metavar="DIR",
                   help="the kubelet's device-plugin directory: in daemon_mode ENIOnly terwayd "
                        "serves aliyun/eni there unless disable_device_plugin (default "
                        f"{DEVICE_PLUGIN_DIR}; \"\": none)")
    p.add_argument("--upstream-state-dir", default=UPSTREAM_STATE_DIR, metavar="DIR",
                   help="upstream Terway's pod state (ResRelation.db, pod.db), read only, at "
                        "start: the addresses its pods hold are kept for them (default "
                        f"{UPSTREAM_STATE_DIR}; \"\": not read)")
    p.add_argument("--addon-secret-dir", default=ADDON_SECRET_DIR, metavar="DIR",
                   help="upstream's add-on secret files: access-key-id and access-key-secret "
                        f"here replace eni_conf's AccessKey (default {ADDON_SECRET_DIR}; \"\": "
                        "not read)")
    p.add_argument("--alloc-timeout", type=float, default=rpc.DEFAULT_TIMEOUT, metavar="S",
                   help="seconds an AllocIP may wait for the cloud (default 120)")
    p.add_argument("--gc-period", type=float, default=300.0, metavar="S",
                   help="seconds between GC runs (default 300)")
    p.add_argument("--config-poll", type=float, default=5.0, metavar="S",
                   help="seconds between config file checks (default 5)")
    p.add_argument("--attach-timeout", type=float, default=60.0, metavar="S",
                   help="seconds to wait for an ENI to attach")
    p.add_argument("--datapath", choices=("real", "none"), default="real",
                   help="real: wire pods with pyroute2; none: addresses only (emulator tests)")
    p.add_argument("--host-netns", default=None, metavar="NAME",
                   help="the node's network namespace for the datapath (default: our own)")
    p.add_argument("--link-check", action=argparse.BooleanOptionalAction, default=None,
                   help="wait for an attached ENI's link to appear (default: with --datapath "
                        "real)")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the core's RNG (default: random)")
    p.add_argument("--time-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    return cliargs.finish(p)


def _check_flags(args: argparse.Namespace) -> list[str]:
    problems = []
    for name in ("alloc_timeout", "gc_period", "config_poll", "attach_timeout", "time_scale"):
        if not getattr(args, name) > 0:
            problems.append(f"--{name.replace('_', '-')}: must be > 0, got {getattr(args, name)}")
    if args.metrics_port is not None and not 0 <= args.metrics_port < 65536:
        problems.append(f"--metrics-port: must be 0..65535 (0: any free port), got "
                        f"{args.metrics_port}")
    try:
        ipaddress.ip_address(args.metrics_address)
    except ValueError:
        problems.append(f"--metrics-address: {args.metrics_address!r} is not an IP address "
                        "(e.g. 127.0.0.1 or 0.0.0.0)")
    debug = args.debug_socket
    if debug and "://" in debug and not debug.startswith("unix://"):
        problems.append(f"--debug-socket: {debug!r}: only a unix socket path (or unix://PATH) "
                        "is served here; TCP metrics are --metrics-port")
    elif debug and len(debug.removeprefix("unix://").encode()) > 107:
        problems.append(f"--debug-socket: longer than a unix socket path may be (107 bytes): "
                        f"{debug!r}")
    longest = len(args.device_plugin_dir.encode()) + len(f"/{2**32}{SOCKET_SUFFIX}")
    if args.device_plugin_dir and longest > 107:
        problems.append(f"--device-plugin-dir: too long for the sockets in it (a unix socket "
                        f"path is at most 107 bytes): {args.device_plugin_dir!r}")
    try:
        logfmt.parse_level(args.log_level)
    except ValueError as exc:
        problems.append(str(exc))
    return problems


def _fail(problems: Sequence[str], code: int, what: str) -> int:
    for p in problems:
        print(f"terwayd: {what}: {p}", file=sys.stderr)
    return code


def _loader(args: argparse.Namespace, kube: Kube | None = None) -> LoadedConfig:
    """Base config + the node's merge patch: ``--node-config-patch`` when given, else the
    ConfigMap named by the node's ``terway-config`` label (only with Kubernetes)."""
    patch = None
    if not args.node_config_patch and kube is not None and kube.enabled:
        patch = kube.node_config_patch()
    conf = load_config(args.config or DEFAULT_CONFIG, args.configmap_dir,
                       node_patch_file=args.node_config_patch or "", node_patch=patch)
    if not conf.eni_conf.service_cidr and kube is not None and kube.enabled:
        cidr = kube.kubeadm_service_cidr()      # upstream's fallback; "" keeps none
        if cidr:
            conf = replace(conf, eni_conf=replace(conf.eni_conf, service_cidr=cidr))
    return conf


def build_daemon(args: argparse.Namespace, conf: LoadedConfig,
                 kube: Kube | None = None) -> Daemon:
    """The production wiring: metadata, SDK cloud, real datapath, Kubernetes if configured."""
    metrics = Metrics()
    metadata = MetadataClient(args.metadata_endpoint, observe=metrics.observe_metadata)
    region = args.region or metadata.region_id()
    e = conf.eni_conf
    creds = provider_from_config(access_key=e.access_key, access_secret=e.access_secret.reveal(),
                                 credential_path=e.credential_path, metadata=metadata,
                                 addon_secret_dir=args.addon_secret_dir)
    clock: Clock = RealClock() if args.time_scale == 1.0 else ScaledClock(args.time_scale)

    # aliyun_openapi_latency: the Daemon wraps every cloud it is given (TimedCloud)
    cloud = SdkCloud(SdkConfig(region_id=region, endpoint=args.cloud_endpoint), creds,
                     limits=RateLimits(e.rate_limit), policies=retry_policies(e.backoff_override))
    datapath: Datapath = NoDatapath()
    if args.datapath == "real":
        from terway.daemon.dataplane import RealDatapath

        datapath = RealDatapath(args.host_netns)
    link_check = args.link_check if args.link_check is not None else args.datapath == "real"
    options = DaemonOptions(
        state_dir=args.state_dir, socket_path=args.socket, lock_path=args.lock_file,
        alloc_timeout=args.alloc_timeout, gc_period=args.gc_period,
        config_poll=args.config_poll, attach_timeout=args.attach_timeout,
        metrics_port=args.metrics_port, metrics_address=args.metrics_address,
        debug_socket=args.debug_socket.removeprefix("unix://")
        if args.debug_socket is not None else None,
        node_name=args.node_name, seed=args.seed, device_plugin_dir=args.device_plugin_dir,
        upstream_state_dir=args.upstream_state_dir)
    kube = kube if kube is not None else kube_from_env(args.kubeconfig, args.node_name)
    return Daemon(options, conf, cloud, metadata=metadata, datapath=datapath,
                  kube=kube, clock=clock,
                  link_check=link_with_mac_exists if link_check else None,
                  config_loader=lambda: _loader(args, kube), metrics=metrics)


async def run(daemon: Daemon) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.request_stop)
    try:
        await daemon.start()
        await daemon.wait_stopped()
    finally:
        if hasattr(daemon, "server"):
            await daemon.stop()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["install-cni"]:
        from terway.daemon.install import main as install_main

        return install_main(argv[1:])
    if argv[:1] == ["policy"]:
        from terway.policy.main import main as policy_main

        return policy_main(argv[1:])
    args = build_parser().parse_args(argv)
    problems = _check_flags(args)
    if problems:
        return _fail(problems, EXIT_CONFIG, "invalid flag")
    logger = logfmt.setup(logfmt.parse_level(args.log_level))
    logfmt.setup_library_loggers(logger.level)
    kube = kube_from_env(args.kubeconfig, args.node_name)   # no API call until used
    try:
        conf = _loader(args, kube)
    except ConfigError as exc:
        return _fail(exc.problems, EXIT_CONFIG, "invalid configuration")
    for w in conf.eni_conf.warnings:
        logger.warning("config: %s", w)
    if isinstance(kube, KubeApi):
        kube.set_rate_limit(conf.eni_conf.kube_client_qps, conf.eni_conf.kube_client_burst)
    try:
        daemon = build_daemon(args, conf, kube)
    except CredentialError as exc:
        return _fail([str(exc)], EXIT_CONFIG, "invalid configuration")
    except (MetadataError, ValueError) as exc:
        logger.error(f"startup failed: {exc}")
        return EXIT_RUNTIME
    try:
        asyncio.run(run(daemon))
    except AlreadyRunning as exc:
        logger.error(str(exc))
        return EXIT_RUNTIME
    except CredentialError as exc:
        return _fail([str(exc)], EXIT_CONFIG, "invalid configuration")
    except (CloudError, MetadataError, OSError) as exc:
        logger.error(f"startup failed: {exc}")
        return EXIT_RUNTIME
    return 0


if __name__ == "__main__":
    sys.exit(main())
