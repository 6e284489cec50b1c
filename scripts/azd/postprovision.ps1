# azd postprovision hook (Windows): say what was provisioned, where alerts will go, and what is
# still missing. azd exports the Bicep outputs as environment variables. Same behaviour as
# postprovision.sh, including its changes in Azure for the live readers: the registration
# reader role (and, on a DPS, Device Provisioning Service Data Reader) on each
# REGISTRATION_TARGETS entry, Azure Sphere Reader on each SPHERE_CATALOGS entry, and an app
# user (Operator) in each IOT_CENTRAL_APPS app. Those live outside this deployment.
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
        "--auth-mode login will be refused until someone grants Storage Blob Data Contributor on the $container container (docs/deploy.md, 'Add people').")
} else {
    Write-Host "Your account may upload to '$container' and read the report (role assignments can take a few minutes)."
}

# --- the live readers' roles ---------------------------------------------------------------
# Built-in role ids (the same in every tenant), from Microsoft's built-in roles list:
$dpsDataReader = '10745317-c249-44a1-a5ce-3a4353c0bbd8'   # Device Provisioning Service Data Reader
$sphereReader = 'c8ae6279-5a0b-4cb2-b3f0-d4d62845742c'    # Azure Sphere Reader
# IoT Central's built-in app role "Operator" (GET /api/roles); IOT_CENTRAL_USER_ROLE overrides it.
$centralRole = if ($env:IOT_CENTRAL_USER_ROLE) { $env:IOT_CENTRAL_USER_ROLE } else { 'ae2c9854-393b-4f97-8c42-479d70ce626e' }

function Get-Entries([string]$list) {
    if (-not $list) { return @() }
    return @($list.Split(',') | ForEach-Object { $_ -replace '\s', '' } | Where-Object { $_ })
}
$targets = Get-Entries $env:AZURE_REGISTRATION_TARGETS
$catalogs = Get-Entries $env:AZURE_SPHERE_CATALOGS
$apps = Get-Entries $env:AZURE_IOT_CENTRAL_APPS
if ($targets.Count -eq 0 -and $catalogs.Count -eq 0 -and $apps.Count -eq 0) { exit 0 }

$principal = $env:AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID
if (-not $principal) { throw 'AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID is not set: run azd provision first' }
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    Write-Warning ('The Azure CLI (az) is needed to grant the app its roles on REGISTRATION_TARGETS, ' +
        "SPHERE_CATALOGS and IOT_CENTRAL_APPS; install it, run 'az login', then 'azd hooks run postprovision'.")
    exit 0
}
$script:notGranted = 0

# Assign $role to the app's identity at $scope unless it holds it; $true when it does after.
function Grant-Role([string]$role, [string]$label, [string]$scope) {
    $held = az role assignment list --scope $scope --role $role `
        --query "length([?principalId=='$principal'])" -o tsv --only-show-errors 2>$null
    if ($LASTEXITCODE -eq 0 -and [int]("0$held".Trim()) -gt 0) {
        Write-Host "  $label on ${scope}: already granted"
        return $true
    }
    az role assignment create --assignee-object-id $principal `
        --assignee-principal-type ServicePrincipal --role $role --scope $scope `
        --only-show-errors --output none
    if ($LASTEXITCODE -eq 0) {
        Write-Host "  $label on ${scope}: granted (can take a few minutes to apply)"
        return $true
    }
    Write-Warning ("Could not grant $label on $scope (you need Owner, User Access Administrator or " +
        'Role Based Access Control Administrator there). Ask someone who has it to run: ' +
        "az role assignment create --assignee-object-id $principal --assignee-principal-type ServicePrincipal --role $role --scope $scope")
    $script:notGranted++
    return $false
}

# The entries that match $pattern; every other one is named (it is not $what) and counted.
function Select-Ids([string]$setting, [string[]]$entries, [string]$pattern, [string]$what) {
    foreach ($entry in $entries) {
        if ($entry -match $pattern) { $entry; continue }
        Write-Warning "$setting entry '$entry' is not $what; skipped."
        $script:notGranted++
    }
}

# Hubs and DPS: the custom role's two certificate reads; a DPS also its enrollment groups.
if ($targets.Count -gt 0) {
    $readerRole = $env:AZURE_REGISTRATION_READER_ROLE_ID
    if (-not $readerRole) { throw 'AZURE_REGISTRATION_READER_ROLE_ID is not set: run azd provision first' }
    # ARM resource ids are case-insensitive; PowerShell's -match is too.
    $valid = Select-Ids 'REGISTRATION_TARGETS' $targets `
        '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Devices/(IotHubs|provisioningServices)/[^/]+$' `
        'an IoT Hub or DPS resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.Devices/IotHubs/<name> or .../provisioningServices/<name>)'
    foreach ($target in $valid) {
        if (-not (Grant-Role $readerRole 'Registration reader (certificate lists)' $target)) { continue }
        if ($target -match '/provisioningServices/') {
            [void](Grant-Role $dpsDataReader 'Device Provisioning Service Data Reader' $target)
        }
        # Earlier versions granted Reader, which reads far more than certificates.
        $reader = az role assignment list --scope $target --role Reader `
            --query "length([?principalId=='$principal'])" -o tsv --only-show-errors 2>$null
        if ($LASTEXITCODE -eq 0 -and [int]("0$reader".Trim()) -gt 0) {
            Write-Warning ("The app still holds Reader on $target from an earlier version; it needs no more than " +
                "the role above. Remove it: az role assignment delete --assignee $principal --role Reader --scope $target")
        }
    }
}

