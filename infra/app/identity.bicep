// The one identity the function app runs as. Every data-plane grant in rbac.bicep goes to
// it, so access is visible in one place and survives a redeploy of the site.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
