// Every role assignment of the deployment, in one place (docs/deploy.md lists each with its
// scope and why it is needed).
//
// The function app's identity, on what only it may write:
//   host account     Storage Blob Data Owner        Functions host storage (keys, locks, blob
//                                                   receipts) and the deployment package: the
//                                                   role the Functions docs require
//   host account     Storage Queue Data Contributor the blob trigger's internal queues
//   host account     Storage Table Data Contributor the host's diagnostic events
//   data account     Storage Blob Data Owner        the blob trigger's connection (its docs ask
//                                                   for Owner); read uploads, write results and
//                                                   the report, delete a refused key upload with
//                                                   every version (deleteBlobVersion: Owner only)
//   data account     Storage Queue Data Contributor the blob trigger's poison queue (on the
//                                                   account of its connection)
//   data account     Storage Table Data Contributor the app's tables (entities only)
//   App Insights     Monitoring Metrics Publisher   telemetry with local auth off
//   Key Vault        Key Vault Secrets User         resolve the Key Vault references (read only)
//   ACS              custom "email sender" role     send mail with Entra ID, nothing else
// People never get a role on a storage account, only on one container (or table) of the data
// account: uploaders (uploaderPrincipalIds) Storage Blob Data Contributor on `certificates`,
// report readers (reportReaderPrincipalIds) Storage Blob Data Reader on `reports`. The optional
// developer principal (AZURE_PRINCIPAL_ID, the person running `azd up`) is both, reads
// `results`, gets Storage Table Data Contributor on each table (`ca-watch report`, `ca-watch
// ack`) and Key Vault Secrets Officer to rotate the Teams URL. Nobody but the app's identity
// has a data role on the host account: whoever may write it can replace the package.
@description('The host account (AzureWebJobsStorage, deployment package).')
param hostStorageAccountName string
@description('The data account (CertStorage: containers and tables).')
param dataStorageAccountName string
param certContainerName string = 'certificates'
param resultsContainerName string = 'results'
param reportContainerName string = 'reports'
@description('The tables of the data account.')
param tableNames array
param applicationInsightsName string
param keyVaultName string
param communicationServiceName string
param identityPrincipalId string
param principalId string = ''
@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'
@description('Entra object ids (users or groups) that may upload: Contributor on the certificates container only.')
param uploaderPrincipalIds array = []
@description('Entra object ids (users or groups) that may read the fleet report: Reader on the reports container only.')
param reportReaderPrincipalIds array = []

// Built-in role definition ids (stable across tenants).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

resource hostStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: hostStorageAccountName
}

resource dataStorage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataStorageAccountName
}

resource dataBlobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource certContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobService
  name: certContainerName
}

resource resultsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobService
  name: resultsContainerName
}

resource reportContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobService
  name: reportContainerName
}

resource dataTableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' existing = {
  parent: dataStorage
  name: 'default'
}

resource dataTables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' existing = [for tableName in tableNames: {
  parent: dataTableService
  name: tableName
}]

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' existing = {
  name: communicationServiceName
}

// ACS has no built-in "send email only" role: the built-in roles that can send (Contributor,
// Communication and Email Service Owner) can also delete resources and list the access keys.
// Microsoft's ACS Email docs ("Assign a role to a Microsoft Entra application for SMTP
// authentication") name the three actions below for an Entra-authenticated send, to be granted
// by Contributor or by a custom role. So the identity gets a custom role with exactly those,
// assignable only inside this resource group. Creating it needs
// Microsoft.Authorization/roleDefinitions/write (Owner or User Access Administrator; Role Based
// Access Control Administrator does not have it): see docs/deploy.md.
// A custom role's roleName must be unique in the tenant, so it carries a GUID of the
// subscription and resource group: two environments (or two subscriptions with the same
// resource group name) never clash.
var emailSenderRoleId = guid(subscription().id, resourceGroup().id, 'ca-rotation-watch-email-sender')

resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: emailSenderRoleId
  properties: {
    roleName: 'CA Rotation Watch Email Sender ${emailSenderRoleId}'
    description: 'Send email through Azure Communication Services with Entra ID; no key listing, no deletes.'
    type: 'customRole'
    permissions: [
      {
        actions: [
          'Microsoft.Communication/CommunicationServices/Read'
          'Microsoft.Communication/CommunicationServices/Write'
          'Microsoft.Communication/EmailServices/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

// --- the function app's identity -------------------------------------------------------

resource appHostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appHostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appHostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostStorage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: hostStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appDataBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appDataQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appDataTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dataStorage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: dataStorage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appEmailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(communicationService.id, identityPrincipalId, 'email-sender')
  scope: communicationService
  properties: {
    roleDefinitionId: emailSenderRole.id
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- people: one container each, never an account ---------------------------------------

resource uploaderCertContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for uploader in uploaderPrincipalIds: {
  name: guid(certContainer.id, uploader, roles.storageBlobDataContributor)
  scope: certContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: uploader
  }
}]

resource reportReaderReportReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for reader in reportReaderPrincipalIds: {
  name: guid(reportContainer.id, reader, roles.storageBlobDataReader)
  scope: reportContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: reader
  }
}]

// --- the developer running `azd up` (optional) -------------------------------------------

resource devCertContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(certContainer.id, principalId, roles.storageBlobDataContributor)
  scope: certContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource devResultsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(resultsContainer.id, principalId, roles.storageBlobDataReader)
  scope: resultsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: principalId
    principalType: principalType
  }
}

resource devReportReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(reportContainer.id, principalId, roles.storageBlobDataReader)
  scope: reportContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataReader)
    principalId: principalId
    principalType: principalType
  }
}

// `ca-watch report` reads every table; `ca-watch ack` writes acks and re-times the index.
resource devTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for (tableName, i) in tableNames: if (!empty(principalId)) {
  name: guid(dataTables[i].id, principalId, roles.storageTableDataContributor)
  scope: dataTables[i]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}]

resource devSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}
