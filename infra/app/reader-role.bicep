// The role the app's identity holds on each IoT Hub and DPS of REGISTRATION_TARGETS: it lists
// their CA certificates and nothing else. Reader (what the app had before) also reads every
// other property of the hub or DPS and of everything else in scope; the live listing needs only
// these two actions (ARM `.../IotHubs/{hub}/certificates`, `.../provisioningServices/{dps}/
// certificates`). The post-provision hook assigns it on each target.
//
// A custom role is assignable only inside its assignableScopes: this deployment's resource
// group plus the resource group of each target (creating it needs roleDefinitions/write there:
// Owner or User Access Administrator). An entry that is not a resource id adds nothing here;
// the hook refuses it.
targetScope = 'subscription'

@description('The resource group of this deployment.')
param resourceGroupId string
@description('Comma list of IoT Hub / DPS ARM resource ids (REGISTRATION_TARGETS).')
param registrationTargets string = ''

var targets = empty(registrationTargets) ? [] : split(registrationTargets, ',')
// /subscriptions/<s>/resourceGroups/<g>/providers/... -> /subscriptions/<s>/resourceGroups/<g>
var targetGroups = [for target in targets: startsWith(toLower(trim(target)), '/subscriptions/') && length(split(trim(target), '/')) > 4 ? toLower('/subscriptions/${split(trim(target), '/')[2]}/resourceGroups/${split(trim(target), '/')[4]}') : toLower(resourceGroupId)]

// Unique per tenant like every custom role name: the GUID carries subscription and group.
var roleId = guid(subscription().id, resourceGroupId, 'ca-rotation-watch-registration-reader')

resource registrationReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: roleId
  properties: {
    roleName: 'CA Rotation Watch Registration Reader ${roleId}'
    description: 'List the CA certificates of IoT Hubs and Device Provisioning Services; nothing else.'
    type: 'customRole'
    permissions: [
      {
        actions: [
          'Microsoft.Devices/IotHubs/certificates/read'
          'Microsoft.Devices/provisioningServices/certificates/read'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: union([
      toLower(resourceGroupId)
    ], targetGroups)
  }
}

output roleDefinitionId string = registrationReader.id
// What `az role assignment create --role` takes.
output roleDefinitionName string = registrationReader.name
