// The one storage account: Functions host storage (AzureWebJobsStorage), the deployment
// package, uploads (certificates), per-upload results, the fleet report, and the tables the
// app keeps.
// Hardened: no shared keys (identity only), no public blobs, TLS 1.2, HTTPS only; blob soft
// delete, container soft delete and versioning so that no upload is ever lost.
param name string
param location string
param tags object = {}
param deploymentContainerName string
param certContainerName string = 'certificates'
param resultsContainerName string = 'results'
@description('fleet.html and fleet.json, written by the timer (private, like every container).')
param reportContainerName string = 'reports'
@description('Tables the app uses (names as the code expects them).')
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
]
@minValue(1)
@maxValue(365)
param softDeleteRetentionDays int = 30
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
  'Standard_RAGRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_LRS'
param logAnalyticsId string = ''

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_35:Flex Consumption without VNet integration reaches storage over its public endpoint and the Event Grid webhook flow needs it; access is identity-only (shared keys off), see docs/deploy.md for the private-endpoint variant.
  //checkov:skip=CKV_AZURE_59:Same reason as CKV_AZURE_35: public network access stays enabled for a VNet-less Flex app; anonymous access is impossible (allowBlobPublicAccess false, allowSharedKeyAccess false).
  //checkov:skip=CKV_AZURE_206:Replication is a parameter (skuName); LRS is the cheap default for a watch list that can be re-uploaded, choose Standard_GZRS for production.
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    dnsEndpointType: 'Standard'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    isVersioningEnabled: true
    // Off: no principal can skip the retention period of a deleted version. An administrator
    // who must purge one (a private key uploaded by mistake) turns it on for that purge only
    // (docs/deploy.md); the next `azd provision` turns it off again.
    deleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
      allowPermanentDelete: false
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: softDeleteRetentionDays
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource certContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: certContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource resultsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: resultsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource reportContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: reportContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Declared at top level with `parent:` (not nested) so pycep-parser can read the loop.
resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

// The blob trigger (Event Grid source) keeps its poison queue in host storage.
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Storage logs (reads, writes, deletes) for blob, queue and table go to Log Analytics.
resource blobDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'storage-logs'
  scope: blobService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource queueDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'storage-logs'
  scope: queueService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

resource tableDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = if (!empty(logAnalyticsId)) {
  name: 'storage-logs'
  scope: tableService
  properties: {
    workspaceId: logAnalyticsId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

output name string = storage.name
output id string = storage.id
output location string = storage.location
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
output certContainerName string = certContainer.name
output resultsContainerName string = resultsContainer.name
output reportContainerName string = reportContainer.name
output deploymentContainerName string = deploymentContainer.name
