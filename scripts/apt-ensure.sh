#!/usr/bin/env bash
# Installs the Debian packages among its arguments that are not installed yet (as root).
#   scripts/apt-ensure.sh TAG PACKAGE...      (TAG prefixes the one line it prints)
set -euo pipefail
tag="$1"; shift
missing=()
for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "$tag: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
