#!/usr/bin/env bash
# azd postprovision hook: say what was provisioned, where alerts will go, and what is still
# missing. azd exports the Bicep outputs as environment variables.
# The changes it makes in Azure (idempotent), for the live readers (docs/deploy.md, "Who can do
# what"): on each REGISTRATION_TARGETS hub / DPS the app's identity gets the custom
# registration reader role (its two certificate reads, infra/app/reader-role.bicep), on each
# DPS also Device Provisioning Service Data Reader (enrollment groups); on each SPHERE_CATALOGS
# catalog Azure Sphere Reader; in each IOT_CENTRAL_APPS app it becomes an app user (Operator).
# Those live in other resource groups, subscriptions or apps than this deployment, so Bicep
# cannot; where the deployer may not, the hook prints the exact command and carries on.
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
  echo "      --auth-mode login will be refused until someone grants Storage Blob Data Contributor" >&2
  echo "      on the ${container} container (docs/deploy.md, \"Add people\")." >&2
else
  echo "Your account may upload to '${container}' and read the report (role assignments can take a few minutes)."
fi

# --- the live readers' roles ---------------------------------------------------------------
# Built-in role ids (the same in every tenant), from Microsoft's built-in roles list:
dps_data_reader="10745317-c249-44a1-a5ce-3a4353c0bbd8"   # Device Provisioning Service Data Reader
sphere_reader="c8ae6279-5a0b-4cb2-b3f0-d4d62845742c"     # Azure Sphere Reader
# IoT Central's built-in app role "Operator" (GET /api/roles); IOT_CENTRAL_USER_ROLE overrides it.
central_role="${IOT_CENTRAL_USER_ROLE:-ae2c9854-393b-4f97-8c42-479d70ce626e}"

targets="${AZURE_REGISTRATION_TARGETS:-}"
catalogs="${AZURE_SPHERE_CATALOGS:-}"
apps="${AZURE_IOT_CENTRAL_APPS:-}"
if [[ -z "${targets//[[:space:],]/}" && -z "${catalogs//[[:space:],]/}" && -z "${apps//[[:space:],]/}" ]]; then
  exit 0
fi
principal="${AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID:-}"
if [[ -z "${principal}" ]]; then
  echo "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID is not set: run azd provision first." >&2
  exit 1
fi
if ! command -v az >/dev/null 2>&1; then
  echo "WARNING: the Azure CLI (az) is needed to grant the app its roles on REGISTRATION_TARGETS," >&2
  echo "         SPHERE_CATALOGS and IOT_CENTRAL_APPS; install it, run 'az login', then" >&2
  echo "         'azd hooks run postprovision'." >&2
  exit 0
fi
shopt -s nocasematch  # ARM resource ids are case-insensitive
not_granted=0

# grant ROLE LABEL SCOPE: assign ROLE to the app's identity at SCOPE unless it holds it.
grant() {
  local role="$1" label="$2" scope="$3" held
  held="$(az role assignment list --scope "${scope}" --role "${role}" \
    --query "length([?principalId=='${principal}'])" -o tsv --only-show-errors 2>/dev/null || true)"
  if [[ "${held}" =~ ^[1-9] ]]; then
    echo "  ${label} on ${scope}: already granted"
    return 0
  fi
  if az role assignment create --assignee-object-id "${principal}" \
    --assignee-principal-type ServicePrincipal --role "${role}" --scope "${scope}" \
    --only-show-errors --output none; then
    echo "  ${label} on ${scope}: granted (can take a few minutes to apply)"
    return 0
  fi
  echo "WARNING: could not grant ${label} on ${scope} (you need Owner, User Access" >&2
  echo "         Administrator or Role Based Access Control Administrator there). Ask someone who" >&2
  echo "         has it to run:" >&2
  echo "           az role assignment create --assignee-object-id ${principal} --assignee-principal-type ServicePrincipal --role ${role} --scope ${scope}" >&2
  not_granted=$((not_granted + 1))
  return 1
}

# ids_matching SETTING LIST PATTERN WHAT: the entries of the comma LIST that match PATTERN,
# in ids[]; every other entry is named (it is not WHAT) and counted as not granted.
ids_matching() {
  local setting="$1" pattern="$3" what="$4" entry raw
  ids=()
  IFS=',' read -r -a raw <<< "$2"
  for entry in "${raw[@]}"; do
    entry="${entry//[[:space:]]/}"
    [[ -z "${entry}" ]] && continue
    if [[ "${entry}" =~ ${pattern} ]]; then
      ids+=("${entry}")
      continue
    fi
    echo "WARNING: ${setting} entry '${entry}' is not ${what}; skipped." >&2
    not_granted=$((not_granted + 1))
  done
  return 0
}

