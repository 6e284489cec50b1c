# azd postdeploy hook (Windows): create (or update) the Event Grid subscription that feeds the
# blob trigger: BlobCreated events of the certificates container -> the blobs_extension webhook
# of the deployed function app. Same behaviour as postdeploy.sh. Never prints the key.
$ErrorActionPreference = 'Stop'

foreach ($name in 'AZURE_RESOURCE_GROUP', 'AZURE_FUNCTION_APP_NAME', 'AZURE_EVENTGRID_SYSTEM_TOPIC_NAME') {
    if (-not [Environment]::GetEnvironmentVariable($name)) { throw "$name is not set: run azd provision first" }
}
if (-not (Get-Command az -ErrorAction SilentlyContinue)) {
    throw "The Azure CLI (az) is needed to create the Event Grid subscription; install it, run 'az login', then 'azd hooks run postdeploy'."
}

$rg = $env:AZURE_RESOURCE_GROUP
$app = $env:AZURE_FUNCTION_APP_NAME
$topic = $env:AZURE_EVENTGRID_SYSTEM_TOPIC_NAME
$container = if ($env:AZURE_STORAGE_CERT_CONTAINER) { $env:AZURE_STORAGE_CERT_CONTAINER } else { 'certificates' }
$subscriptionName = if ($env:EVENTGRID_SUBSCRIPTION_NAME) { $env:EVENTGRID_SUBSCRIPTION_NAME } else { 'certificates-blob-created' }
$azSub = @()
if ($env:AZURE_SUBSCRIPTION_ID) { $azSub = @('--subscription', $env:AZURE_SUBSCRIPTION_ID) }

# The blob-triggered function of function_app.py (tests/test_infra.py pins the name).
$functionName = if ($env:BLOB_FUNCTION_NAME) { $env:BLOB_FUNCTION_NAME } else { 'analyze_upload' }
$key = ''
for ($attempt = 1; $attempt -le 18; $attempt++) {
    $key = az functionapp keys list -g $rg -n $app @azSub --query 'systemKeys.blobs_extension' -o tsv 2>$null
    if ($LASTEXITCODE -ne 0) { $key = '' }
    if ($key) { break }
    Write-Host "Waiting for the deployed host to create its blobs_extension key ($attempt/18)..."
    Start-Sleep -Seconds 10
}
if (-not $key) {
    throw "The blobs_extension system key of $app does not exist yet (the host creates it when it first loads the blob trigger). Run 'azd hooks run postdeploy' again in a minute."
}

$hostName = $env:AZURE_FUNCTION_APP_HOSTNAME
if (-not $hostName) { $hostName = az functionapp show -g $rg -n $app @azSub --query defaultHostName -o tsv }
$endpoint = "https://$hostName/runtime/webhooks/blobs?functionName=Host.Functions.$functionName&code=$key"

Write-Host "Subscribing $functionName to BlobCreated in container '$container' (topic $topic)..."
az eventgrid system-topic event-subscription create `
    --name $subscriptionName `
    --resource-group $rg `
    --system-topic-name $topic `
    @azSub `
    --endpoint-type webhook `
    --endpoint $endpoint `
    --included-event-types Microsoft.Storage.BlobCreated `
    --subject-begins-with "/blobServices/default/containers/$container/" `
    --max-delivery-attempts 30 `
    --event-ttl 1440 `
    --only-show-errors --output none
if ($LASTEXITCODE -ne 0) { throw 'az eventgrid system-topic event-subscription create failed' }
Write-Host "Event Grid subscription '$subscriptionName' is ready: uploads to '$container' now reach $functionName."
