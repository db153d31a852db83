#!/bin/sh
# One-shot job (temporalio/admin-tools), run once the Temporal server is healthy: creates
# Winback's namespace if it is missing and registers the custom search attributes its workflows
# upsert (a workflow that upserts an unregistered attribute fails its workflow task).
# Safe to run again: an existing namespace is kept as it is, and `search-attribute create`
# skips attributes that already exist with the same type and fails on a different type.
set -eu

: "${TEMPORAL_ADDRESS:=temporal:7233}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_NAMESPACE_RETENTION:=30d}"
# Space-separated Name=Type pairs.
: "${WINBACK_SEARCH_ATTRIBUTES:?WINBACK_SEARCH_ATTRIBUTES must list Name=Type pairs}"

retry() {
  what=$1
  shift
  attempt=1
  until "$@"; do
    if [ "$attempt" -ge 30 ]; then
      echo "gave up: $what" >&2
      return 1
    fi
    attempt=$((attempt + 1))
    sleep 2
  done
}

echo "Waiting for Temporal at $TEMPORAL_ADDRESS"
retry "Temporal at $TEMPORAL_ADDRESS is not serving" \
  temporal operator cluster health --address "$TEMPORAL_ADDRESS"

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
  --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "Namespace $TEMPORAL_NAMESPACE exists"
else
  echo "Creating namespace $TEMPORAL_NAMESPACE (retention $TEMPORAL_NAMESPACE_RETENTION)"
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" --retention "$TEMPORAL_NAMESPACE_RETENTION"
fi

set --
for pair in $WINBACK_SEARCH_ATTRIBUTES; do
  set -- "$@" --name "${pair%%=*}" --type "${pair#*=}"
done
# A namespace that was just created can take a few seconds to reach every cache.
echo "Registering search attributes: $WINBACK_SEARCH_ATTRIBUTES"
retry "search attributes could not be registered" \
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
  --namespace "$TEMPORAL_NAMESPACE" "$@"

temporal operator search-attribute list --address "$TEMPORAL_ADDRESS" \
  --namespace "$TEMPORAL_NAMESPACE"
