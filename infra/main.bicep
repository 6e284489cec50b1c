// CA Rotation Watch: everything `azd up` provisions. Subscription scope: creates the resource
// group, then the modules under app/. The Event Grid subscription is created after deploy by
// scripts/azd/postdeploy.* (it needs the deployed function's blobs_extension key).
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names and tags every resource.')
param environmentName string

@minLength(1)
@description('Region for the resource group and regional resources (must offer Flex Consumption).')
// The regions that offer Flex Consumption, as Microsoft's functions-quickstart-python-http-azd
// template lists them (without the eastus2euap canary, open to early-access subscriptions
// only), so that a wrong region fails at the azd prompt, not halfway through a deployment.
// Newer regions: `az functionapp list-flexconsumption-locations`, then add them here.
@allowed([
  'australiaeast'
  'australiasoutheast'
  'brazilsouth'
  'canadacentral'
  'centralindia'
  'centralus'
  'eastasia'
  'eastus'
  'eastus2'
  'francecentral'
  'germanywestcentral'
  'italynorth'
  'japaneast'
  'koreacentral'
  'northcentralus'
  'northeurope'
  'norwayeast'
  'southafricanorth'
  'southcentralus'
  'southeastasia'
  'southindia'
  'spaincentral'
  'swedencentral'
  'uaenorth'
  'uksouth'
  'ukwest'
  'westcentralus'
  'westeurope'
  'westus'
  'westus2'
  'westus3'
])
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the developer running azd (AZURE_PRINCIPAL_ID); empty = no developer roles.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

param resourceGroupName string = ''

@description('Overrides the Key Vault name (a purge-protected vault name stays reserved after `azd down`).')
param keyVaultName string = ''

@description('Python version of the Flex Consumption app; the test suite runs on 3.11.')
param pythonVersion string = '3.11'

@description('Where ACS stores data at rest, e.g. "United States", "Europe".')
param emailDataLocation string = 'United States'

param storageSkuName string = 'Standard_LRS'

// --- app settings (DESIGN §3; shared/settings.py) -----------------------------------------
param certContainerName string = 'certificates'
param resultsContainerName string = 'results'
param reportContainerName string = 'reports'
param tableNames array = [
  'certificates'
  'certsources'
  'uploads'
  'uploadcerts'
  'uploadfailures'
  'tenantcas'
  'alertindex'
  'acks'
  'ledger'
  'regtargets'
  'thumbtenants'
  'notices'
  'issuercas'
]
param maxUploadBytes string = '1048576'
@description('TOML rules file inside the deployed package; empty = the built-in rules (shared/alerts/default_rules.toml).')
param rulesFile string = ''
@description('Timer NCRONTAB (six fields, UTC).')
param alertSchedule string = '0 0 * * * *'
@description('Comma list of teams, acs-email, smtp, outbox; empty = derived from what is configured.')
param alertChannels string = ''
@description('The outbox channel writes here; the deployed package is read-only, so /tmp.')
param alertOutboxDir string = '/tmp/ca-watch-outbox'
@secure()
@description('Teams Workflows webhook URL; stored in Key Vault, the app gets a Key Vault reference.')
param teamsWebhookUrl string = ''
@description('Sender address; empty = DoNotReply@ the Azure-managed domain.')
param alertEmailFrom string = ''
@description('Comma list of recipients for every tenant.')
param alertEmailTo string = ''
@description('JSON object tenant-id -> "a@x,b@y" recipients; tenants not listed go to alertEmailTo.')
param alertEmailRoutes string = ''
param smtpHost string = ''
param smtpPort string = '587'
param smtpUser string = ''
@secure()
param smtpPassword string = ''
@secure()
@description('IoT Central API tokens (JSON object app subdomain -> token), for apps whose identity is not an app user; stored in Key Vault. Their expiry is watched by the daily self-health check.')
param iotCentralApiTokens string = ''
param smtpStartTls string = 'true'
@description('Comma list of IoT Hub / DPS ARM resource ids listed live for registration evidence; the post-provision hook grants the app identity the registration reader role on each (and DPS Data Reader on each DPS).')
param registrationTargets string = ''
@description('How often the live registration listing runs at most (e.g. 6h, 30m).')
param registrationRefresh string = '6h'
@description('Seconds or a duration (3m) one live pull of every reader may take, after the alert pass')
param registrationPullBudget string = '3m'
@description('Comma list of Azure Sphere catalog ARM resource ids whose tenant CAs are read live; the post-provision hook grants the app identity Azure Sphere Reader on each.')
param sphereCatalogs string = ''
@description('Comma list of IoT Central app subdomains (or URLs) whose enrollment groups are read live; the post-provision hook adds the app identity as an app user.')
param iotCentralApps string = ''
// Endpoints (DESIGN §3) for sovereign clouds; empty = the public-cloud default below. (Empty
// rather than the default itself: azd's ${VAR=default} cannot carry the `{name}` braces.)
@description('ARM for hub/DPS certificate lists and Sphere catalogs; empty = https://management.azure.com.')
param armEndpoint string = ''
@description('DPS data plane, {name} = the DPS name; empty = https://{name}.azure-devices-provisioning.net.')
param dpsEndpoint string = ''
@description('IoT Central API, {name} = the app subdomain; empty = https://{name}.azureiotcentral.com.')
param iotCentralEndpoint string = ''

