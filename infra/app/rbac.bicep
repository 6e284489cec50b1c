// Every role assignment of the deployment, in one place.
//
// The function app's identity gets, each at the narrowest scope that works:
//   storage account  Storage Blob Data Owner       Functions host storage (AzureWebJobsStorage:
//                                                  keys, leases, blob receipts), the deployment
//                                                  package, and the certificates/results
//                                                  containers of CertStorage. Owner is what the
//                                                  Functions docs require for host storage; it
//                                                  already covers the two app containers, so no
//                                                  extra container-scoped grant is needed.
//   storage account  Storage Queue Data Contributor  the blob trigger's poison queue
//   storage account  Storage Table Data Contributor  the app's tables (entities only)
//   App Insights     Monitoring Metrics Publisher  telemetry with local auth off
//   Key Vault        Key Vault Secrets User        resolve the Key Vault references (read only)
//   ACS              custom "email sender" role    send mail with Entra ID, nothing else
// The optional developer principal (AZURE_PRINCIPAL_ID, the person running `azd up`) gets what
// `az storage blob upload --auth-mode login` and `ca-watch report` need, plus Key Vault
// Secrets Officer to rotate the Teams URL. Leave principalId empty to grant nothing.
param storageAccountName string
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

// Built-in role definition ids (stable across tenants).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
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

resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identityPrincipalId, roles.storageTableDataContributor)
  scope: storage
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

// --- the developer running `azd up` (optional) -------------------------------------------

resource devBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageBlobDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource devTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource devSecretsOfficer 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: principalId
    principalType: principalType
  }
}