# Hubs and DPS: the custom role's two certificate reads; a DPS also its enrollment groups.
if [[ -n "${targets//[[:space:],]/}" ]]; then
  reader_role="${AZURE_REGISTRATION_READER_ROLE_ID:-}"
  if [[ -z "${reader_role}" ]]; then
    echo "AZURE_REGISTRATION_READER_ROLE_ID is not set: run azd provision first." >&2
    exit 1
  fi
  ids_matching REGISTRATION_TARGETS "${targets}" \
    '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Devices/(IotHubs|provisioningServices)/[^/]+$' \
    "an IoT Hub or DPS resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Devices/IotHubs/<name> or .../provisioningServices/<name>)"
  for target in ${ids[@]+"${ids[@]}"}; do
    grant "${reader_role}" "Registration reader (certificate lists)" "${target}" || continue
    if [[ "${target}" == */provisioningServices/* ]]; then
      grant "${dps_data_reader}" "Device Provisioning Service Data Reader" "${target}" || true
    fi
    # Earlier versions granted Reader, which reads far more than certificates.
    held="$(az role assignment list --scope "${target}" --role Reader \
      --query "length([?principalId=='${principal}'])" -o tsv --only-show-errors 2>/dev/null || true)"
    if [[ "${held}" =~ ^[1-9] ]]; then
      echo "NOTE: the app still holds Reader on ${target} from an earlier version; it needs no more" >&2
      echo "      than the role above. Remove it: az role assignment delete --assignee ${principal} --role Reader --scope ${target}" >&2
    fi
  done
fi

# Azure Sphere catalogs: Azure Sphere Reader (plain Reader does not work for Sphere).
if [[ -n "${catalogs//[[:space:],]/}" ]]; then
  ids_matching SPHERE_CATALOGS "${catalogs}" \
    '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.AzureSphere/catalogs/[^/]+$' \
    "an Azure Sphere catalog resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.AzureSphere/catalogs/<name>)"
  for catalog in ${ids[@]+"${ids[@]}"}; do
    grant "${sphere_reader}" "Azure Sphere Reader" "${catalog}" || true
  done
fi

# IoT Central: the identity becomes an app user through the app's users API (needs the
# deployer to be an Administrator of the app).
if [[ -n "${apps//[[:space:],]/}" ]]; then
  template="${AZURE_IOT_CENTRAL_ENDPOINT:-}"  # (a default here would end at the first `}`)
  [[ -n "${template}" ]] || template='https://{name}.azureiotcentral.com'
  tenant="${AZURE_TENANT_ID:-}"
  ids_matching IOT_CENTRAL_APPS "${apps}" '^([a-z0-9][a-z0-9-]*|https?://.+)$' \
    "an app subdomain or a URL"
  for app in ${ids[@]+"${ids[@]}"}; do
    if [[ "${app}" == *://* ]]; then
      base="${app%/}"
    else
      base="${template//\{name\}/${app}}"
    fi
    url="${base}/api/users/${principal}?api-version=2022-07-31"
    if az rest --method get --url "${url}" --resource https://apps.azureiotcentral.com \
      --only-show-errors --output none >/dev/null 2>&1; then
      echo "  IoT Central user in ${base}: already added"
      continue
    fi
    body="{\"type\": \"servicePrincipal\", \"objectId\": \"${principal}\", \"tenantId\": \"${tenant}\", \"roles\": [{\"role\": \"${central_role}\"}]}"
    if az rest --method put --url "${url}" --resource https://apps.azureiotcentral.com \
      --headers Content-Type=application/json --body "${body}" --only-show-errors --output none; then
      echo "  IoT Central user in ${base}: added (role ${central_role})"
    else
      echo "WARNING: could not add the app's identity as a user of ${base} (you need the" >&2
      echo "         Administrator role in that app). In the app, Permissions > Users > Assign user >" >&2
      echo "         Service principal, choose the identity ${principal} with the Operator role; or ask an" >&2
      echo "         administrator to run:" >&2
      echo "           az rest --method put --url '${url}' --resource https://apps.azureiotcentral.com --headers Content-Type=application/json --body '${body}'" >&2
      not_granted=$((not_granted + 1))
    fi
  done
fi

if [[ "${not_granted}" -gt 0 ]]; then
  echo "WARNING: ${not_granted} registration target(s), catalog(s) or app(s) cannot be read yet; the" >&2
  echo "         daily self-health alert names each one until it can." >&2
fi
exit 0
