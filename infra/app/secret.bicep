// One Key Vault secret. A module of its own so that the caller can make it conditional
// while checkov (which does not look inside `if` resources) still checks the resource.
param vaultName string
param name string
@secure()
param value string
param contentType string = 'text/plain'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: name
  //checkov:skip=CKV_AZURE_41:The Teams Workflows URL and the SMTP password have no expiry of their own; an expiry date here would silently stop alerts. Rotate by setting a new version (docs/deploy.md).
  properties: {
    value: value
    contentType: contentType
  }
}

// Versionless: App Service picks up a new secret version on its own.
output uri string = '${vault.properties.vaultUri}secrets/${name}'
