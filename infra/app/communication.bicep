// Azure Communication Services with an Email service and its Azure-managed domain
// (DoNotReply@<guid>.azurecomm.net), linked so that the app can send with its identity.
// Local auth (the access keys and connection strings) is off: only Entra ID sends. That
// property exists from API version 2025-05-01 on (not in 2023-04-01).
param communicationServiceName string
param emailServiceName string
param tags object = {}
@description('Where ACS stores data at rest, e.g. "United States", "Europe".')
param dataLocation string = 'United States'

resource emailService 'Microsoft.Communication/emailServices@2025-05-01' = {
  name: emailServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource emailDomain 'Microsoft.Communication/emailServices/domains@2025-05-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2025-05-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    disableLocalAuth: true
    linkedDomains: [
      emailDomain.id
    ]
  }
}

output name string = communicationService.name
output endpoint string = 'https://${communicationService.properties.hostName}'
output senderAddress string = 'DoNotReply@${emailDomain.properties.mailFromSenderDomain}'
