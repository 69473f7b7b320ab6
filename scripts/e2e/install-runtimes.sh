#!/usr/bin/env bash
# Installs and prepares the real container runtimes for tests/e2e (Debian 12, as root).
# Idempotent: apt packages only when missing, config files rewritten to the same content,
# the rootfs image imported only when absent. Does NOT leave dockerd running: the test session
# starts it when needed (tests/e2e/runtime_setup.py) and stops what it started.
#
#   scripts/e2e/install-runtimes.sh            # packages + containers.conf + images
#   scripts/e2e/install-runtimes.sh --no-docker-image   # skip starting dockerd for the import
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != "0" ]; then
    echo "install-runtimes: must run as root" >&2
    exit 1
fi
# Everything (apt, containers.conf, rootfs, podman/docker import, dockerd start/stop) lives in
# one Python module so CI and the pytest session fixtures share a single implementation.
exec python3 tests/e2e/runtime_setup.py install "$@"
