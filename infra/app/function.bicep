// The function app on Flex Consumption (FC1): Python, a user-assigned identity for every
// connection (host storage, CertStorage, Application Insights, Key Vault references, ACS),
// no keys or connection strings with secrets anywhere. Host storage (AzureWebJobsStorage and
// the deployment package) and the app's data (CertStorage) are two accounts (issue 23).
//
// The site carries only properties that Microsoft's Flex Consumption templates set
// (Azure-Samples functions-quickstart-python-http-azd, -azd-eventgrid-blob, -azd-otel and
// azure-functions-flex-consumption-samples). Newer FC1 stamps reject App Service siteConfig
// properties such as ftpsState, use32BitWorkerProcess, linuxFxVersion, netFrameworkVersion or
// functionAppScaleLimit outright (ARM 51021 "... for Flex Consumption sites is invalid. Please
// remove ..."), older stamps ignore them; the runtime and scale live in functionAppConfig.
param name string
param planName string
param location string
param tags object = {}
param identityId string
param identityClientId string
@description('The host account: AzureWebJobsStorage and the deployment package.')
param hostStorageAccountName string
param deploymentContainerName string
@description('The data account: CertStorage (uploads, results, reports, tables).')
param dataStorageAccountName string
param applicationInsightsConnectionString string
@allowed([
  '3.11'
  '3.12'
])
@description('Python version; the test suite runs on 3.11.')
param pythonVersion string = '3.11'
@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 100
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// App settings the code reads (shared/settings.py APP_SETTING_NAMES).
param certContainerName string
param resultsContainerName string
param maxUploadBytes string
param rulesFile string
param alertSchedule string
param alertChannels string
param alertOutboxDir string
param teamsSecretUri string
param acsEndpoint string
param alertEmailFrom string
param alertEmailTo string
param alertEmailRoutes string
param smtpHost string
param smtpPort string
param smtpUser string
param smtpSecretUri string
@description('Versionless Key Vault secret URI of the IoT Central API tokens; empty = none.')
param centralTokensSecretUri string = ''
param smtpStartTls string
param reportContainerName string
@description('Comma list of IoT Hub / DPS ARM resource ids the timer lists live; empty = none.')
param registrationTargets string = ''
@description('How often the live listing of registrationTargets runs at most, e.g. 6h.')
param registrationRefresh string = '6h'
param registrationPullBudget string = '3m'
@description('Comma list of Azure Sphere catalog ARM resource ids read live; empty = none.')
param sphereCatalogs string = ''
@description('Comma list of IoT Central app subdomains (or URLs) read live; empty = none.')
param iotCentralApps string = ''
param armEndpoint string = 'https://management.azure.com'
param dpsEndpoint string = 'https://{name}.azure-devices-provisioning.net'
param iotCentralEndpoint string = 'https://{name}.azureiotcentral.com'

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_225:Zone redundancy for Flex Consumption depends on the region; enable it where offered (properties.zoneRedundant) for production.
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  //checkov:skip=CKV_AZURE_78:Flex Consumption rejects siteConfig.ftpsState (ARM 51021 'invalid for Flex Consumption sites'); FTP publishing is off through the ftp basicPublishingCredentialsPolicies below.
  //checkov:skip=CKV_AZURE_18:Same as CKV_AZURE_67: Flex Consumption documents no siteConfig.http20Enabled and Microsoft's Flex templates set none; App Service siteConfig properties on FC1 risk ARM 51021 rejections.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  //checkov:skip=CKV_AZURE_67:Flex Consumption documents no siteConfig.http20Enabled and Microsoft's Flex templates set none; App Service siteConfig properties on FC1 risk ARM 51021 rejections.
  //checkov:skip=CKV_AZURE_17:Event Grid delivers to the blobs_extension webhook without a client certificate; the webhook is authorised by the blobs_extension system key instead.
  kind: 'functionapp,linux'
  //checkov:skip=CKV_AZURE_222:Event Grid delivers blob events to the app's public webhook endpoint; closing public access needs VNet integration and a private Event Grid path (documented in docs/deploy.md).
  //checkov:skip=CKV_AZURE_212:Flex Consumption scales from zero per function; always-ready instances would bill around the clock for an hourly timer and bursty uploads.
  //checkov:skip=CKV_AZURE_213:App Service health check is not available on Flex Consumption; host health shows in Application Insights.
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  // Only site properties that Microsoft's Flex Consumption templates set (see the top of this
  // file); tests/test_infra.py holds the allow-list.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      // Every app setting in one list, so the offline test can compare it with
      // shared/settings.py. Flex Consumption takes no FUNCTIONS_WORKER_RUNTIME (runtime below).
      appSettings: [
        // Functions host storage on the host account, identity-based.
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: hostStorage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: hostStorage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: hostStorage.properties.primaryEndpoints.table
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // The app's own connection (blob trigger + tables) on the data account, identity-based.
        {
          name: 'CertStorage__blobServiceUri'
          value: dataStorage.properties.primaryEndpoints.blob
        }
        {
          name: 'CertStorage__queueServiceUri'
          value: dataStorage.properties.primaryEndpoints.queue
        }
        {
          name: 'CertStorage__tableServiceUri'
          value: dataStorage.properties.primaryEndpoints.table
        }
        {
          name: 'CertStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'CertStorage__clientId'
          value: identityClientId
        }
        // Telemetry with Entra auth (local auth is off on the component).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: applicationInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // The Python worker configures OpenTelemetry (Azure Monitor) itself and tells the host
        // so (host.json telemetryMode OpenTelemetry): the app then never calls
        // configure_azure_monitor() (shared/app/telemetry.py), so nothing is exported twice.
        {
          name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY'
          value: 'true'
        }
        // DefaultAzureCredential in the app (ACS Email) picks the user-assigned identity.
        {
          name: 'AZURE_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'CERT_CONTAINER'
          value: certContainerName
        }
        {
          name: 'RESULTS_CONTAINER'
          value: resultsContainerName
        }
        {
          name: 'REPORT_CONTAINER'
          value: reportContainerName
        }
        {
          name: 'MAX_UPLOAD_BYTES'
          value: maxUploadBytes
        }
        {
          name: 'RULES_FILE'
          value: rulesFile
        }
        {
          name: 'ALERT_SCHEDULE'
          value: alertSchedule
        }
        {
          name: 'ALERT_CHANNELS'
          value: alertChannels
        }
        {
          name: 'ALERT_OUTBOX_DIR'
          value: alertOutboxDir
        }
        {
          name: 'TEAMS_WEBHOOK_URL'
          value: empty(teamsSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${teamsSecretUri})'
        }
        {
          name: 'ACS_ENDPOINT'
          value: acsEndpoint
        }
        {
          name: 'ALERT_EMAIL_FROM'
          value: alertEmailFrom
        }
        {
          name: 'ALERT_EMAIL_TO'
          value: alertEmailTo
        }
        {
          name: 'ALERT_EMAIL_ROUTES'
          value: alertEmailRoutes
        }
        {
          name: 'SMTP_HOST'
          value: smtpHost
        }
        {
          name: 'SMTP_PORT'
          value: smtpPort
        }
        {
          name: 'SMTP_USER'
          value: smtpUser
        }
        {
          name: 'SMTP_PASSWORD'
          value: empty(smtpSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${smtpSecretUri})'
        }
        {
          name: 'IOT_CENTRAL_API_TOKENS'
          value: empty(centralTokensSecretUri) ? '' : '@Microsoft.KeyVault(SecretUri=${centralTokensSecretUri})'
        }
        {
          name: 'SMTP_STARTTLS'
          value: smtpStartTls
        }
        // Live registration evidence; the post-provision hook grants the identity the
        // registration reader role (and DPS Data Reader) on each target.
        {
          name: 'REGISTRATION_TARGETS'
          value: registrationTargets
        }
        {
          name: 'REGISTRATION_REFRESH'
          value: registrationRefresh
        }
        {
          name: 'REGISTRATION_PULL_BUDGET'
          value: registrationPullBudget
        }
        // Azure Sphere catalogs (Azure Sphere Reader) and IoT Central apps (an app user), read
        // live; the post-provision hook grants both.
        {
          name: 'SPHERE_CATALOGS'
          value: sphereCatalogs
        }
        {
          name: 'IOT_CENTRAL_APPS'
          value: iotCentralApps
        }
        // Endpoints of the live readers (DESIGN §3; sovereign clouds set their own).
        {
          name: 'ARM_ENDPOINT'
          value: armEndpoint
        }
        {
          name: 'DPS_ENDPOINT'
          value: dpsEndpoint
        }
        {
          name: 'IOT_CENTRAL_ENDPOINT'
          value: iotCentralEndpoint
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostStorage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No basic-auth publishing: azd deploys with an Entra token.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output defaultHostName string = functionApp.properties.defaultHostName
