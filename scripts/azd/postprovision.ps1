# azd postprovision hook (Windows): say what was provisioned, where alerts will go, and what is
# still missing. It changes nothing in Azure. azd exports the Bicep outputs as environment
# variables. Same behaviour as postprovision.sh.
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