// People, by Entra object id (users or groups), comma separated; each gets one container of
// the data account, never the account (docs/deploy.md says how to add people later).
@description('Comma list of principal ids that may upload: Storage Blob Data Contributor on the certificates container only.')
param uploaderPrincipalIds string = ''
@description('Comma list of principal ids that may read the fleet report: Storage Blob Data Reader on the reports container only.')
param reportReaderPrincipalIds string = ''

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}
var functionAppName = 'func-${resourceToken}'
// The data account keeps the name the single account had, so an existing deployment keeps its
// uploads, tables and Event Grid topic; the host account is new (docs/deploy.md, upgrading).
var dataStorageName = 'st${resourceToken}'
var hostStorageName = 'stfunc${resourceToken}'
var endpoints = {
  arm: empty(armEndpoint) ? 'https://management.azure.com' : armEndpoint
  dps: empty(dpsEndpoint) ? 'https://{name}.azure-devices-provisioning.net' : dpsEndpoint
  iotCentral: empty(iotCentralEndpoint) ? 'https://{name}.azureiotcentral.com' : iotCentralEndpoint
}
// Blanks and empty entries dropped: "a, b," is two principals.
var uploaders = filter(split(replace(uploaderPrincipalIds, ' ', ''), ','), id => !empty(id))
var reportReaders = filter(split(replace(reportReaderPrincipalIds, ' ', ''), ','), id => !empty(id))
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'

// ALERT_CHANNELS: what the operator set, else every channel that has its settings, else outbox.
var teamsChannel = empty(teamsWebhookUrl) ? [] : [
  'teams'
]
var emailChannel = empty(alertEmailTo) && empty(alertEmailRoutes) ? [] : [
  'acs-email'
]
var smtpChannel = empty(smtpHost) ? [] : [
  'smtp'
]
var configuredChannels = concat(teamsChannel, emailChannel, smtpChannel)
var effectiveChannels = !empty(alertChannels) ? alertChannels : (empty(configuredChannels) ? 'outbox' : join(configuredChannels, ','))

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : 'rg-${environmentName}'
  location: location
  tags: tags
}

module appIdentity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-func-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

// The function's own storage: host storage and the deployment package, app identity only.
module hostStorage 'app/storage.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: hostStorageName
    location: location
    tags: tags
    skuName: storageSkuName
    containerNames: [
      deploymentContainerName
    ]
    blobVersioning: false
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

// The data: uploads, results, the fleet report and every table the app uses.
module dataStorage 'app/storage.bicep' = {
  name: 'data-storage'
  scope: rg
  params: {
    name: dataStorageName
    location: location
    tags: tags
    skuName: storageSkuName
    containerNames: [
      certContainerName
      resultsContainerName
      reportContainerName
    ]
    tableNames: tableNames
    blobVersioning: true
    logAnalyticsId: monitoring.outputs.logAnalyticsId
  }
}

// Only the two certificate reads, assignable in this deployment's resource group and in the
// resource groups of the registration targets (the post-provision hook assigns it there).
module registrationReaderRole 'app/reader-role.bicep' = {
  name: 'registration-reader-role'
  params: {
    resourceGroupId: rg.id
    registrationTargets: registrationTargets
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: !empty(keyVaultName) ? keyVaultName : 'kv-${resourceToken}'
    location: location
    tags: tags
    teamsWebhookUrl: teamsWebhookUrl
    smtpPassword: smtpPassword
    iotCentralApiTokens: iotCentralApiTokens
  }
}

module communication 'app/communication.bicep' = {
  name: 'communication'
  scope: rg
  params: {
    communicationServiceName: 'acs-${resourceToken}'
    emailServiceName: 'ecs-${resourceToken}'
    tags: tags
    dataLocation: emailDataLocation
  }
}

module eventGrid 'app/eventgrid.bicep' = {
  name: 'eventgrid'
  scope: rg
  params: {
    name: 'evgt-${resourceToken}'
    location: dataStorage.outputs.location
    tags: tags
    storageAccountId: dataStorage.outputs.id
  }
}

