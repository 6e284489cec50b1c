// One hardened storage account; main.bicep deploys it twice (issue 23):
//   - the host account: Functions host storage (AzureWebJobsStorage: keys, locks, the blob
//     trigger's internal queues) and the deployment package. Only the app's identity gets data
//     roles on it: whoever can write it can replace the package and run code as the app.
//   - the data account: uploads (certificates), per-upload results, the fleet report and the
//     app's tables. People get container-scoped roles on it only (infra/app/rbac.bicep).
// Both: no shared keys (identity only), no public blobs, TLS 1.2, HTTPS only, blob and
// container soft delete. Versioning is a parameter: on for the data account (no upload is
// ever lost), off for the host account, where every lock renewal would leave a version.
param name string
param location string
param tags object = {}
@description('Private blob containers to create.')
param containerNames array
@description('Tables to create (names as the code expects them); empty = none.')
param tableNames array = []
@description('Keep every overwritten or deleted blob as a version.')
param blobVersioning bool = true
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
    isVersioningEnabled: blobVersioning
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

// Declared at top level with `parent:` (not nested) so pycep-parser can read the loops.
resource containers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containerNames: {
  parent: blobService
  name: containerName
  properties: {
    publicAccess: 'None'
  }
}]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Every table the app uses exists before the first worker starts: workers create none at
// cold start (shared/storage/tables.py creates one only on a TableNotFound, for local runs).
resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [for tableName in tableNames: {
  parent: tableService
  name: tableName
}]

// Host account: the blob trigger's internal queues; data account: its poison queue (the
// trigger writes poison messages to the account of its connection, CertStorage).
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
// The containers exist once the module is done; callers name them through this output.
output containerNames array = [for (containerName, i) in containerNames: containers[i].name]
