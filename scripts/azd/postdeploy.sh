#!/usr/bin/env bash
# azd postdeploy hook: create (or update) the Event Grid subscription that feeds the blob
# trigger: BlobCreated events of the certificates container -> the blobs_extension webhook of
# the deployed function app. It runs after deploy because the webhook key (the host's
# blobs_extension system key) exists only once the deployed host has started.
# Idempotent: running it again updates the same subscription. Never prints the key.
set -euo pipefail

: "${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is not set: run azd provision first}"
: "${AZURE_FUNCTION_APP_NAME:?AZURE_FUNCTION_APP_NAME is not set: run azd provision first}"
: "${AZURE_EVENTGRID_SYSTEM_TOPIC_NAME:?AZURE_EVENTGRID_SYSTEM_TOPIC_NAME is not set: run azd provision first}"

if ! command -v az >/dev/null 2>&1; then
  echo "The Azure CLI (az) is needed to create the Event Grid subscription; install it, run" >&2
  echo "'az login', then 'azd hooks run postdeploy'." >&2
  exit 1
fi

rg="${AZURE_RESOURCE_GROUP}"
app="${AZURE_FUNCTION_APP_NAME}"
topic="${AZURE_EVENTGRID_SYSTEM_TOPIC_NAME}"
container="${AZURE_STORAGE_CERT_CONTAINER:-certificates}"
subscription_name="${EVENTGRID_SUBSCRIPTION_NAME:-certificates-blob-created}"
az_sub=()
if [[ -n "${AZURE_SUBSCRIPTION_ID:-}" ]]; then
  az_sub=(--subscription "${AZURE_SUBSCRIPTION_ID}")
fi

# The blob-triggered function of function_app.py (tests/test_infra.py pins the name).
function_name="${BLOB_FUNCTION_NAME:-analyze_upload}"
key=""
for attempt in $(seq 1 18); do
  key="$(az functionapp keys list -g "${rg}" -n "${app}" ${az_sub[@]+"${az_sub[@]}"} \
    --query "systemKeys.blobs_extension" -o tsv 2>/dev/null || true)"
  if [[ -n "${key}" ]]; then
    break
  fi
  echo "Waiting for the deployed host to create its blobs_extension key (${attempt}/18)..."
  sleep 10
done
if [[ -z "${key}" ]]; then
  echo "The blobs_extension system key of ${app} does not exist yet (the host creates it when it" >&2
  echo "first loads the blob trigger). Run 'azd hooks run postdeploy' again in a minute." >&2
  exit 1
fi

host="${AZURE_FUNCTION_APP_HOSTNAME:-}"
if [[ -z "${host}" ]]; then
  host="$(az functionapp show -g "${rg}" -n "${app}" ${az_sub[@]+"${az_sub[@]}"} --query defaultHostName -o tsv)"
fi
endpoint="https://${host}/runtime/webhooks/blobs?functionName=Host.Functions.${function_name}&code=${key}"

echo "Subscribing ${function_name} to BlobCreated in container '${container}' (topic ${topic})..."
az eventgrid system-topic event-subscription create \
  --name "${subscription_name}" \
  --resource-group "${rg}" \
  --system-topic-name "${topic}" \
  ${az_sub[@]+"${az_sub[@]}"} \
  --endpoint-type webhook \
  --endpoint "${endpoint}" \
  --included-event-types Microsoft.Storage.BlobCreated \
  --subject-begins-with "/blobServices/default/containers/${container}/" \
  --max-delivery-attempts 30 \
  --event-ttl 1440 \
  --only-show-errors --output none
echo "Event Grid subscription '${subscription_name}' is ready: uploads to '${container}' now reach ${function_name}."
