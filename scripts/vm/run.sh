#!/usr/bin/env bash
# Boot the qemu guest and run the IPVLAN tests in it, streaming its console (docs/vm.md).
#   scripts/vm/run.sh                      # the default guest tests
#   scripts/vm/run.sh tests/vm/test_ipvlan_guest.py -k two_pods
#   TERWAY_VM_ACCEL=tcg scripts/vm/run.sh  # force software emulation (kvm: force KVM)
# Needs root and scripts/vm/install.sh. Console log: out/vm/console.log.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 tests/vm/guest.py "$@"
