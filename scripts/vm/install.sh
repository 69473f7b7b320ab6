#!/usr/bin/env bash
# Installs what the IPVLAN-in-a-VM tests need (qemu, a Debian kernel with the ipvlan module,
# a static busybox for the guest's initramfs). Run as root; safe to run again.
set -euo pipefail

PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static)

if [ "$(id -u)" != "0" ]; then
    echo "vm/install: must run as root" >&2
    exit 1
fi
bash "$(dirname "$0")/../apt-ensure.sh" vm/install "${PACKAGES[@]}"
