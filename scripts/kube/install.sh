#!/usr/bin/env bash
# System packages of the Kubernetes test bed (Debian 12, as root; idempotent): containerd and
# runc (each node's runtime), the CNI loopback plugin, debootstrap + podman (images.sh builds the
# images from a local base), busybox-static (the test workloads' image). Go itself comes with
# the machine (scripts/kube/build.sh needs `go` >= the version in scripts/kube/go/*/go.mod).
set -euo pipefail
PACKAGES=(containerd runc containernetworking-plugins debootstrap podman busybox-static gcc
          libc6-dev util-linux)
bash "$(dirname "$0")/../apt-ensure.sh" kube-install "${PACKAGES[@]}"
# Debian starts containerd as a service when one can run; the test bed runs its own per node.
if command -v systemctl >/dev/null && systemctl is-active -q containerd 2>/dev/null; then
    systemctl disable --now containerd >/dev/null 2>&1 || true
fi
command -v go >/dev/null || echo "kube-install: warning: no 'go' on PATH; scripts/kube/build.sh needs Go 1.26" >&2
