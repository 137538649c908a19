#!/bin/sh
# One-shot job (temporalio/admin-tools), run once the Temporal server is healthy and before the
# service starts: creates the namespace (the plain server image creates none) and registers the
# search attributes operators filter on in the UI. The service registers missing attributes at
# boot too; doing it here as well keeps the UI's filters working before the first boot and lets a
# deployment whose service credentials cannot call the operator API work all the same.
set -eu
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_RETENTION:-72h}"
ADDRESS="${TEMPORAL_ADDRESS:-temporal:7233}"
HOST=${ADDRESS%:*}
PORT=${ADDRESS##*:}
# The CLI inside admin-tools may try an IPv6 address first and fail; use the IPv4 one when there is one.
IP=$(getent ahostsv4 "$HOST" 2>/dev/null | awk 'NR == 1 { print $1 }')
ADDRESS="${IP:-$HOST}:${PORT}"

tries=0
until temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "Temporal at ${ADDRESS} is not healthy" >&2; exit 1; }
  sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" --address "$ADDRESS" >/dev/null 2>&1; then
  echo "namespace ${NAMESPACE} exists"
else
  temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$ADDRESS"
fi

# A new namespace reaches every frontend's cache only after a few seconds: wait until it answers.
tries=0
until existing=$(temporal operator search-attribute list --namespace "$NAMESPACE" --address "$ADDRESS" 2>/dev/null); do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "namespace ${NAMESPACE} is not usable" >&2; exit 1; }
  sleep 2
done

# Keep in step with workflows/search-attributes.ts (test/ops/compose.test.ts checks it).
for name in RigId TownId CredentialSource DispatchStatus CredentialScope Repository; do
  if echo "$existing" | grep -qw "$name"; then
    echo "search attribute ${name} exists"
  else
    temporal operator search-attribute create --namespace "$NAMESPACE" --address "$ADDRESS" --name "$name" --type Keyword
  fi
done
