#!/usr/bin/env bash
# `make install`: the CRDs, the operator's namespace and a default TrustDomain,
# applied to the cluster in $KUBECONFIG. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBECTL="${KUBECTL:-$(command -v kubectl || echo "$(bash scripts/control-plane-build.sh)/kubectl")}"
NAMESPACE="${POD_NAMESPACE:-agent-identity-system}"
"$KUBECTL" apply --server-side --force-conflicts -f crds/
"$KUBECTL" apply --server-side --force-conflicts -f config/admission/
"$KUBECTL" wait --for=condition=Established --timeout=60s crd/agentidentities.agentidentity.dev crd/trustdomains.agentidentity.dev
"$KUBECTL" create namespace "$NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f -
"$KUBECTL" apply -f examples/trustdomain-default.yaml