// The site starts only after every role assignment exists: its Key Vault references resolve
// on first start, and a reference that resolves before Key Vault Secrets User is in place
// keeps the literal @Microsoft.KeyVault(...) string until the next refresh (up to 24 h).
module functionApp 'app/function.bicep' = {
  name: 'function'
  scope: rg
  dependsOn: [
    rbac
  ]
  params: {
    name: functionAppName
    planName: 'plan-${resourceToken}'
    location: location
    tags: tags
    identityId: appIdentity.outputs.id
    identityClientId: appIdentity.outputs.clientId
    hostStorageAccountName: hostStorage.outputs.name
    deploymentContainerName: hostStorage.outputs.containerNames[0]
    dataStorageAccountName: dataStorage.outputs.name
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    pythonVersion: pythonVersion
    certContainerName: dataStorage.outputs.containerNames[0]
    resultsContainerName: dataStorage.outputs.containerNames[1]
    maxUploadBytes: maxUploadBytes
    rulesFile: rulesFile
    alertSchedule: alertSchedule
    alertChannels: effectiveChannels
    alertOutboxDir: alertOutboxDir
    teamsSecretUri: keyVault.outputs.teamsSecretUri
    acsEndpoint: communication.outputs.endpoint
    alertEmailFrom: !empty(alertEmailFrom) ? alertEmailFrom : communication.outputs.senderAddress
    alertEmailTo: alertEmailTo
    alertEmailRoutes: alertEmailRoutes
    smtpHost: smtpHost
    smtpPort: smtpPort
    smtpUser: smtpUser
    smtpSecretUri: keyVault.outputs.smtpSecretUri
    centralTokensSecretUri: keyVault.outputs.centralTokensSecretUri
    smtpStartTls: smtpStartTls
    reportContainerName: dataStorage.outputs.containerNames[2]
    registrationTargets: registrationTargets
    registrationRefresh: registrationRefresh
    registrationPullBudget: registrationPullBudget
    sphereCatalogs: sphereCatalogs
    iotCentralApps: iotCentralApps
    armEndpoint: endpoints.arm
    dpsEndpoint: endpoints.dps
    iotCentralEndpoint: endpoints.iotCentral
  }
}

module rbac 'app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    hostStorageAccountName: hostStorage.outputs.name
    dataStorageAccountName: dataStorage.outputs.name
    certContainerName: dataStorage.outputs.containerNames[0]
    resultsContainerName: dataStorage.outputs.containerNames[1]
    reportContainerName: dataStorage.outputs.containerNames[2]
    tableNames: tableNames
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
    communicationServiceName: communication.outputs.name
    identityPrincipalId: appIdentity.outputs.principalId
    principalId: principalId
    principalType: principalType
    uploaderPrincipalIds: uploaders
    reportReaderPrincipalIds: reportReaders
  }
}

// azd writes these into the environment; the hooks and docs/deploy.md use them. (Names differ
// from the input variables on purpose, so that an output never feeds back into a parameter.)
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name
output AZURE_FUNCTION_APP_HOSTNAME string = functionApp.outputs.defaultHostName
// The data account: where people upload and read the report.
output AZURE_STORAGE_ACCOUNT_NAME string = dataStorage.outputs.name
output AZURE_STORAGE_ACCOUNT_ID string = dataStorage.outputs.id
output AZURE_HOST_STORAGE_ACCOUNT_NAME string = hostStorage.outputs.name
output AZURE_STORAGE_CERT_CONTAINER string = dataStorage.outputs.containerNames[0]
output AZURE_STORAGE_RESULTS_CONTAINER string = dataStorage.outputs.containerNames[1]
output AZURE_STORAGE_REPORT_CONTAINER string = dataStorage.outputs.containerNames[2]
output AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID string = appIdentity.outputs.principalId
output AZURE_REGISTRATION_TARGETS string = registrationTargets
output AZURE_REGISTRATION_READER_ROLE_ID string = registrationReaderRole.outputs.roleDefinitionName
output AZURE_SPHERE_CATALOGS string = sphereCatalogs
output AZURE_IOT_CENTRAL_APPS string = iotCentralApps
output AZURE_IOT_CENTRAL_ENDPOINT string = endpoints.iotCentral
output AZURE_EVENTGRID_SYSTEM_TOPIC_NAME string = eventGrid.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_ACS_ENDPOINT string = communication.outputs.endpoint
output AZURE_ACS_SENDER_ADDRESS string = communication.outputs.senderAddress
output AZURE_ALERT_CHANNELS string = effectiveChannels
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName
