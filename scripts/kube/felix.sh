#!/usr/bin/env bash
# Builds Calico Felix (`calico-felix`, the NetworkPolicy enforcer of the DaemonSet's `policy`
# container, as upstream Terway's policy image has it) from the Go module of Calico's monorepo,
# into a cache outside the repository keyed by the pin and the Go version, and reuses it when
# nothing changed. Prints the directory holding `calico-felix` as the last line of stdout.
#
#   scripts/kube/felix.sh             # build or reuse; e.g. /var/cache/terway-py/kube/felix-<key>
#   podman build --build-context felix="$(scripts/kube/felix.sh)" -f deploy/Dockerfile .
#
# Calico's tags (v3.x) are not valid Go module versions for github.com/projectcalico/calico, so
# the module is pinned by the pseudo-version of the commit tagged v3.31.0. Its go.mod replaces
# two nested modules with local directories the module zip leaves out (./api, ./lib/std); they
# are pointed at the same release's published modules instead (`go mod edit -replace`), which
# is the only change: the source is built as released, CGO off (no BPF loader), as upstream.
set -euo pipefail
CALICO_TAG=v3.31.0
CALICO_MODULE=github.com/projectcalico/calico
CALICO_VERSION=v0.0.0-20251021213802-b1f3c43f8437       # the commit tagged v3.31.0
API_VERSION=v0.0.0-20251022175904-f2ab03771208          # github.com/projectcalico/api of v3.31.0
STD_VERSION=$CALICO_VERSION                             # .../calico/lib/std, same commit
cache="${TERWAY_KUBE_CACHE:-/var/cache/terway-py/kube}"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
log() { echo "felix-build: $*" >&2; }

command -v go >/dev/null || { log "needs the Go toolchain (go on PATH)"; exit 1; }
key="$( { go version; echo "$CALICO_VERSION $API_VERSION $STD_VERSION"; cat "$0"; } \
        | sha256sum | cut -c1-16)"
out="$cache/felix-$key"
if [ -x "$out/calico-felix" ]; then
    log "reusing $out (cached; pin unchanged)"
    echo "$out"
    exit 0
fi
mkdir -p "$cache"
exec 9>"$cache/.felix.lock"
flock 9
if [ -x "$out/calico-felix" ]; then echo "$out"; exit 0; fi
start=$SECONDS
work="$(mktemp -d)"
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
log "downloading $CALICO_MODULE@$CALICO_VERSION ($CALICO_TAG) ..."
src="$(cd "$work" && go mod download -json "$CALICO_MODULE@$CALICO_VERSION" \
       | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
[ -d "$src" ] || { log "go mod download gave no directory for $CALICO_MODULE@$CALICO_VERSION"; exit 1; }
cp -r "$src" "$work/calico" && chmod -R u+w "$work/calico"
cd "$work/calico"
go mod edit \
    -replace "github.com/projectcalico/api=github.com/projectcalico/api@$API_VERSION" \
    -replace "$CALICO_MODULE/lib/std=$CALICO_MODULE/lib/std@$STD_VERSION" \
    -dropreplace "$CALICO_MODULE/lib/httpmachinery"
log "building calico-felix (several minutes on 2 CPUs when the module cache is cold) ..."
mkdir -p "$out.tmp"
go build -mod=mod -trimpath \
    -ldflags "-s -w -X $CALICO_MODULE/pkg/buildinfo.Version=$CALICO_TAG" \
    -o "$out.tmp/calico-felix" ./felix/cmd/calico-felix
rm -rf "$out" && mv "$out.tmp" "$out"
log "built $out/calico-felix in $((SECONDS - start)) s"
echo "$out"
