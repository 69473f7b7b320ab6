#!/usr/bin/env bash
# Installs everything the project needs on Debian 12 (run as root for the system packages),
# then the project itself. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# gcc + libc6-dev: the plugin's native front (terway/cni/shim.c) is compiled, statically linked.
APT_PACKAGES=(iproute2 iperf3 iptables nftables procps iputils-ping containernetworking-plugins
              gcc libc6-dev debootstrap)

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    bash scripts/apt-ensure.sh setup "${APT_PACKAGES[@]}"
    bash scripts/apt-ensure.sh setup chromium   # headless browser for tests/browser.py (report.html)
else
    echo "setup: not root or not Debian: skipping system packages (${APT_PACKAGES[*]})" >&2
fi

python3 -m pip install -q --disable-pip-version-check -e '.[dev]'
# Go comes with the machine (Go 1.26); tests/emulator/test_go_client.py builds upstream's Go SDK
# client with it (tests/go/, cached in /var/cache/terway-py/go) and fails in CI without it.
command -v go >/dev/null || echo "setup: warning: no 'go' on PATH; tests/go/ programs need Go 1.26" >&2

if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    # The IPVLAN datapath runs in a qemu guest (this kernel has no ipvlan): qemu + a Debian kernel.
    bash scripts/vm/install.sh
    # Real CNI clients for tests/e2e: podman (CNI backend) and the Docker engine, plus a busybox image.
    bash scripts/e2e/install-runtimes.sh
    # The Kubernetes test bed (nox -s kube): containerd, runc, debootstrap … (binaries and images
    # are built by nox -s kube itself, into a cache outside the repository).
    bash scripts/kube/install.sh
fi
echo "setup: done"