# Azure Sphere catalogs: Azure Sphere Reader (plain Reader does not work for Sphere).
$validCatalogs = Select-Ids 'SPHERE_CATALOGS' $catalogs `
    '^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.AzureSphere/catalogs/[^/]+$' `
    'an Azure Sphere catalog resource id (/subscriptions/<id>/resourceGroups/<rg>/providers/Microsoft.AzureSphere/catalogs/<name>)'
foreach ($catalog in $validCatalogs) {
    [void](Grant-Role $sphereReader 'Azure Sphere Reader' $catalog)
}

# IoT Central: the identity becomes an app user through the app's users API (needs the
# deployer to be an Administrator of the app).
$template = if ($env:AZURE_IOT_CENTRAL_ENDPOINT) { $env:AZURE_IOT_CENTRAL_ENDPOINT } else { 'https://{name}.azureiotcentral.com' }
$validApps = Select-Ids 'IOT_CENTRAL_APPS' $apps '^([a-z0-9][a-z0-9-]*|https?://.+)$' 'an app subdomain or a URL'
foreach ($app in $validApps) {
    $base = if ($app -match '://') { $app.TrimEnd('/') } else { $template.Replace('{name}', $app) }
    $url = "$base/api/users/${principal}?api-version=2022-07-31"
    az rest --method get --url $url --resource https://apps.azureiotcentral.com --only-show-errors --output none 2>$null | Out-Null
    if ($LASTEXITCODE -eq 0) {
        Write-Host "  IoT Central user in ${base}: already added"
        continue
    }
    $body = @{ type = 'servicePrincipal'; objectId = $principal; tenantId = $env:AZURE_TENANT_ID; roles = @(@{ role = $centralRole }) } | ConvertTo-Json -Compress -Depth 4
    $bodyFile = New-TemporaryFile
    Set-Content -Path $bodyFile -Value $body -Encoding utf8NoBOM
    az rest --method put --url $url --resource https://apps.azureiotcentral.com `
        --headers Content-Type=application/json --body "@$bodyFile" --only-show-errors --output none
    $ok = $LASTEXITCODE -eq 0
    Remove-Item $bodyFile
    if ($ok) {
        Write-Host "  IoT Central user in ${base}: added (role $centralRole)"
    } else {
        Write-Warning ("Could not add the app's identity as a user of $base (you need the Administrator role in " +
            "that app). In the app, Permissions > Users > Assign user > Service principal, choose the identity " +
            "$principal with the Operator role; or ask an administrator to run: az rest --method put --url '$url' " +
            "--resource https://apps.azureiotcentral.com --headers Content-Type=application/json --body '$body'")
        $script:notGranted++
    }
}

if ($script:notGranted -gt 0) {
    Write-Warning ("$($script:notGranted) registration target(s), catalog(s) or app(s) cannot be read yet; " +
        'the daily self-health alert names each one until it can.')
}
exit 0
