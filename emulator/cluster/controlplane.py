"""The control plane on the master instance: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler — upstream binaries, run inside that instance's network namespace.

They live on an emulated ECS instance (not in the host's namespace) because the API server must
reach kubelets at their node IPs for ``kubectl logs``/``exec``, as on a real VPC; nodes reach
the API server at the master's primary IP through the fabric's router. The host reaches it
through a relay (``relay.py``) on 127.0.0.1.
"""

from __future__ import annotations

import ssl
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from emulator.fabric.netns import entered

from .pki import CertFiles, Pki, kubeconfig
from .procs import Proc, spawn, tag_env, wait_until

API_PORT = 6443
SERVICE_CIDR = "172.21.0.0/20"     # as in eni-config's service_cidr
SERVICE_IP = "172.21.0.1"          # the `kubernetes` Service's ClusterIP (first of the range)
ISSUER = "https://kubernetes.default.svc.cluster.local"


def in_netns(netns: str, argv: list[str]) -> list[str]:
    """``argv`` run inside network namespace ``netns`` (mounts untouched, unlike ip netns exec,
    which remounts /sys and would hide the cgroup hierarchies)."""
    return ["nsenter", f"--net=/run/netns/{netns}", "--", *argv]


@dataclass
class ControlPlaneFiles:
    ca: Path
    admin: CertFiles
    kubelet_client: CertFiles          # the API server's client certificate towards kubelets
    sa: CertFiles
    serving: CertFiles


