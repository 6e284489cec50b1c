# azd postprovision hook (Windows): say what was provisioned, where alerts will go, and what is
# still missing. azd exports the Bicep outputs as environment variables. Same behaviour as
# postprovision.sh, including its one change in Azure: Reader for the app's identity on each
# REGISTRATION_TARGETS entry (those targets live outside this deployment's resource group).
$ErrorActionPreference = 'Stop'

if (-not $env:AZURE_RESOURCE_GROUP -or -not $env:AZURE_STORAGE_ACCOUNT_NAME) {
    throw 'AZURE_RESOURCE_GROUP / AZURE_STORAGE_ACCOUNT_NAME are not set: run azd provision first'
}
$channels = if ($env:AZURE_ALERT_CHANNELS) { $env:AZURE_ALERT_CHANNELS } else { 'outbox' }
$container = if ($env:AZURE_STORAGE_CERT_CONTAINER) { $env:AZURE_STORAGE_CERT_CONTAINER } else { 'certificates' }
$list = $channels.Split(',') | ForEach-Object { $_.Trim() }

Write-Host "CA Rotation Watch provisioned in resource group $($env:AZURE_RESOURCE_GROUP)."
Write-Host "  function app   $($env:AZURE_FUNCTION_APP_NAME)"
Write-Host "  uploads go to  https://$($env:AZURE_STORAGE_ACCOUNT_NAME).blob.core.windows.net/$container"
Write-Host "  alert channels $channels"
if ($list -contains 'acs-email') {
    $sender = if ($env:ALERT_EMAIL_FROM) { $env:ALERT_EMAIL_FROM } else { $env:AZURE_ACS_SENDER_ADDRESS }
    Write-Host "  email sender   $sender"
}
if ($channels -eq 'outbox') {
    Write-Warning ("No Teams URL and no email recipients are set, so alerts only reach the outbox " +
        "channel (a temporary folder on the instance). Set them and provision again: " +
        "azd env set TEAMS_WEBHOOK_URL '<Workflows URL>'; azd env set ALERT_EMAIL_TO 'ops@example.com'; azd provision")
}
if (($list -contains 'acs-email') -and -not $env:ALERT_EMAIL_TO -and -not $env:ALERT_EMAIL_ROUTES) {
    Write-Warning 'acs-email is a channel but ALERT_EMAIL_TO and ALERT_EMAIL_ROUTES are empty.'
}
if (($list -contains 'teams') -and -not $env:TEAMS_WEBHOOK_URL) {
    Write-Warning 'teams is a channel but TEAMS_WEBHOOK_URL is empty.'
}
if (-not $env:AZURE_PRINCIPAL_ID) {
    Write-Warning ('AZURE_PRINCIPAL_ID is empty, so you got no data roles: az storage blob upload ' +
        '--auth-mode login will be refused until someone grants Storage Blob Data Contributor.')
} else {
    Write-Host 'Your account has Storage Blob Data Contributor (role assignments can take a few minutes).'
}

# --- Reader on the registration targets (REGISTRATION_TARGETS -> AZURE_REGISTRATION_TARGETS) ---
$targets = @()
if ($env:AZURE_REGISTRATION_TARGETS) {
    $targets = $env:AZURE_REGISTRATION_TARGETS.Split(',') | ForEach-Object { $_ -replace '\s', '' } | Where-Object { $_ }
}
if ($targets.Count -gt 0) {
    $principal = $env:AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID
    if (-not $principal) { throw 'AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID is not set: run azd provision first' }
    if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
        Write-Warning ('The Azure CLI (az) is needed to grant the app Reader on REGISTRATION_TARGETS; ' +
            "install it, run 'az login', then 'azd hooks run postprovision'.")
        exit 0
    }
    # ARM resource ids are case-insensitive; PowerShell's -match is too.
    $idPattern = '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Devices/(IotHubs|provisioningServices)/[^/]+$'
    $notGranted = 0
    foreach ($target in $targets) {
        if ($target -notmatch $idPattern) {
            Write-Warning ("REGISTRATION_TARGETS entry '$target' is not an IoT Hub or DPS resource id " +
                '(/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Devices/IotHubs/<name> or .../provisioningServices/<name>); skipped.')
            $notGranted++
            continue
        }
        $held = az role assignment list --scope $target --role Reader `
            --query "length([?principalId=='$principal'])" -o tsv --only-show-errors 2>$null
        if ($LASTEXITCODE -eq 0 -and [int]("0$held".Trim()) -gt 0) {
            Write-Host "  Reader on ${target}: already granted"
            continue
        }
        az role assignment create --assignee-object-id $principal `
            --assignee-principal-type ServicePrincipal --role Reader --scope $target `
            --only-show-errors --output none
        if ($LASTEXITCODE -eq 0) {
            Write-Host "  Reader on ${target}: granted (can take a few minutes to apply)"
        } else {
            Write-Warning ("Could not grant Reader on $target (you need Owner, User Access Administrator or " +
                'Role Based Access Control Administrator there). Ask someone who has it to run: ' +
                "az role assignment create --assignee-object-id $principal --assignee-principal-type ServicePrincipal --role Reader --scope $target")
            $notGranted++
        }
    }
    if ($notGranted -gt 0) {
        Write-Warning ("$notGranted registration target(s) cannot be read yet; the daily self-health " +
            'alert names each one until it can.')
    }
}
exit 0
