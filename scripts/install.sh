#!/usr/bin/env bash
# `make install`: what `make run` needs in the cluster in $KUBECONFIG, and
# nothing that runs there: the CRDs, the operator's namespace, the admission
# policies (minimum lifetime; the revoke finalizer on 1.36+) and the default TrustDomain. Idempotent.
#
# Everything is applied with Helm's field manager, so a later `helm install`
# (Helm 4 server-side applies) takes the fields over without a conflict even
# where its values differ. The policies and the TrustDomain are the chart's own
# objects as `make chart` rendered them into deploy/, with Helm's adoption
# metadata for the release $HELM_RELEASE in $POD_NAMESPACE (by default the names
# docs/install.md uses): that release adopts them instead of refusing them. An
# installed Helm release's objects are left to `helm upgrade`.
set -euo pipefail
cd "$(dirname "$0")/.."
KUBECTL="${KUBECTL:-$(command -v kubectl || echo "$(bash scripts/control-plane-build.sh)/kubectl")}"
NAMESPACE="${POD_NAMESPACE:-agent-identity-system}"
RELEASE="${HELM_RELEASE:-agent-identity-operator}"

"$KUBECTL" apply --server-side --force-conflicts --field-manager=helm -f crds/
# kubectl wait fails at once on a CRD whose status has no conditions yet (just created): try again within 60 s.
deadline=$((SECONDS + 60))
until "$KUBECTL" wait --for=condition=Established --timeout="$((deadline - SECONDS > 0 ? deadline - SECONDS : 1))s" \
    crd/agentidentities.agentidentity.dev crd/trustdomains.agentidentity.dev 2>/dev/null; do
  [ "$SECONDS" -ge "$deadline" ] && { echo "install: the CRDs were not Established within 60 s" >&2; exit 1; }
  sleep 1
done
"$KUBECTL" create namespace "$NAMESPACE" --dry-run=client -o yaml | "$KUBECTL" apply -f -

# Prints "<release> <namespace>" of an installed Helm release that owns an
# object of the file: the object names the release in Helm's annotations, and
# Helm keeps a record of the release (a Secret labelled owner=helm) there.
installed_owner() {
  local release ns
  while read -r release ns; do
    [ "$release" != "<none>" ] || continue
    if [ -n "$("$KUBECTL" get secrets -n "$ns" -l "owner=helm,name=$release" -o name)" ]; then
      echo "$release $ns"; return 0
    fi
  done < <("$KUBECTL" get -f "$1" --ignore-not-found --no-headers \
    -o 'custom-columns=RELEASE:.metadata.annotations.meta\.helm\.sh/release-name,NAMESPACE:.metadata.annotations.meta\.helm\.sh/release-namespace')
  return 1
}

# The revoke-finalizer MutatingAdmissionPolicy is served from Kubernetes 1.36 on;
# an older cluster gets the other objects (the operator adds the finalizer itself).
policies=deploy/admissionpolicy.yaml
served="$("$KUBECTL" get --raw /apis/admissionregistration.k8s.io/v1)"
if ! grep -q '"kind":"MutatingAdmissionPolicy"' <<<"$served"; then
  policies="$(mktemp)"
  trap 'rm -f "$policies"' EXIT
  awk 'function flush() { if (doc !~ /(^|\n)kind: MutatingAdmissionPolicy(Binding)?\n/) printf "---\n%s", doc; doc = "" }
       /^---$/ { flush(); next } { doc = doc $0 "\n" } END { flush() }' deploy/admissionpolicy.yaml > "$policies"
  echo "deploy/admissionpolicy.yaml: this cluster has no admissionregistration.k8s.io/v1 MutatingAdmissionPolicy (Kubernetes 1.36+), so the operator adds the revoke finalizer itself"
fi

for f in deploy/admissionpolicy.yaml deploy/trustdomains.yaml; do
  objects="$f"
  [ "$f" != deploy/admissionpolicy.yaml ] || objects="$policies"
  if owner="$(installed_owner "$objects")"; then
    echo "$f: left alone, the Helm release ${owner% *} in namespace ${owner#* } owns it (change it with helm upgrade)"
    continue
  fi
  "$KUBECTL" annotate --local -f "$objects" -o yaml \
    "meta.helm.sh/release-name=$RELEASE" "meta.helm.sh/release-namespace=$NAMESPACE" \
    | "$KUBECTL" apply --server-side --force-conflicts --field-manager=helm -f -
done
