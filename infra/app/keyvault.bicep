// Secrets the app reads through Key Vault references (the Teams Workflows URL carries its
// own signature, so it is a credential). RBAC authorization only (no access policies), soft
// delete and purge protection on.
param name string
param location string
param tags object = {}
@secure()
@description('Teams Workflows webhook URL ("When a Teams webhook request is received"); empty = no secret.')
param teamsWebhookUrl string = ''
@secure()
@description('SMTP relay password; empty = no secret.')
param smtpPassword string = ''
@secure()
@description('IoT Central API tokens, a JSON object app subdomain -> token; empty = no secret.')
param iotCentralApiTokens string = ''
@minValue(7)
@maxValue(90)
param softDeleteRetentionInDays int = 7

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  //checkov:skip=CKV_AZURE_109:Key Vault references from a Flex Consumption app without VNet integration come over the public endpoint (App Service is not a trusted service for the firewall bypass); access is RBAC-only.
  //checkov:skip=CKV_AZURE_189:Same reason as CKV_AZURE_109: the app resolves its Key Vault references over the public endpoint unless VNet integration is added.
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

module teamsSecret 'secret.bicep' = if (!empty(teamsWebhookUrl)) {
  name: 'secret-teams-webhook-url'
  params: {
    vaultName: vault.name
    name: 'teams-webhook-url'
    value: teamsWebhookUrl
    contentType: 'text/uri-list'
  }
}

module smtpSecret 'secret.bicep' = if (!empty(smtpPassword)) {
  name: 'secret-smtp-password'
  params: {
    vaultName: vault.name
    name: 'smtp-password'
    value: smtpPassword
  }
}

module centralTokensSecret 'secret.bicep' = if (!empty(iotCentralApiTokens)) {
  name: 'secret-iot-central-api-tokens'
  params: {
    vaultName: vault.name
    name: 'iot-central-api-tokens'
    value: iotCentralApiTokens
    contentType: 'application/json'
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
// Versionless secret URIs ('' when the secret is not set).
output teamsSecretUri string = empty(teamsWebhookUrl) ? '' : teamsSecret.outputs.uri
output smtpSecretUri string = empty(smtpPassword) ? '' : smtpSecret.outputs.uri
output centralTokensSecretUri string = empty(iotCentralApiTokens) ? '' : centralTokensSecret.outputs.uri
