#!/usr/bin/env bash
# Builds the test bed's images without a registry and saves each as a docker-archive tar (what
# `ctr -n k8s.io images import` takes) in a cache outside the repository, keyed by a hash of the
# inputs and reused when they did not change. Progress goes to stderr; the last stdout line is
# the directory holding the tars and images.json:
#   {"terway": {"ref": …, "archive": "/abs/terway.tar", "size_bytes": N}, "pause": …, "busybox": …}
#
#   ghcr.io/terway-py/terway:v<version>   deploy/Dockerfile FROM a Debian 12 minbase rootfs
#                                         debootstrapped here once (localhost/terway-testbed/debian)
#   localhost/terway-testbed/pause:1      scripts/kube/pause.c, static: the pod sandbox image
#   localhost/terway-testbed/busybox:1    Debian's busybox-static + applet links: test workloads
#
# Needs root, podman, debootstrap, gcc + libc6-dev, busybox-static (scripts/setup.sh installs
# them) and deb.debian.org + PyPI. TERWAY_KUBE_CACHE (default /var/cache/terway-py/kube) moves
# the cache; delete its base/ to debootstrap afresh (security updates). See docs/image.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${TERWAY_KUBE_CACHE:-/var/cache/terway-py/kube}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml")"
TERWAY_REF="ghcr.io/terway-py/terway:v$version"
PAUSE_REF=localhost/terway-testbed/pause:1
BUSYBOX_REF=localhost/terway-testbed/busybox:1
# What the busybox image links to busybox (sh's builtins such as printf come with sh).
APPLETS=(sh sleep wget httpd nc ip ping cat echo ls ps hostname env sed grep true timeout)
KEEP=4            # image sets kept in the cache (older key directories are deleted)
log() { echo "images: $*" >&2; }
die() { log "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (podman's system store, debootstrap)"
for tool in podman debootstrap gcc; do
    command -v "$tool" >/dev/null || die "needs $tool (bash scripts/setup.sh installs it)"
done
busybox_version="$(dpkg-query -W -f '${Version}' busybox-static 2>/dev/null)" \
    || die "needs busybox-static (apt-get install -y busybox-static)"
mkdir -p "$cache/images" "$cache/base"
exec 9>"$cache/images/.lock"
flock 9           # one build at a time: nox -s kube, tests/deploy and a developer may race
start=$SECONDS

# The base: Debian 12 minbase, debootstrapped once per machine and slimmed like debian:12-slim
# (no docs, man pages, locales, apt lists or .debs; apt still works in it).
slim_rootfs() {
    local r="$1"
    cat > "$r/etc/apt/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
EOF
    cat > "$r/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
EOF
    cat > "$r/etc/apt/apt.conf.d/slim" <<'EOF'
APT::Install-Recommends "false";
Acquire::Languages "none";
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    printf '#!/bin/sh\nexit 101\n' > "$r/usr/sbin/policy-rc.d" && chmod 755 "$r/usr/sbin/policy-rc.d"
    mount -t proc proc "$r/proc"
    chroot "$r" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade' \
        >&2 || { umount "$r/proc"; return 1; }
    umount "$r/proc"
    find "$r/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
    find "$r/usr/share/doc" -mindepth 1 -type d -empty -delete
    rm -rf "$r"/usr/share/{man,groff,info,lintian,linda,locale}/* "$r"/var/lib/apt/lists/* \
        "$r"/var/cache/apt/* "$r"/var/cache/debconf/*-old "$r"/var/lib/dpkg/*-old \
        "$r"/var/log/* "$r"/etc/resolv.conf "$r"/etc/hostname "$r"/root/.bash_history
}
base_tar="$cache/base/debian-12.tar"
if [ ! -f "$base_tar" ] || [ ! -f "$base_tar.id" ]; then
    log "debootstrap bookworm (minbase) into $cache/base ..."
    rootfs="$cache/base/rootfs.tmp"
    umount "$rootfs/proc" 2>/dev/null || true      # left mounted by an interrupted run
    rm -rf --one-file-system "$rootfs" "$base_tar" "$base_tar.id"
    debootstrap --variant=minbase bookworm "$rootfs" http://deb.debian.org/debian >&2
    slim_rootfs "$rootfs"
    tar --numeric-owner -C "$rootfs" -cf "$base_tar.tmp" .
    sha256sum "$base_tar.tmp" | cut -c1-12 > "$base_tar.id"
    mv "$base_tar.tmp" "$base_tar"
    rm -rf "$rootfs"
fi
BASE_REF="localhost/terway-testbed/debian:12-$(cat "$base_tar.id")"
if ! podman image exists "$BASE_REF"; then
    log "importing $BASE_REF"
    podman import -q --change 'CMD ["bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        "$base_tar" "$BASE_REF" >/dev/null
fi

# Calico Felix for the policy container: built from its Go module (cached) unless given.
felix_dir="${TERWAY_FELIX_DIR:-$("$root/scripts/kube/felix.sh")}"
[ -x "$felix_dir/calico-felix" ] || die "no calico-felix in $felix_dir"

# The key: everything that goes into the images (the build context as .dockerignore lets it
# through), this script, felix, the base and the busybox package.
key="$( { cd "$root"
          sha256sum deploy/Dockerfile .dockerignore pyproject.toml README.md \
              scripts/kube/pause.c scripts/kube/images.sh "$felix_dir/calico-felix"
          find terway -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
              ! -path 'terway/cni/_native/*' ! -path '*/.*_cache/*' -print0 \
              | LC_ALL=C sort -z | xargs -0 sha256sum
          echo "$BASE_REF busybox-static $busybox_version"; } | sha256sum | cut -c1-16)"
out="$cache/images/$key"
if [ -f "$out/images.json" ]; then
    log "reusing $out (inputs unchanged)"
    echo "$out"
    exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A previous build's image the new one replaces under the same name is removed afterwards
# (its layers, not the build cache).
declare -A previous=()
for ref in "$TERWAY_REF" "$PAUSE_REF" "$BUSYBOX_REF"; do
    previous[$ref]="$(podman image inspect --format '{{.Id}}' "$ref" 2>/dev/null || true)"
done

log "building $TERWAY_REF FROM $BASE_REF ..."
# --network host: apt and pip reach the mirrors as the host does. The host's CA bundle goes in as
# a build volume (pip behind a TLS-intercepting proxy needs it; harmless elsewhere).
podman build --network host --build-arg "BASE=$BASE_REF" --build-context "felix=$felix_dir" \
    -v /etc/ssl/certs:/etc/ssl/host-certs:ro \
    --build-arg PIP_CERT=/etc/ssl/host-certs/ca-certificates.crt \
    -f "$root/deploy/Dockerfile" -t "$TERWAY_REF" "$root" >&2

log "building $PAUSE_REF and $BUSYBOX_REF ..."
mkdir -p "$work/pause" "$work/busybox/bin" "$work/busybox/etc" "$work/busybox/tmp" \
    "$work/busybox/root"
gcc -static -Os -s -Wall -Werror -o "$work/pause/pause" "$root/scripts/kube/pause.c"
tar --numeric-owner -C "$work/pause" -c pause \
    | podman import -q --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_REF" >/dev/null
cp /bin/busybox "$work/busybox/bin/busybox"
for applet in "${APPLETS[@]}"; do
    ln -s busybox "$work/busybox/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
    > "$work/busybox/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/busybox/etc/group"
chmod 1777 "$work/busybox/tmp"
tar --numeric-owner -C "$work/busybox" -c . \
    | podman import -q --change 'CMD ["sh"]' --change 'ENV PATH=/bin' - "$BUSYBOX_REF" >/dev/null

tmp="$out.tmp"
rm -rf "$tmp" && mkdir -p "$tmp"
json="{"
for pair in "terway=$TERWAY_REF" "pause=$PAUSE_REF" "busybox=$BUSYBOX_REF"; do
    name="${pair%%=*}" ref="${pair#*=}"
    podman save -q --format docker-archive -o "$tmp/$name.tar" "$ref"
    size="$(podman image inspect --format '{{.Size}}' "$ref")"
    json+="\"$name\": {\"ref\": \"$ref\", \"archive\": \"$out/$name.tar\", \"size_bytes\": $size}, "
    log "$ref: $size bytes ($((size / 1000000)) MB) uncompressed"
    old="${previous[$ref]}"
    if [ -n "$old" ] && [ "$old" != "$(podman image inspect --format '{{.Id}}' "$ref")" ]; then
        podman rmi "$old" >/dev/null 2>&1 || true
    fi
done
echo "${json%, }}" > "$tmp/images.json"
rm -rf "$out" && mv "$tmp" "$out"

# Keep the newest KEEP image sets.
mapfile -t stale < <(ls -1dt "$cache"/images/*/ 2>/dev/null | tail -n +$((KEEP + 1)))
for dir in "${stale[@]}"; do
    log "removing old image set ${dir%/}" && rm -rf "${dir%/}"
done
log "built in $((SECONDS - start)) s: $out"
echo "$out"
