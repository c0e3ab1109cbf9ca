#!/usr/bin/env bash
# End-to-end on kind, for machines with Docker and kind (it cannot run where there is no Docker
# engine). Creates a cluster, builds and loads the image, runs the simulator in the cluster,
# installs the chart pointed at it, and runs the volume scenario against the operator's pod.
#
#   bash hack/e2e-kind.sh            # KEEP=1 keeps the cluster afterwards
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
cluster="${CLUSTER:-barrack-e2e}"
image="barrack-operator:e2e"
ns=barrack-system
key="e2e-key-not-secret"

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "e2e-kind needs $tool on PATH" >&2; exit 2; }
done
cleanup() { [[ "${KEEP:-0}" == 1 ]] || kind delete cluster --name "$cluster"; }
trap cleanup EXIT

kind create cluster --name "$cluster" --wait 120s
docker build -t "$image" .
kind load docker-image "$image" --name "$cluster"

kubectl create namespace "$ns"
# The simulator runs from the same image: `barrack-operator sim`.
kubectl -n "$ns" apply -f - <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: barrack-sim}
spec:
  selector: {matchLabels: {app: barrack-sim}}
  template:
    metadata: {labels: {app: barrack-sim}}
    spec:
      securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: sim
          image: $image
          imagePullPolicy: Never
          args: [sim, --host, 0.0.0.0, --port, "8765", --api-key, $key, --transition-seconds, "3"]
          ports: [{containerPort: 8765}]
          securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
---
apiVersion: v1
kind: Service
metadata: {name: barrack-sim}
spec:
  selector: {app: barrack-sim}
  ports: [{port: 8765}]
YAML
kubectl -n "$ns" rollout status deployment/barrack-sim --timeout=120s

helm install barrack-operator charts/barrack-operator -n "$ns" \
  --set image.repository=barrack-operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set apiUrl="http://barrack-sim.$ns.svc:8765/api" --set apiKey.value="$key" \
  --set watchNamespaces='{default}' --wait --timeout 180s

# The e2e subset: the complete sample to Ready, a blocked detach and its resolution, deletion.
kubectl apply -n default -f deploy/samples/complete.yaml
kubectl wait -n default --for=condition=Ready barrack --all --timeout=180s
kubectl patch -n default bvol datasets --type=json -p '[{"op": "remove", "path": "/spec/instanceRef"}]'
kubectl wait -n default --for=jsonpath='{.status.conditions[?(@.type=="Synced")].reason}'=DetachBlocked \
  bvol/datasets --timeout=60s
kubectl patch -n default binst trainer --type=merge -p '{"spec": {"powerState": "Stopped"}}'
kubectl wait -n default --for=condition=Attached=False bvol/datasets --timeout=120s
kubectl delete -n default -f deploy/samples/complete.yaml --timeout=180s
kubectl get barrack -A
echo "e2e on kind passed"
