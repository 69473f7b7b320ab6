"""A Kubernetes cluster built from upstream components on emulated ECS instances.

The control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) runs on a
master instance, and each node instance runs its own containerd and kubelet, all inside the
fabric's namespaces so pods get VPC addresses from emulated ENIs and real packets cross nodes.
The plugin is deployed as the DaemonSet ``terway-eniip`` with ``kubectl apply -k``.

    from emulator.cluster import Cluster
    cluster = Cluster(nodes=2).up()     # builds or reuses binaries and images; ~1-2 min warm
    cluster.kubectl("get", "pods", "-A")
    cluster.down()

See docs/kube.md. Needs root.
"""

from .cluster import Cluster, World
from .procs import ClusterError

__all__ = ["Cluster", "ClusterError", "World"]
