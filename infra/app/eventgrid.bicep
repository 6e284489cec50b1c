// The Event Grid system topic on the storage account. The subscription (BlobCreated on the
// certificates container -> the blobs_extension webhook) needs the deployed function's
// system key, so scripts/azd/postdeploy.* creates it after `azd deploy`.
param name string
param location string
param tags object = {}
param storageAccountId string

resource systemTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: name
  location: location
  tags: tags
  properties: {
    source: storageAccountId
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

output name string = systemTopic.name
