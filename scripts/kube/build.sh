#!/usr/bin/env bash
# Builds the upstream programs of the Kubernetes test bed from their Go modules, into a cache
# outside the repository keyed by the pins (and the Go version), and reuses it when nothing
# changed. Prints the bin directory as the last line of stdout.
#
#   scripts/kube/build.sh             # build or reuse; prints e.g. /var/cache/terway-py/kube/<key>/bin
#   TERWAY_KUBE_CACHE=/some/dir scripts/kube/build.sh
#
# What it builds (pins: K8S_VERSION, go/etcd/go.mod, HELM_VERSION below):
#   kube  one multicall binary (go/k8s): kube-apiserver, kube-controller-manager, kube-scheduler,
#         kubelet, kubectl (symlinks to it dispatch by name)
#   etcd  go.etcd.io/etcd/server/v3 through etcdmain (go/etcd)
#   helm  helm.sh/helm/v4/cmd/helm (go install: its module has no replace directives)
# go/k8s/go.mod is generated from k8s.io/kubernetes' own go.mod by scripts/kube/gen-gomod.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
K8S_VERSION="$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$here/go/k8s/go.mod")"
HELM_VERSION=v4.3.2
cache="${TERWAY_KUBE_CACHE:-/var/cache/terway-py/kube}"
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false

key="$( { go version; echo "k8s=$K8S_VERSION helm=$HELM_VERSION"
          cat "$here"/go/*/go.mod "$here"/go/*/go.sum "$here"/go/*/main.go; } | sha256sum | cut -c1-16)"
out="$cache/$key"
bin="$out/bin"
if [ -f "$out/.done" ]; then
    echo "kube-build: reusing $bin (cached; pins unchanged)" >&2
    echo "$bin"
    exit 0
fi
mkdir -p "$bin"
step() { local s=$SECONDS; echo "kube-build: $1 ..." >&2; shift; "$@"; echo "kube-build:   done in $((SECONDS - s)) s" >&2; }

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
ldk="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION \
 -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean"
build_kube() { (cd "$here/go/k8s" && go mod download all && go build -trimpath -ldflags "$ldk" -o "$bin/kube" .); }
build_etcd() { (cd "$here/go/etcd" && go mod download all && go build -trimpath -ldflags "-s -w" -o "$bin/etcd" .); }
build_helm() {
    GOBIN="$bin" go install -trimpath \
        -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
        "helm.sh/helm/v4/cmd/helm@$HELM_VERSION"
}
start=$SECONDS
step "kubernetes $K8S_VERSION (multicall: apiserver, controller-manager, scheduler, kubelet, kubectl)" build_kube
step "etcd" build_etcd
step "helm $HELM_VERSION" build_helm
for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl; do
    ln -sf kube "$bin/$c"
done
echo "built in $((SECONDS - start)) s on $(date -u +%FT%TZ)" > "$out/.done"
echo "kube-build: built $bin in $((SECONDS - start)) s" >&2
echo "$bin"
