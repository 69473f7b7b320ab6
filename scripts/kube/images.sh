#!/usr/bin/env bash
# Builds the test bed's images without a registry and saves each as a docker-archive tar (what
# `ctr -n k8s.io images import` takes), in a cache outside the repository keyed by the inputs;
# reused when nothing changed. Prints the directory (with images.json) as the last stdout line.
#
#   ghcr.io/terway-py/terway:v<version>   deploy/Dockerfile FROM a Debian 12 base debootstrapped
#                                         here (localhost/terway-testbed/debian:12)
#   localhost/terway-testbed/pause:1      scripts/kube/pause.c, static: the pod sandbox image
#   localhost/terway-testbed/busybox:1    Debian's busybox-static + applet links: test workloads
#
# Needs root, podman, debootstrap, gcc, busybox-static (scripts/setup.sh installs them).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${TERWAY_KUBE_CACHE:-/var/cache/terway-py/kube}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/pyproject.toml")"
TERWAY_REF="ghcr.io/terway-py/terway:v$version"
BASE_REF=localhost/terway-testbed/debian:12
PAUSE_REF=localhost/terway-testbed/pause:1
BUSYBOX_REF=localhost/terway-testbed/busybox:1
log() { echo "images: $*" >&2; }

busybox_version="$(dpkg-query -W -f '${Version}' busybox-static)"
key="$( { cat "$root/deploy/Dockerfile" "$root/.dockerignore" "$root/pyproject.toml" \
              "$root/README.md" "$root/scripts/kube/pause.c" "$0"
          (cd "$root" && git ls-files -z terway | xargs -0 sha256sum)
          echo "$busybox_version"; } | sha256sum | cut -c1-16)"
out="$cache/images/$key"
if [ -f "$out/images.json" ]; then
    log "reusing $out (inputs unchanged)"
    echo "$out"
    exit 0
fi
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
start=$SECONDS

# The base: Debian 12 minbase, debootstrapped once per machine (apt works inside it).
base="$cache/base/debian-12"
if [ ! -f "$base.tar" ]; then
    log "debootstrap bookworm (minbase) ..."
    rm -rf "$base.rootfs" && mkdir -p "$(dirname "$base")"
    debootstrap --variant=minbase bookworm "$base.rootfs" http://deb.debian.org/debian >&2
    tar -C "$base.rootfs" -c . > "$base.tar.tmp" && mv "$base.tar.tmp" "$base.tar"
    rm -rf "$base.rootfs"
fi
podman image exists "$BASE_REF" || podman import -q "$base.tar" "$BASE_REF" >/dev/null

log "building $TERWAY_REF ..."
# The host's CA bundle goes in as a build volume (pip behind an intercepting proxy needs it).
podman build -q --network host --build-arg "BASE=$BASE_REF" \
    -v /etc/ssl/certs:/etc/ssl/host-certs:ro \
    --build-arg PIP_CERT=/etc/ssl/host-certs/ca-certificates.crt \
    -f "$root/deploy/Dockerfile" -t "$TERWAY_REF" "$root" >&2

log "building $PAUSE_REF and $BUSYBOX_REF ..."
mkdir -p "$work/pause" "$work/busybox/bin" "$work/busybox/etc" "$work/busybox/tmp"
gcc -static -Os -Wall -o "$work/pause/pause" "$root/scripts/kube/pause.c"
tar -C "$work/pause" -c pause | podman import -q --change 'ENTRYPOINT ["/pause"]' - "$PAUSE_REF" >/dev/null
cp /bin/busybox "$work/busybox/bin/busybox"
for applet in sh sleep cat echo ls ps ip ping nc httpd hostname wget env sed grep true; do
    ln -sf busybox "$work/busybox/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' > "$work/busybox/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$work/busybox/etc/group"
tar -C "$work/busybox" -c . | podman import -q --change 'CMD ["sh"]' \
    --change 'ENV PATH=/bin' - "$BUSYBOX_REF" >/dev/null

json="{"
for pair in "terway=$TERWAY_REF" "pause=$PAUSE_REF" "busybox=$BUSYBOX_REF"; do
    name="${pair%%=*}" ref="${pair#*=}"
    rm -f "$out/$name.tar"
    podman save -q --format docker-archive -o "$out/$name.tar" "$ref"
    size="$(podman image inspect --format '{{.Size}}' "$ref")"
    json+="\"$name\": {\"ref\": \"$ref\", \"archive\": \"$out/$name.tar\", \"size_bytes\": $size}, "
    log "$ref: $((size / 1024 / 1024)) MiB"
done
echo "${json%, }}" > "$out/images.json.tmp" && mv "$out/images.json.tmp" "$out/images.json"
log "built in $((SECONDS - start)) s: $out"
echo "$out"
