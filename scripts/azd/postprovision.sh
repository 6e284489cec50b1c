#!/usr/bin/env bash
# azd postprovision hook: say what was provisioned, where alerts will go, and what is still
# missing. azd exports the Bicep outputs as environment variables.
# The one change it makes in Azure: when REGISTRATION_TARGETS lists IoT Hub / DPS resources,
# it grants the app's identity Reader on each (idempotent). The targets usually live in other
# resource groups or subscriptions, outside what this deployment may touch, so Bicep cannot.
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

# --- Reader on the registration targets (REGISTRATION_TARGETS -> AZURE_REGISTRATION_TARGETS) ---
targets="${AZURE_REGISTRATION_TARGETS:-}"
if [[ -n "${targets//[[:space:],]/}" ]]; then
  principal="${AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID:-}"
  if [[ -z "${principal}" ]]; then
    echo "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID is not set: run azd provision first." >&2
    exit 1
  fi
  if ! command -v az >/dev/null 2>&1; then
    echo "WARNING: the Azure CLI (az) is needed to grant the app Reader on REGISTRATION_TARGETS;" >&2
    echo "         install it, run 'az login', then 'azd hooks run postprovision'." >&2
    exit 0
  fi
  shopt -s nocasematch  # ARM resource ids are case-insensitive
  id_pattern='^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Devices/(IotHubs|provisioningServices)/[^/]+$'
  not_granted=0
  IFS=',' read -r -a entries <<< "${targets}"
  for entry in "${entries[@]}"; do
    target="${entry//[[:space:]]/}"
    [[ -z "${target}" ]] && continue
    if [[ ! "${target}" =~ ${id_pattern} ]]; then
      echo "WARNING: REGISTRATION_TARGETS entry '${target}' is not an IoT Hub or DPS resource id" >&2
      echo "         (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Devices/IotHubs/<name>" >&2
      echo "         or .../provisioningServices/<name>); skipped." >&2
      not_granted=$((not_granted + 1))
      continue
    fi
    held="$(az role assignment list --scope "${target}" --role Reader \
      --query "length([?principalId=='${principal}'])" -o tsv --only-show-errors 2>/dev/null || true)"
    if [[ "${held}" =~ ^[1-9] ]]; then
      echo "  Reader on ${target}: already granted"
      continue
    fi
    if az role assignment create --assignee-object-id "${principal}" \
      --assignee-principal-type ServicePrincipal --role Reader --scope "${target}" \
      --only-show-errors --output none; then
      echo "  Reader on ${target}: granted (can take a few minutes to apply)"
    else
      echo "WARNING: could not grant Reader on ${target} (you need Owner, User Access" >&2
      echo "         Administrator or Role Based Access Control Administrator there). Ask someone who" >&2
      echo "         has it to run:" >&2
      echo "           az role assignment create --assignee-object-id ${principal} --assignee-principal-type ServicePrincipal --role Reader --scope ${target}" >&2
      not_granted=$((not_granted + 1))
    fi
  done
  if [[ "${not_granted}" -gt 0 ]]; then
    echo "WARNING: ${not_granted} registration target(s) cannot be read yet; the daily self-health" >&2
    echo "         alert names each one until it can." >&2
  fi
fi
