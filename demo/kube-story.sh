#!/usr/bin/env bash
# The seeds' IpNotEnough story on a real Kubernetes cluster, told through kubectl only.
#
#   sudo bash demo/kube-story.sh            # ~3 minutes warm (binaries and images cached)
#
# 1. a cluster of upstream components on emulated ECS instances (python -m emulator.cluster up),
#    the plugin deployed as DaemonSet terway-eniip; the pods' vSwitch is a /27;
# 2. a Deployment scales to 30 pods: the vSwitch runs dry, pods stay ContainerCreating;
# 3. kubectl describe pod / kubectl logs -c terway show what the seeds show;
# 4. the remedy: a same-zone /19 vSwitch (official VPC SDK), kubectl edit cm eni-config,
#    kubectl delete pod -l app=terway-eniip; every pod Running, the new ones from the /19.
# The cluster is torn down at the end (or on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKDIR=/var/lib/terway-testbed/demo
show() { printf '\n\033[1m$ %s\033[0m\n' "$*"; "$@"; }

python3 -m emulator.cluster up --workdir "$WORKDIR" &
cluster=$!
trap 'kill -TERM $cluster 2>/dev/null; wait $cluster' EXIT
until [ -e "$WORKDIR/ready" ]; do
    kill -0 $cluster 2>/dev/null || { echo "cluster failed to come up" >&2; exit 1; }
    sleep 1
done
# shellcheck disable=SC1091
source "$WORKDIR/env"

show kubectl get nodes -o wide
show kubectl -n kube-system get ds terway-eniip
show kubectl create deployment story --image=localhost/terway-testbed/busybox:1 --replicas=30 \
    -- sh -c 'httpd -f -p 8080'
echo "... waiting for the vSwitch to run out"
for _ in $(seq 90); do
    # (awk, not head or grep -q: with pipefail, a reader that stops early fails the pipe)
    pending=$(kubectl get pods -l app=story --field-selector=status.phase=Pending -o name | awk 'NR == 1')
    [ -n "$pending" ] && kubectl describe "$pending" | grep "error allocate ip" >/dev/null && break
    sleep 2
done
show kubectl get pods -l app=story -o wide
show kubectl describe "$pending"
node=$(kubectl get "$pending" -o jsonpath='{.spec.nodeName}')
terway=$(kubectl -n kube-system get pod -l app=terway-eniip --field-selector "spec.nodeName=$node" -o name)
echo; echo "\$ kubectl -n kube-system logs $terway -c terway | grep 'Assign private ip address failed' | tail -2"
kubectl -n kube-system logs "$terway" -c terway | grep "Assign private ip address failed" | tail -2

echo; echo "# the remedy: a /19 vSwitch in the same zone, with the official VPC SDK"
new=$(python3 - <<'PY'
import os
from alibabacloud_tea_openapi.models import Config
from alibabacloud_vpc20160428.client import Client
from alibabacloud_vpc20160428.models import CreateVSwitchRequest
from emulator.wire.signature import DEFAULT_ACCESS_KEY_ID, DEFAULT_ACCESS_KEY_SECRET
c = Client(Config(access_key_id=DEFAULT_ACCESS_KEY_ID, access_key_secret=DEFAULT_ACCESS_KEY_SECRET,
                  endpoint=os.environ["TERWAY_EMULATOR_ENDPOINT"], protocol="http",
                  region_id=os.environ["TERWAY_REGION"]))
r = c.create_vswitch(CreateVSwitchRequest(region_id=os.environ["TERWAY_REGION"],
    vpc_id=os.environ["TERWAY_VPC"], zone_id=os.environ["TERWAY_ZONE"],
    cidr_block="192.168.32.0/19", v_switch_name="remedy"))
print(r.body.v_switch_id)
PY
)
echo "created $new (192.168.32.0/19)"
show env EDITOR="python3 tests/kube/edit_eni_config.py" TERWAY_ADD_VSWITCH="$new" \
    kubectl -n kube-system edit cm eni-config
show kubectl -n kube-system delete pod -l app=terway-eniip
show kubectl rollout status deployment/story --timeout=300s
show kubectl get pods -l app=story -o wide
