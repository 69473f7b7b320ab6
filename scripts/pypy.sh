#!/usr/bin/env bash
# A PyPy for the simulator's speed runs (docs/performance-sim.md): Debian 13's pypy3 (PyPy
# 7.3.x, Python 3.11) in a minimal Debian 13 root debootstrapped into a cache outside the
# repository, keyed by the pins below, and reused when nothing changed. Debian 12 itself ships
# PyPy 7.3.11, a Python 3.9, which cannot run this code. Prints the root as the last line of
# stdout. The simulator's pure-Python dependencies (simpy, PyYAML, whose C part PyPy skips) go
# into <root>/opt/site with the host's pip, at the versions the host has installed.
#
#   scripts/pypy.sh                        # build or reuse; prints e.g. /var/cache/terway-py/pypy/<key>
#   TERWAY_PYPY_CACHE=/some/dir scripts/pypy.sh
#   python -m bench.bench_sim --pypy "$(scripts/pypy.sh | tail -1)"
#
# Needs root (debootstrap, chroot) and debootstrap (scripts/setup.sh installs it).
set -euo pipefail
SUITE=trixie
MIRROR=http://deb.debian.org/debian
cache="${TERWAY_PYPY_CACHE:-/var/cache/terway-py/pypy}"
die() { echo "pypy: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (scripts/setup.sh)"

deps="$(python3 -c 'import simpy, yaml; print(f"simpy=={simpy.__version__} PyYAML=={yaml.__version__}")')"
key="$( { echo "suite=$SUITE $deps"; cat "$0"; } | sha256sum | cut -c1-16)"
root="$cache/$key"
if [ -f "$root/.done" ]; then
    echo "pypy: reusing $root ($(cat "$root/.done"))" >&2
    echo "$root"
    exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.lock"                   # one build at a time (a test and a bench may race)
flock 9
if [ -f "$root/.done" ]; then           # another process built it while this one waited
    echo "$root"
    exit 0
fi
# a half-built root from an interrupted run is removed, never one with something mounted in it
# (the bench mounts this checkout only inside a mount namespace of its own)
if awk -v r="$root/" 'index($2 "/", r) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
    die "$root has mounts in it (findmnt -R $root): unmount them first"
fi
rm -rf "$root"
echo "pypy: debootstrap $SUITE (minbase + pypy3) into $root ..." >&2
debootstrap --variant=minbase --include=pypy3 "$SUITE" "$root" "$MIRROR" >&2
# shellcheck disable=SC2086  # $deps is two requirement specifiers
python3 -m pip install -q --no-deps --no-compile --target "$root/opt/site" $deps >&2
mkdir -p "$root/src"                    # the checkout is bind-mounted here, read-only, per run
version="$(chroot "$root" pypy3 -c 'import sys; print("PyPy %d.%d.%d, Python %d.%d" % (sys.pypy_version_info[:3] + sys.version_info[:2]))')"
echo "$version; $deps" > "$root/.done"
echo "pypy: $version ready in $root" >&2
echo "$root"
