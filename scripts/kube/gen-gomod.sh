#!/usr/bin/env bash
# Regenerates go/k8s/go.mod for a Kubernetes release: require k8s.io/kubernetes VERSION and pin
# every k8s.io staging module it replaces with ./staging/... to the matching v0.Y.Z (the
# published copies of those directories). Then go mod tidy.  Usage: gen-gomod.sh v1.36.3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
v="${1:?usage: gen-gomod.sh vX.Y.Z}"
mod="$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')"
go_line="$(grep -m1 '^go ' "$mod")"
{
    printf 'module terway-testbed/kube\n\n%s\n\nrequire k8s.io/kubernetes %s\n\nreplace (\n' "$go_line" "$v"
    grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$mod" | awk -v s="v0${v#v1}" '{print "\t" $1 " => " $1 " " s}'
    printf ')\n'
} > "$here/go/k8s/go.mod"
(cd "$here/go/k8s" && go mod tidy)
echo "go/k8s/go.mod now pins k8s.io/kubernetes $v"
