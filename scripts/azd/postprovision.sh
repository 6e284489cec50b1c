#!/usr/bin/env bash
# azd postprovision hook: say what was provisioned, where alerts will go, and what is still
# missing. It changes nothing in Azure. azd exports the Bicep outputs as environment variables.
set -euo pipefail

: "${AZURE_RESOURCE_GROUP:?AZURE_RESOURCE_GROUP is not set: run azd provision first}"
: "${AZURE_STORAGE_ACCOUNT_NAME:?AZURE_STORAGE_ACCOUNT_NAME is not set: run azd provision first}"

channels="${AZURE_ALERT_CHANNELS:-outbox}"
container="${AZURE_STORAGE_CERT_CONTAINER:-certificates}"

echo "CA Rotation Watch provisioned in resource group ${AZURE_RESOURCE_GROUP}."
echo "  function app   ${AZURE_FUNCTION_APP_NAME:-?}"
echo "  uploads go to  https://${AZURE_STORAGE_ACCOUNT_NAME}.blob.core.windows.net/${container}"
echo "  alert channels ${channels}"
if [[ ",${channels}," == *",acs-email,"* ]]; then
  echo "  email sender   ${ALERT_EMAIL_FROM:-${AZURE_ACS_SENDER_ADDRESS:-?}}"
fi

if [[ "${channels}" == "outbox" ]]; then
  echo "WARNING: no Teams URL and no email recipients are set, so alerts only reach the outbox" >&2
  echo "         channel (a temporary folder on the instance). Set them and provision again:" >&2
  echo "           azd env set TEAMS_WEBHOOK_URL '<Workflows URL>'" >&2
  echo "           azd env set ALERT_EMAIL_TO 'ops@example.com'" >&2
  echo "           azd provision" >&2
fi
if [[ ",${channels}," == *",acs-email,"* && -z "${ALERT_EMAIL_TO:-}" && -z "${ALERT_EMAIL_ROUTES:-}" ]]; then
  echo "WARNING: acs-email is a channel but ALERT_EMAIL_TO and ALERT_EMAIL_ROUTES are empty." >&2
fi
if [[ ",${channels}," == *",teams,"* && -z "${TEAMS_WEBHOOK_URL:-}" ]]; then
  echo "WARNING: teams is a channel but TEAMS_WEBHOOK_URL is empty." >&2
fi
if [[ -z "${AZURE_PRINCIPAL_ID:-}" ]]; then
  echo "NOTE: AZURE_PRINCIPAL_ID is empty, so you got no data roles: az storage blob upload" >&2
  echo "      --auth-mode login will be refused until someone grants Storage Blob Data Contributor." >&2
else
  echo "Your account has Storage Blob Data Contributor (role assignments can take a few minutes)."
fi
