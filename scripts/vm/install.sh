#!/usr/bin/env bash
# Installs what the IPVLAN-in-a-VM tests need (qemu, a Debian kernel with the ipvlan module,
# a static busybox for the guest's initramfs). Run as root; safe to run again.
set -euo pipefail

PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static)

if [ "$(id -u)" != "0" ]; then
    echo "vm/install: must run as root" >&2
    exit 1
fi
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "vm/install: already installed"
    exit 0
fi
echo "vm/install: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "vm/install: done"