class ControlPlane:
    """Starts the four components in order, each waited for before the next."""

    def __init__(self, bin_dir: Path, workdir: Path, netns: str, ip: str, pki: Pki) -> None:
        self.bin, self.dir, self.netns, self.ip, self.pki = bin_dir, workdir, netns, ip, pki
        self.logs = workdir / "logs"
        self.procs: list[Proc] = []
        self.files = ControlPlaneFiles(
            ca=pki.ca.cert,
            admin=pki.issue("admin", "testbed-admin", "system:masters", client=True),
            kubelet_client=pki.issue("apiserver-kubelet-client", "kube-apiserver-kubelet-client",
                                     "system:masters", client=True),
            sa=pki.service_account_key(),
            serving=pki.issue("apiserver", "kube-apiserver", server=True,
                              dns=("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                                   "kubernetes.default.svc.cluster.local", "localhost"),
                              ips=(ip, "127.0.0.1", SERVICE_IP)))
        self.local_kubeconfig = self._component_kubeconfig("admin-local", self.files.admin)

    def _component_kubeconfig(self, name: str, creds: CertFiles) -> Path:
        """A kubeconfig for a process inside the master's netns (API at 127.0.0.1)."""
        return kubeconfig(self.dir / "pki" / f"{name}.kubeconfig",
                          f"https://127.0.0.1:{API_PORT}", self.files.ca, creds, name)

    def _spawn(self, name: str, argv: list[str]) -> Proc:
        proc = spawn(name, in_netns(self.netns, argv), self.logs, tag_env(self.dir))
        self.procs.append(proc)
        return proc

    # -- components ------------------------------------------------------------------------------
    def start(self, timeout: float = 120.0) -> None:
        self._etcd(timeout)
        self._apiserver(timeout)
        self._controller_manager(timeout)
        self._scheduler(timeout)

    def _etcd(self, timeout: float) -> None:
        url = "http://127.0.0.1:2379"
        proc = self._spawn("etcd", [
            str(self.bin / "etcd"), "--name", "master", "--data-dir", str(self.dir / "etcd"),
            "--listen-client-urls", url, "--advertise-client-urls", url,
            "--listen-peer-urls", "http://127.0.0.1:2380",
            "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
            "--initial-cluster", "master=http://127.0.0.1:2380",
            "--unsafe-no-fsync",            # a test bed: speed over durability of its etcd
            "--log-level", "warn"])
        wait_until(proc, "etcd", lambda: self._get(f"{url}/health", tls=False) == 200, timeout)

    def _apiserver(self, timeout: float) -> None:
        f, pki = self.files, self.dir / "pki"
        proc = self._spawn("kube-apiserver", [
            str(self.bin / "kube-apiserver"),
            "--etcd-servers", "http://127.0.0.1:2379",
            "--bind-address", "0.0.0.0", "--secure-port", str(API_PORT),
            "--advertise-address", self.ip,
            "--service-cluster-ip-range", SERVICE_CIDR,
            "--tls-cert-file", str(f.serving.cert), "--tls-private-key-file", str(f.serving.key),
            "--client-ca-file", str(f.ca),
            "--kubelet-client-certificate", str(f.kubelet_client.cert),
            "--kubelet-client-key", str(f.kubelet_client.key),
            "--kubelet-preferred-address-types", "InternalIP",
            "--service-account-issuer", ISSUER,
            "--service-account-key-file", str(f.sa.cert),
            "--service-account-signing-key-file", str(f.sa.key),
            "--authorization-mode", "Node,RBAC",
            "--enable-admission-plugins", "NodeRestriction",
            "--allow-privileged=true", "--profiling=false",
            "--audit-log-path", str(self.logs / "audit.log"),
            "--audit-policy-file", str(self._audit_policy(pki))])
        wait_until(proc, "kube-apiserver", lambda: self._get(
            f"https://127.0.0.1:{API_PORT}/readyz") == 200, timeout)

    def _audit_policy(self, pki: Path) -> Path:
        """Audit every request's metadata: tests read the log to prove no call was forbidden."""
        path = pki / "audit-policy.yaml"
        path.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\n"
                        "rules:\n- level: Metadata\n")
        return path

    def _controller_manager(self, timeout: float) -> None:
        creds = self.pki.issue("controller-manager", "system:kube-controller-manager",
                               client=True)
        kc = str(self._component_kubeconfig("controller-manager", creds))
        proc = self._spawn("kube-controller-manager", [
            str(self.bin / "kube-controller-manager"),
            "--kubeconfig", kc, "--authentication-kubeconfig", kc,
            "--authorization-kubeconfig", kc,
            "--service-account-private-key-file", str(self.files.sa.key),
            "--root-ca-file", str(self.files.ca),
            "--use-service-account-credentials=true",
            "--cluster-signing-cert-file", str(self.pki.ca.cert),
            "--cluster-signing-key-file", str(self.pki.ca.key),
            "--bind-address", "127.0.0.1", "--leader-elect=false"])
        wait_until(proc, "kube-controller-manager",
                   lambda: self._get("https://127.0.0.1:10257/healthz", verify=False) == 200,
                   timeout)

    def _scheduler(self, timeout: float) -> None:
        creds = self.pki.issue("scheduler", "system:kube-scheduler", client=True)
        kc = str(self._component_kubeconfig("scheduler", creds))
        proc = self._spawn("kube-scheduler", [
            str(self.bin / "kube-scheduler"), "--kubeconfig", kc,
            "--authentication-kubeconfig", kc, "--authorization-kubeconfig", kc,
            "--bind-address", "127.0.0.1", "--leader-elect=false"])
        wait_until(proc, "kube-scheduler",
                   lambda: self._get("https://127.0.0.1:10259/healthz", verify=False) == 200,
                   timeout)

    # -- probes ----------------------------------------------------------------------------------
    def _get(self, url: str, *, tls: bool = True, verify: bool = True) -> int:
        """GET ``url`` from inside the master's netns; the HTTP status."""
        ctx = None
        if tls:
            ctx = ssl.create_default_context(cafile=str(self.files.ca))
            if not verify:         # the components' self-signed health endpoints
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(str(self.files.admin.cert), str(self.files.admin.key))
        with entered(self.netns):
            conn = urllib.request.urlopen(url, timeout=5, context=ctx)
        with conn:
            return int(conn.status)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
