"""Offline checks of the deployment (infra/, azure.yaml, hooks, local settings example).

No Bicep compiler can be installed here, so the templates are read with pycep-parser and
checked with checkov, both from their own venv (.venv-infra, requirements-infra.txt) and run
as subprocesses. What only a real deployment can show is listed in docs/deploy.md.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pathspec
import pytest
from ci_support import missing

from shared.app.telemetry import worker_manages_telemetry
from shared.settings import APP_SETTING_NAMES, Settings
from shared.storage.store import TABLES

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
INFRA_BIN = ROOT / ".venv-infra" / "bin"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))
HOOKS = ROOT / "scripts" / "azd"

pytestmark = pytest.mark.xdist_group("infra")

# Settings the template adds for the platform, beside the ones the code reads.
INFRA_SETTING_NAMES = {
    *(
        f"AzureWebJobsStorage__{p}"
        for p in ("blobServiceUri", "queueServiceUri", "tableServiceUri")
    ),
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    *(f"CertStorage__{p}" for p in ("blobServiceUri", "queueServiceUri", "tableServiceUri")),
    "CertStorage__credential",
    "CertStorage__clientId",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY",
    "AZURE_CLIENT_ID",
}
# DESIGN §3 settings of the live readers (issue 22). The template sets them with DESIGN's
# defaults; the readers' code adds them to APP_SETTING_NAMES (then this set is redundant).
READER_SETTING_NAMES = {
    "SPHERE_CATALOGS",
    "IOT_CENTRAL_APPS",
    "ARM_ENDPOINT",
    "DPS_ENDPOINT",
    "IOT_CENTRAL_ENDPOINT",
}
READER_ENDPOINT_DEFAULTS = {
    "arm": "https://management.azure.com",
    "dps": "https://{name}.azure-devices-provisioning.net",
    "iotCentral": "https://{name}.azureiotcentral.com",
}
# What a Flex Consumption (FC1) site may carry: exactly what Microsoft's Flex templates set
# (Azure-Samples functions-quickstart-python-http-azd / -azd-eventgrid-blob / -azd-otel and
# azure-functions-flex-consumption-samples, directly or through the AVM site module's
# defaults). Newer FC1 stamps reject App Service siteConfig properties outright with ARM error
# 51021 ("... for Flex Consumption sites is invalid. Please remove ..."); older ones ignore them.
FLEX_SITE_KEYS = {"name", "location", "tags", "kind", "identity", "properties"}
FLEX_SITE_PROPERTIES = {
    "serverFarmId",
    "httpsOnly",
    "keyVaultReferenceIdentity",
    "virtualNetworkSubnetId",
    "siteConfig",
    "functionAppConfig",
}
FLEX_SITE_CONFIG = {"appSettings", "minTlsVersion"}
FLEX_FUNCTION_APP_CONFIG = {"deployment", "scaleAndConcurrency", "runtime"}
# Named in real ARM 51021 rejections (AVM terraform-azurerm-avm-res-web-site #283, #345, #360;
# azure-functions-host #10643): never allowed, whatever the allow-list above says.
FLEX_REJECTED_SITE_CONFIG = {
    "ftpsState",
    "use32BitWorkerProcess",
    "preWarmedInstanceCount",
    "netFrameworkVersion",
    "functionsRuntimeScaleMonitoringEnabled",
    "linuxFxVersion",
    "functionAppScaleLimit",
}
# App settings the Flex Consumption plan deprecates (its runtime and package live in
# functionAppConfig): "Flex Consumption plan deprecations" in the Functions app settings docs.
FLEX_DEPRECATED_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_TIME_ZONE",
}
# The regions that offer Flex Consumption, as functions-quickstart-python-http-azd's
# main.bicep lists them (its eastus2euap canary left out: early-access subscriptions only).
FLEX_REGIONS = {
    *("australiaeast", "australiasoutheast", "brazilsouth", "canadacentral", "centralindia"),
    *("centralus", "eastasia", "eastus", "eastus2", "francecentral", "germanywestcentral"),
    *("italynorth", "japaneast", "koreacentral", "northcentralus", "northeurope"),
    *("norwayeast", "southafricanorth", "southcentralus", "southeastasia", "southindia"),
    *("spaincentral", "swedencentral", "uaenorth", "uksouth", "ukwest", "westcentralus"),
    *("westeurope", "westus", "westus2", "westus3"),
}
# The oldest azd that reads .funcignore the way tests/test_infra.py builds the package
# (azure-dev PR #5383, then #7223 and #7311 in 1.23.12 / 1.23.13).
MIN_AZD_VERSION = (1, 23, 13)

# Built-in roles the identity may hold (least privilege; see infra/app/rbac.bicep).
ALLOWED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
}
BROAD_ROLES = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",  # User Access Administrator
    "09976791-48a7-449e-bb21-39d1a415f350",  # Communication and Email Service Owner
}

# Dumps every template as pycep-parser sees it (run with .venv-infra's python).
_DUMP = r"""
import json, sys
from pathlib import Path
from pycep import BicepParser
templates, errors = {}, {}
for name in sys.argv[1:]:
    try:
        templates[name] = BicepParser().parse(file_path=Path(name))
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {exc}"
json.dump({"templates": templates, "errors": errors}, sys.stdout, default=str)
"""
_YAML = "import json, sys, yaml; json.dump(yaml.safe_load(open(sys.argv[1])), sys.stdout)"


def _infra_tool(name: str) -> Path:
    tool = INFRA_BIN / name
    if tool.exists():
        return tool
    message = (
        f"{tool.relative_to(ROOT)} is missing: run `make deps` (installs requirements-infra.txt)"
    )
    missing(message)
    raise AssertionError("unreachable")


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env, check=False
    )


@cache
def _parsed() -> dict[str, Any]:
    python = _infra_tool("python")
    names = [str(p.relative_to(ROOT)) for p in BICEP_FILES]
    done = _run([str(python), "-c", _DUMP, *names])
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _template(relative: str) -> dict[str, Any]:
    return _parsed()["templates"][relative]


def _body(resource: dict[str, Any]) -> dict[str, Any]:
    """The resource body, through `if (...)` and `[for ...]` wrappers."""
    config = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def _resources(type_: str | None = None) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for file, template in _parsed()["templates"].items():
        for name, resource in template.get("resources", {}).items():
            if type_ is None or resource["type"].lower() == type_.lower():
                yield file, name, resource


def _only(type_: str, file: str | None = None) -> dict[str, Any]:
    found = [r for f, _, r in _resources(type_) if not r.get("existing") and file in (None, f)]
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


def _root(expression: Any) -> str:
    """The resource, module or parameter an expression starts from: `dataStorage` in
    `dataStorage.outputs.id`, `dataTables` in `dataTables[i]`, `x` in '${x.y}z'."""
    if isinstance(expression, str):
        return expression.removeprefix("${").split(".")[0].split("[")[0]
    return _root(expression["operator"]["operands"]["operand_1"])


def _dotted(expression: Any) -> str:
    """An accessor expression as written: `roles.storageBlobDataOwner`, `dataTables[i]`."""
    if not isinstance(expression, dict):
        return str(expression)
    operator = expression["operator"]
    first, second = operator["operands"]["operand_1"], operator["operands"]["operand_2"]
    if operator["type"] == "index_accessor":
        return f"{_dotted(first)}[{_dotted(second)}]"
    return f"{_dotted(first)}.{_dotted(second)}"


def _storage_modules() -> dict[str, dict[str, Any]]:
    """main.bicep's calls of app/storage.bicep, by symbolic name: their params."""
    modules = _template("infra/main.bicep")["modules"]
    return {
        name: _body(module)["params"]
        for name, module in modules.items()
        if module["detail"]["path"] == "app/storage.bicep"
    }


def _default(relative: str, param: str) -> Any:
    return _template(relative)["parameters"][param]["default"]


def _app_settings() -> dict[str, Any]:
    site = _body(_only("Microsoft.Web/sites"))
    settings = site["properties"]["siteConfig"]["appSettings"]
    names = [s["name"] for s in settings]
    assert len(names) == len(set(names)), "an app setting is set twice"
    return {s["name"]: s["value"] for s in settings}


def _raw_sources() -> dict[Path, str]:
    files = [*BICEP_FILES, INFRA / "main.parameters.json", ROOT / "azure.yaml"]
    files += sorted(HOOKS.glob("*"))
    return {p: p.read_text(encoding="utf-8") for p in files}


# --- parsing and checkov -----------------------------------------------------------------


def test_every_bicep_file_parses() -> None:
    assert BICEP_FILES, "no .bicep files under infra/"
    parsed = _parsed()
    assert parsed["errors"] == {}
    assert set(parsed["templates"]) == {str(p.relative_to(ROOT)) for p in BICEP_FILES}
    assert _template("infra/main.bicep")["globals"]["scope"]["value"] == "subscription"


def test_modules_are_called_with_the_parameters_they_declare() -> None:
    """What `bicep build` would catch first: unknown or missing module parameters."""
    for file, template in _parsed()["templates"].items():
        for name, module in template.get("modules", {}).items():
            assert module["type"] == "local", f"{file}: module {name} must be a local file"
            target = (ROOT / file).parent / module["detail"]["path"]
            declared = _template(str(target.relative_to(ROOT)))["parameters"]
            passed = set(_body(module).get("params", {}))
            required = {p for p, spec in declared.items() if spec["default"] is None}
            assert passed <= set(declared), f"{file}:{name} passes unknown {passed - set(declared)}"
            assert required <= passed, f"{file}:{name} misses {required - passed}"


def test_checkov_reports_no_failed_checks() -> None:
    checkov = _infra_tool("checkov")
    done = _run(
        [str(checkov), "--framework", "bicep", "-d", "infra", "-o", "json", "--skip-download"]
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"].get("failed_checks", [])
    ]
    assert failed == [], "\n".join(failed)
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 20, summary

    # Every skip carries a written reason beside the resource, and none is stale.
    skipped = report["results"].get("skipped_checks", [])
    for check in skipped:
        reason = check["check_result"].get("suppress_comment", "")
        assert len(reason) >= 30 and reason != "No comment provided", check["check_id"]
    reported = {(Path(c["file_path"]).name, c["check_id"]) for c in skipped}
    written = {
        (path.name, match)
        for path in BICEP_FILES
        for match in re.findall(r"checkov:skip=([A-Z0-9_]+):\S", path.read_text())
    }
    assert written == reported, f"stale or reasonless skips: {written ^ reported}"
    assert done.returncode == 0, done.stderr[-2000:]


# --- security properties -----------------------------------------------------------------


def test_storage_is_identity_only_and_keeps_every_upload() -> None:
    account = _body(_only("Microsoft.Storage/storageAccounts"))["properties"]
    assert account["allowSharedKeyAccess"] is False
    assert account["allowBlobPublicAccess"] is False
    assert account["minimumTlsVersion"] == "TLS1_2"
    assert account["supportsHttpsTrafficOnly"] is True
    assert account["defaultToOAuthAuthentication"] is True

    blob = _body(_only("Microsoft.Storage/storageAccounts/blobServices"))["properties"]
    assert blob["isVersioningEnabled"] == "blobVersioning"
    assert _storage_modules()["dataStorage"]["blobVersioning"] is True  # uploads never lost
    assert blob["deleteRetentionPolicy"]["enabled"] is True
    assert blob["containerDeleteRetentionPolicy"]["enabled"] is True
    # Nobody skips the retention of a deleted version, except an administrator who turns
    # this on for one purge (docs/deploy.md); the next provision turns it off again.
    assert blob["deleteRetentionPolicy"]["allowPermanentDelete"] is False
    assert _default("infra/app/storage.bicep", "softDeleteRetentionDays") >= 7

    containers = [
        _body(r)
        for _, _, r in _resources("Microsoft.Storage/storageAccounts/blobServices/containers")
        if not r.get("existing")
    ]
    assert len(containers) == 1  # one loop over containerNames, private like every container
    assert all(c["properties"]["publicAccess"] == "None" for c in containers)
    modules = _storage_modules()
    assert modules["hostStorage"]["containerNames"] == ["deploymentContainerName"]
    assert modules["dataStorage"]["containerNames"] == [
        "certContainerName",
        "resultsContainerName",
        "reportContainerName",
    ]
    defaults = Settings()
    assert _default("infra/main.bicep", "certContainerName") == defaults.cert_container
    assert _default("infra/main.bicep", "resultsContainerName") == defaults.results_container
    # The fleet report (DESIGN §3: REPORT_CONTAINER, default "reports"), private like the rest.
    assert _default("infra/main.bicep", "reportContainerName") == "reports"
    assert defaults.report_container == "reports"
    tables = set(_default("infra/main.bicep", "tableNames"))
    assert tables == set(TABLES)  # exactly the tables the store uses
    # Every table exists in Bicep (workers create none at cold start), in the data account.
    assert modules["dataStorage"]["tableNames"] == "tableNames"
    assert "tableNames" not in modules["hostStorage"]
    assert _default("infra/app/storage.bicep", "tableNames") == []
    (table,) = [
        r
        for _, _, r in _resources("Microsoft.Storage/storageAccounts/tableServices/tables")
        if not r.get("existing")
    ]
    assert table["config"]["loop_type"]["detail"]["array_name"] == "tableNames"
    assert _body(table)["parent"] == "tableService"  # top level, as pycep-parser needs


def test_infra_deploys_a_data_account_apart_from_the_host() -> None:
    """Issue 23: whoever may write uploads must not reach the app's package or host keys."""
    modules = _storage_modules()
    assert set(modules) == {"hostStorage", "dataStorage"}
    main = _template("infra/main.bicep")["variables"]
    host_name = main[modules["hostStorage"]["name"]]["value"]
    data_name = main[modules["dataStorage"]["name"]]["value"]
    assert host_name != data_name
    # The data account keeps the single account's name: an upgrade keeps its uploads.
    assert data_name == "st${resourceToken}"

    function = _body(_template("infra/main.bicep")["modules"]["functionApp"])["params"]
    assert _root(function["hostStorageAccountName"]) == "hostStorage"
    assert _root(function["deploymentContainerName"]) == "hostStorage"
    assert _root(function["dataStorageAccountName"]) == "dataStorage"
    for container in ("certContainerName", "resultsContainerName", "reportContainerName"):
        assert _root(function[container]) == "dataStorage", container

    settings = _app_settings()
    for service in ("blob", "queue", "table"):
        assert _root(settings[f"AzureWebJobsStorage__{service}ServiceUri"]) == "hostStorage"
        assert _root(settings[f"CertStorage__{service}ServiceUri"]) == "dataStorage"
    site = _body(_only("Microsoft.Web/sites"))
    package = site["properties"]["functionAppConfig"]["deployment"]["storage"]["value"]
    assert _root(package) == "hostStorage"
    accounts = {
        name: _body(r)["name"]
        for file, name, r in _resources("Microsoft.Storage/storageAccounts")
        if file == "infra/app/function.bicep"
    }
    assert accounts == {
        "hostStorage": "hostStorageAccountName",
        "dataStorage": "dataStorageAccountName",
    }

    # The blob trigger's events come from the data account.
    topic = _body(_template("infra/main.bicep")["modules"]["eventGrid"])["params"]
    assert _root(topic["storageAccountId"]) == "dataStorage"
    rbac = _body(_template("infra/main.bicep")["modules"]["rbac"])["params"]
    assert _root(rbac["hostStorageAccountName"]) == "hostStorage"
    assert _root(rbac["dataStorageAccountName"]) == "dataStorage"


def test_monitoring_has_local_auth_off() -> None:
    insights = _body(_only("Microsoft.Insights/components"))["properties"]
    assert insights["DisableLocalAuth"] is True
    assert insights["WorkspaceResourceId"]
    workspace = _body(_only("Microsoft.OperationalInsights/workspaces"))["properties"]
    assert workspace["features"]["disableLocalAuth"] is True


def test_key_vault_uses_rbac_with_purge_protection() -> None:
    vault = _body(_only("Microsoft.KeyVault/vaults"))["properties"]
    assert vault["enableRbacAuthorization"] is True
    assert vault["enablePurgeProtection"] is True
    assert vault["enableSoftDelete"] is True
    assert "accessPolicies" not in vault
    for relative, param in [
        ("infra/main.bicep", "teamsWebhookUrl"),
        ("infra/main.bicep", "smtpPassword"),
        ("infra/app/keyvault.bicep", "teamsWebhookUrl"),
        ("infra/app/keyvault.bicep", "smtpPassword"),
        ("infra/app/secret.bicep", "value"),
    ]:
        decorators = _template(relative)["parameters"][param]["decorators"]
        assert {"type": "secure"} in decorators, f"{relative}: {param} must be @secure()"


def test_function_app_is_flex_consumption_python_with_user_assigned_identity() -> None:
    plan = _body(_only("Microsoft.Web/serverfarms"))
    assert plan["sku"] == {"name": "FC1", "tier": "FlexConsumption"}
    assert plan["properties"]["reserved"] is True

    site = _body(_only("Microsoft.Web/sites"))
    assert site["kind"] == "functionapp,linux"
    assert site["identity"]["type"] == "UserAssigned"
    properties = site["properties"]
    assert properties["httpsOnly"] is True
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    assert properties["siteConfig"]["minTlsVersion"] == "1.2"
    config = properties["functionAppConfig"]
    assert config["runtime"]["name"] == "python"
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert config["runtime"]["version"] == "pythonVersion"
    assert _default("infra/app/function.bicep", "pythonVersion") == running
    assert _default("infra/main.bicep", "pythonVersion") == running
    auth = config["deployment"]["storage"]["authentication"]
    assert auth == {"type": "UserAssignedIdentity", "userAssignedIdentityResourceId": "identityId"}

    policies = [
        _body(r) for _, _, r in _resources("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    ]
    assert sorted(p["name"] for p in policies) == ["ftp", "scm"]
    assert all(p["properties"]["allow"] is False for p in policies)


def test_flex_sites_carry_only_properties_flex_consumption_documents() -> None:
    sites = [
        (name, _body(resource))
        for _, name, resource in _resources("Microsoft.Web/sites")
        if not resource.get("existing")
    ]
    flex = [(n, site) for n, site in sites if "functionAppConfig" in site.get("properties", {})]
    assert flex and len(flex) == len(sites), "every site here is a Flex Consumption app"
    for name, site in flex:
        assert set(site) <= FLEX_SITE_KEYS, f"{name}: {set(site) - FLEX_SITE_KEYS}"
        properties = site["properties"]
        assert set(properties) <= FLEX_SITE_PROPERTIES, set(properties) - FLEX_SITE_PROPERTIES
        config = properties.get("siteConfig", {})
        assert set(config) <= FLEX_SITE_CONFIG, (
            f"{name}: siteConfig {set(config) - FLEX_SITE_CONFIG}"
        )
        assert not set(config) & FLEX_REJECTED_SITE_CONFIG
        function_config = properties["functionAppConfig"]
        assert set(function_config) <= FLEX_FUNCTION_APP_CONFIG
    assert not set(_app_settings()) & FLEX_DEPRECATED_APP_SETTINGS


def test_telemetry_mode_and_the_worker_setting_come_as_a_pair() -> None:
    """host.json's OpenTelemetry mode needs the worker to own OpenTelemetry (the otel
    reference sets both); then the app must not configure Azure Monitor a second time."""
    host = json.loads((ROOT / "host.json").read_text())
    settings = _app_settings()
    assert host["telemetryMode"] == "OpenTelemetry"
    assert settings["PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY"] == "true"
    assert worker_manages_telemetry(
        {name: str(value) for name, value in settings.items() if isinstance(value, str)}
    ), "the code must see the template's value as 'the worker owns telemetry'"
    # Entra auth for the worker's exporter: it reads this setting itself.
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]


def test_the_site_starts_only_after_its_role_assignments_exist() -> None:
    """Key Vault references resolve on the site's first start: before Key Vault Secrets User
    exists they stay the literal @Microsoft.KeyVault(...) string for up to a day."""
    modules = _template("infra/main.bicep")["modules"]
    function_module = modules["functionApp"]
    assert "rbac" in _body(function_module).get("dependsOn", [])
    assert modules["rbac"]["detail"]["path"] == "app/rbac.bicep"
    # No cycle: the role assignments need the identity, never the site.
    assert "functionApp" not in json.dumps(_body(modules["rbac"]))
    vault_roles = [
        _body(r)["properties"]["roleDefinitionId"]
        for _, _, r in _resources("Microsoft.Authorization/roleAssignments")
        if _body(r)["properties"]["principalId"] == "identityPrincipalId"
    ]
    assert any("keyVaultSecretsUser" in json.dumps(role) for role in vault_roles)


def test_custom_email_role_name_is_unique_per_subscription_and_resource_group() -> None:
    """A custom role's roleName is unique per tenant: two environments must never clash."""
    rbac = _template("infra/app/rbac.bicep")
    role = _body(_only("Microsoft.Authorization/roleDefinitions", "infra/app/rbac.bicep"))
    role_name = role["properties"]["roleName"]
    match = re.fullmatch(r"[^$]*\$\{(\w+)\}[^$]*", role_name)
    assert match, f"roleName {role_name!r} must embed a unique GUID"
    unique = rbac["variables"][match.group(1)]["value"]["function"]
    assert unique["type"] == "guid"
    arguments = list(unique["parameters"].values())
    assert {
        "type": "subscription",
        "parameters": {"subscription_id": None},
        "property_name": "id",
    } in [a.get("function") for a in arguments if isinstance(a, dict)]
    assert any(
        isinstance(a, dict) and a.get("function", {}).get("type") == "resource_group"
        for a in arguments
    )
    assert role["name"] == match.group(1), "the definition's GUID and its name come from one value"
    text = (INFRA / "app" / "rbac.bicep").read_text()
    assert "resourceGroup().name" not in text.split("resource emailSenderRole")[1].split("\n}")[0]


def test_location_is_restricted_to_regions_that_offer_flex_consumption() -> None:
    decorators = _template("infra/main.bicep")["parameters"]["location"]["decorators"]
    allowed = [d["argument"] for d in decorators if d["type"] == "allowed"]
    assert allowed, "location needs @allowed: a wrong region must fail at the prompt"
    assert set(allowed[0]) == FLEX_REGIONS
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    for region in re.findall(r"AZURE_LOCATION (\w+)", deploy):
        assert region in FLEX_REGIONS, region


def test_app_settings_are_exactly_what_the_code_reads_plus_platform_settings() -> None:
    settings = _app_settings()
    assert set(settings) == set(APP_SETTING_NAMES) | INFRA_SETTING_NAMES | READER_SETTING_NAMES
    assert settings["REPORT_CONTAINER"] == "reportContainerName"
    # The readers' endpoints default to DESIGN §3's public-cloud values.
    endpoints = _template("infra/main.bicep")["variables"]["endpoints"]["value"]
    for key, default in READER_ENDPOINT_DEFAULTS.items():
        assert endpoints[key]["operator"]["operands"]["true_value"] == default, key
    function = _body(_template("infra/main.bicep")["modules"]["functionApp"])["params"]
    assert _dotted(function["armEndpoint"]) == "endpoints.arm"
    assert _dotted(function["dpsEndpoint"]) == "endpoints.dps"
    assert _dotted(function["iotCentralEndpoint"]) == "endpoints.iotCentral"
    assert _default("infra/app/function.bicep", "dpsEndpoint") == READER_ENDPOINT_DEFAULTS["dps"]
    for name in ("sphereCatalogs", "iotCentralApps"):
        assert _default("infra/main.bicep", name) == ""
    # The template's defaults are the code's (DESIGN §3: REGISTRATION_REFRESH 6h, no targets).
    defaults = Settings()
    for template in ("infra/app/function.bicep", "infra/main.bicep"):
        refresh = _default(template, "registrationRefresh")
        assert Settings.from_env({"REGISTRATION_REFRESH": refresh}) == defaults, template
    assert _default("infra/main.bicep", "registrationTargets") == ""
    assert Settings.from_env({"REGISTRATION_TARGETS": ""}) == defaults
    for prefix in ("AzureWebJobsStorage", "CertStorage"):
        assert settings[f"{prefix}__credential"] == "managedidentity"
        assert settings[f"{prefix}__clientId"] == "identityClientId"
    assert "Authorization=AAD" in settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"]
    assert settings["AZURE_CLIENT_ID"] == "identityClientId"
    for secret in ("TEAMS_WEBHOOK_URL", "SMTP_PASSWORD"):
        assert "@Microsoft.KeyVault(SecretUri=" in json.dumps(settings[secret]), secret


def test_no_keys_or_connection_strings_with_secrets_anywhere() -> None:
    forbidden = re.compile(
        r"listKeys\(|listConnectionStrings\(|AccountKey=|SharedAccessSignature=|accesskey=|"
        r"InstrumentationKey=|listSecrets\(",
        re.IGNORECASE,
    )
    for path, text in _raw_sources().items():
        assert not forbidden.search(text), f"{path.relative_to(ROOT)} uses a key"
    for name in _app_settings():
        assert name == "APPLICATIONINSIGHTS_CONNECTION_STRING" or "CONNECTION" not in name.upper()
        assert name not in ("AzureWebJobsStorage", "CertStorage"), "plain connection string"


def _assignments() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, resource as parsed, body) of every role assignment."""
    return [
        (name, r, _body(r)) for _, name, r in _resources("Microsoft.Authorization/roleAssignments")
    ]


def _role_key(body: dict[str, Any]) -> str:
    """The key of `roles` in rbac.bicep that an assignment's roleDefinitionId names."""
    definition = body["properties"]["roleDefinitionId"]
    if "function" not in definition:
        return _dotted(definition)  # emailSenderRole.id
    return _dotted(definition["function"]["parameters"]["resource_name_1"]).removeprefix("roles.")


def test_role_assignments_live_in_rbac_bicep_and_are_least_privilege() -> None:
    assignments = list(_resources("Microsoft.Authorization/roleAssignments"))
    assert assignments
    assert {file for file, _, _ in assignments} == {"infra/app/rbac.bicep"}
    roles = _template("infra/app/rbac.bicep")["variables"]["roles"]["value"]
    assert set(roles.values()) <= set(ALLOWED_ROLES), set(roles.values()) - set(ALLOWED_ROLES)
    text = (INFRA / "app" / "rbac.bicep").read_text()
    assert not any(role in text for role in BROAD_ROLES)

    by_principal: dict[str, list[str]] = {}
    for name, resource, body in _assignments():
        principal = body["properties"]["principalId"]
        by_principal.setdefault(principal, []).append(name)
        condition = _body(resource) is not resource["config"] and resource["config"].get(
            "condition"
        )
        # App roles always exist; the developer's only with principalId; people per list entry.
        assert bool(condition) == (principal == "principalId"), name
        if "loop_type" in resource["config"]:
            assert principal in {"uploader", "reader", "principalId"}, name
    assert set(by_principal) == {"identityPrincipalId", "principalId", "uploader", "reader"}

    for file in ("infra/app/rbac.bicep", "infra/app/reader-role.bicep"):
        custom = _body(_only("Microsoft.Authorization/roleDefinitions", file))["properties"]
        actions = custom["permissions"][0]["actions"]
        assert all("*" not in a and "listkeys" not in a.lower() for a in actions), actions
        assert custom["assignableScopes"] != ["/"]


def test_no_person_has_a_role_on_a_storage_account() -> None:
    """Issue 23: grants to people are container-scoped (tables: table-scoped); the host
    account, which holds the deployment package, has data roles for the app identity only."""
    rbac = _template("infra/app/rbac.bicep")["resources"]
    kinds = {name: resource["type"] for name, resource in rbac.items()}
    person_scopes = {
        "Microsoft.Storage/storageAccounts/blobServices/containers",
        "Microsoft.Storage/storageAccounts/tableServices/tables",
        "Microsoft.KeyVault/vaults",
    }
    grants: dict[tuple[str, str], str] = {}
    for name, _, body in _assignments():
        principal = body["properties"]["principalId"]
        scope = _root(body["scope"])
        if principal == "identityPrincipalId":
            continue
        assert kinds[scope] in person_scopes, f"{name}: {principal} gets a role on {scope}"
        assert scope != "hostStorage"
        grants[(principal, _role_key(body))] = scope
    # Uploaders: Contributor on `certificates` only; report readers: Reader on `reports` only.
    assert {k: v for k, v in grants.items() if k[0] == "uploader"} == {
        ("uploader", "storageBlobDataContributor"): "certContainer"
    }
    assert {k: v for k, v in grants.items() if k[0] == "reader"} == {
        ("reader", "storageBlobDataReader"): "reportContainer"
    }
    containers = {
        name: _body(rbac[name])["name"]
        for name in ("certContainer", "reportContainer", "resultsContainer")
    }
    assert containers == {
        "certContainer": "certContainerName",
        "reportContainer": "reportContainerName",
        "resultsContainer": "resultsContainerName",
    }
    assert _root(_body(rbac["certContainer"])["parent"]) == "dataBlobService"
    assert _body(rbac["dataBlobService"])["parent"] == "dataStorage"
    # The lists come from main.bicep's comma-separated parameters (azd env variables).
    rbac_module = _body(_template("infra/main.bicep")["modules"]["rbac"])["params"]
    assert rbac_module["uploaderPrincipalIds"] == "uploaders"
    assert rbac_module["reportReaderPrincipalIds"] == "reportReaders"
    variables = _template("infra/main.bicep")["variables"]
    for variable in ("uploaders", "reportReaders"):  # "a, b," is two principals, not three
        assert variables[variable]["value"]["function"]["type"] == "filter", variable
    for param in ("uploaderPrincipalIds", "reportReaderPrincipalIds"):
        assert _default("infra/main.bicep", param) == ""
        assert _default("infra/app/rbac.bicep", param) == []


def test_app_identity_may_delete_blob_versions() -> None:
    """A refused upload holding a private key is deleted with every version of it: that needs
    deleteBlobVersion/action, which Storage Blob Data Owner has and Contributor has not."""
    owners = [body for _, _, body in _assignments() if _role_key(body) == "storageBlobDataOwner"]
    assert [g["properties"]["principalId"] for g in owners] == ["identityPrincipalId"] * 2
    # Host storage (the Functions docs' requirement) and the whole data account.
    assert sorted(g["scope"] for g in owners) == ["dataStorage", "hostStorage"]


def test_registration_readers_get_only_the_certificate_reads() -> None:
    """Issue 22 §5: no Reader on hubs and DPS, a custom role with the two reads instead."""
    role = _body(_only("Microsoft.Authorization/roleDefinitions", "infra/app/reader-role.bicep"))
    permissions = role["properties"]["permissions"]
    assert permissions == [
        {
            "actions": [
                "Microsoft.Devices/IotHubs/certificates/read",
                "Microsoft.Devices/provisioningServices/certificates/read",
            ],
            "notActions": [],
            "dataActions": [],
            "notDataActions": [],
        }
    ]
    template = _template("infra/app/reader-role.bicep")
    assert template["globals"]["scope"]["value"] == "subscription"
    unique = template["variables"][role["name"]]["value"]["function"]
    assert unique["type"] == "guid" and "resourceGroupId" in unique["parameters"].values()
    assert "${roleId}" in role["properties"]["roleName"]
    outputs = _template("infra/main.bicep")["outputs"]
    assert "AZURE_REGISTRATION_READER_ROLE_ID" in outputs
    for hook in ("postprovision.sh", "postprovision.ps1"):
        text = (HOOKS / hook).read_text()
        assert not re.search(r"assignment create[^\n]*--role Reader", text), hook


def test_communication_services_email_uses_an_azure_managed_domain() -> None:
    domain = _body(_only("Microsoft.Communication/emailServices/domains"))
    assert domain["name"] == "AzureManagedDomain"
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    acs = _body(_only("Microsoft.Communication/communicationServices"))
    assert acs["properties"]["linkedDomains"]
    # Issue 23: no access keys; only Entra ID (the app's identity) sends.
    assert acs["properties"]["disableLocalAuth"] is True
    topic = _body(_only("Microsoft.EventGrid/systemTopics"))
    assert topic["properties"]["topicType"] == "Microsoft.Storage.StorageAccounts"


# --- azd wiring ----------------------------------------------------------------------------


def test_parameters_file_maps_azd_environment_to_main_parameters() -> None:
    values = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    declared = _template("infra/main.bicep")["parameters"]
    assert set(values) <= set(declared)
    assert {p for p, spec in declared.items() if spec["default"] is None} <= set(values)
    expected = {
        "environmentName": "AZURE_ENV_NAME",
        "location": "AZURE_LOCATION",
        "principalId": "AZURE_PRINCIPAL_ID",
        "teamsWebhookUrl": "TEAMS_WEBHOOK_URL",
        "alertEmailTo": "ALERT_EMAIL_TO",
        "alertEmailRoutes": "ALERT_EMAIL_ROUTES",
        "registrationTargets": "REGISTRATION_TARGETS",
        "registrationRefresh": "REGISTRATION_REFRESH",
        "sphereCatalogs": "SPHERE_CATALOGS",
        "iotCentralApps": "IOT_CENTRAL_APPS",
        "armEndpoint": "ARM_ENDPOINT",
        "dpsEndpoint": "DPS_ENDPOINT",
        "iotCentralEndpoint": "IOT_CENTRAL_ENDPOINT",
        "uploaderPrincipalIds": "UPLOADER_PRINCIPAL_IDS",
        "reportReaderPrincipalIds": "REPORT_READER_PRINCIPAL_IDS",
    }
    for param, variable in expected.items():
        assert re.fullmatch(r"\$\{" + variable + r"(=[^}]*)?\}", values[param]["value"]), param
    # Defaults for the app settings agree with shared/settings.py.
    defaults = Settings()
    assert _default("infra/main.bicep", "alertSchedule") == defaults.alert_schedule
    assert _default("infra/main.bicep", "maxUploadBytes") == str(defaults.max_upload_bytes)
    assert _default("infra/main.bicep", "smtpPort") == str(defaults.smtp_port)
    assert values["alertSchedule"]["value"] == "${ALERT_SCHEDULE=" + defaults.alert_schedule + "}"


def test_azure_yaml_deploys_the_project_root_as_a_python_function() -> None:
    python = _infra_tool("python")
    done = _run([str(python), "-c", _YAML, "azure.yaml"])
    assert done.returncode == 0, done.stderr
    project = json.loads(done.stdout)
    assert project["services"] == {
        "api": {"project": ".", "language": "python", "host": "function", "remoteBuild": True}
    }
    # Older azd packages the whole folder (or misreads .funcignore): refuse them up front.
    required = re.fullmatch(r">=\s*(\d+)\.(\d+)\.(\d+)", project["requiredVersions"]["azd"])
    assert required and tuple(map(int, required.groups())) >= MIN_AZD_VERSION
    deploy = (ROOT / "docs" / "deploy.md").read_text()
    assert "1.23.13" in deploy
    for hook in ("postprovision", "postdeploy"):
        spec = project["hooks"][hook]
        assert spec["posix"]["shell"] == "sh" and spec["windows"]["shell"] == "pwsh"
        for platform in ("posix", "windows"):
            assert (ROOT / spec[platform]["run"]).is_file(), spec[platform]["run"]


def test_hooks_use_only_variables_that_azd_or_main_bicep_provide() -> None:
    outputs = set(_template("infra/main.bicep")["outputs"])
    provided = outputs | {"AZURE_SUBSCRIPTION_ID", "AZURE_PRINCIPAL_ID", "AZURE_ENV_NAME"}
    for path in sorted(HOOKS.glob("*")):
        used = set(re.findall(r"\b(AZURE_[A-Z_]+)\b", path.read_text()))
        assert used <= provided, f"{path.name} reads {used - provided}"
    for script in sorted(HOOKS.glob("*.sh")):
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        text = script.read_text()
        assert "set -x" not in text and 'echo "${endpoint}' not in text
    postdeploy = (HOOKS / "postdeploy.sh").read_text()
    assert "systemKeys.blobs_extension" in postdeploy
    assert "Microsoft.Storage.BlobCreated" in postdeploy
    assert "/blobServices/default/containers/${container}/" in postdeploy


def test_local_settings_example_lists_every_setting_with_its_default() -> None:
    values = json.loads((ROOT / "local.settings.json.example").read_text())["Values"]
    platform = {"FUNCTIONS_WORKER_RUNTIME", "AzureWebJobsStorage", "CertStorage"}
    assert set(values) == set(APP_SETTING_NAMES) | platform
    assert values["AzureWebJobsStorage"] == values["CertStorage"] == "UseDevelopmentStorage=true"
    assert values["FUNCTIONS_WORKER_RUNTIME"] == "python"
    assert Settings.from_env(values) == Settings()


def test_hooks_and_settings_match_the_registered_functions() -> None:
    """The post-deploy hook subscribes the blob function by name; its bindings' %SETTINGS%
    and connection must be app settings the template sets."""
    from shared.local.runner import registered_functions  # get_functions() runs once only

    functions = {
        name: json.loads(f.get_function_json()) for name, f in registered_functions().items()
    }
    blob = [
        (name, b)
        for name, spec in functions.items()
        for b in spec["bindings"]
        if b["type"] == "blobTrigger"
    ]
    assert len(blob) == 1
    name, binding = blob[0]
    assert binding["source"] == "EventGrid"  # the only blob trigger source on Flex
    for hook in ("postdeploy.sh", "postdeploy.ps1"):
        assert (
            f"'{name}'" in (HOOKS / hook).read_text() or f":-{name}}}" in (HOOKS / hook).read_text()
        ), f"{hook} does not default to {name}"
    settings = _app_settings()
    for spec in functions.values():
        for b in spec["bindings"]:
            for placeholder in re.findall(r"%([A-Za-z0-9_]+)%", json.dumps(b)):
                assert placeholder in settings, placeholder
            if "connection" in b:
                assert f"{b['connection']}__blobServiceUri" in settings


# --- post-provision hook: the live readers' roles ------------------------------------------

_FAKE_AZ = """#!/usr/bin/env bash
# Stands in for the Azure CLI, which cannot run here (no Azure): records each call and answers
# like az would: "already" scopes hold the role (and the old Reader), "forbidden" ones refuse;
# `az rest` GET finds the IoT Central user only in "already" apps, PUT fails in "forbidden" ones.
printf '%s\\n' "$*" >> "$AZ_CALLS"
scope="" url="" method=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --scope) scope="$2" ;;
    --url) url="$2" ;;
    --method) method="$2" ;;
  esac
  shift
done
last="$(tail -n1 "$AZ_CALLS")"
if [[ "$last" == "role assignment list"* ]]; then
  [[ "$scope" == *already* ]] && echo 1 || echo 0
  exit 0
fi
if [[ "$last" == rest* ]]; then
  if [[ "$method" == get ]]; then [[ "$url" == *already* ]] && exit 0 || exit 1; fi
  [[ "$url" == *forbidden* ]] && { echo "ERROR: Forbidden" >&2; exit 1; }
  exit 0
fi
if [[ "$scope" == *forbidden* ]]; then
  echo "ERROR: (AuthorizationFailed) does not have authorization" >&2
  exit 1
fi
exit 0
"""
PRINCIPAL = "11111111-2222-3333-4444-555555555555"
READER_ROLE = "99999999-8888-7777-6666-555555555555"
DPS_DATA_READER = "10745317-c249-44a1-a5ce-3a4353c0bbd8"
SPHERE_READER = "c8ae6279-5a0b-4cb2-b3f0-d4d62845742c"
CENTRAL_OPERATOR = "ae2c9854-393b-4f97-8c42-479d70ce626e"


def _run_postprovision(
    tmp_path: Path, targets: str, catalogs: str = "", apps: str = ""
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir(exist_ok=True)
    az = fake_bin / "az"
    az.write_text(_FAKE_AZ)
    az.chmod(0o755)
    calls = tmp_path / "az-calls.txt"
    calls.write_text("")
    env = {
        "PATH": f"{fake_bin}:{os.environ['PATH']}",
        "AZ_CALLS": str(calls),
        "AZURE_RESOURCE_GROUP": "rg-test",
        "AZURE_STORAGE_ACCOUNT_NAME": "sttest",
        "AZURE_FUNCTION_APP_NAME": "func-test",
        "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": PRINCIPAL,
        "AZURE_PRINCIPAL_ID": "dev",
        "AZURE_TENANT_ID": "tenant-1",
        "AZURE_REGISTRATION_TARGETS": targets,
        "AZURE_REGISTRATION_READER_ROLE_ID": READER_ROLE,
        "AZURE_SPHERE_CATALOGS": catalogs,
        "AZURE_IOT_CENTRAL_APPS": apps,
    }
    done = subprocess.run(
        [str(HOOKS / "postprovision.sh")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done, calls.read_text().splitlines()


def _create(role: str, scope: str) -> str:
    return (
        f"role assignment create --assignee-object-id {PRINCIPAL} --assignee-principal-type "
        f"ServicePrincipal --role {role} --scope {scope} --only-show-errors --output none"
    )


def test_postprovision_grants_the_readers_only_what_they_read(tmp_path: Path) -> None:
    """Issue 22 §5: the custom certificate-read role on each hub and DPS (never Reader), DPS
    Data Reader on each DPS, Azure Sphere Reader on each catalog."""
    sub = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups"
    hub = f"{sub}/rg-iot/providers/Microsoft.Devices/IotHubs/hub-a"
    dps = f"{sub}/rg-dps/providers/Microsoft.Devices/provisioningServices/dps-a"
    held = f"{sub}/rg-already/providers/Microsoft.Devices/IotHubs/hub-b"
    refused = f"{sub}/rg-forbidden/providers/Microsoft.Devices/IotHubs/hub-c"
    storage = f"{sub}/rg-x/providers/Microsoft.Storage/storageAccounts/st"
    catalog = f"{sub}/rg-sphere/providers/Microsoft.AzureSphere/catalogs/cat-a"
    done, calls = _run_postprovision(
        tmp_path,
        f" {hub} ,{dps},{storage},not-an-id,, {held},{refused}",
        catalogs=f"{catalog},{hub}",
    )
    assert done.returncode == 0, done.stderr
    creates = [c for c in calls if c.startswith("role assignment create")]
    assert creates == [
        _create(READER_ROLE, hub),
        _create(READER_ROLE, dps),
        _create(DPS_DATA_READER, dps),  # the enrollment groups (data plane)
        _create(READER_ROLE, refused),
        _create(SPHERE_READER, catalog),
    ]  # not the one already held, never a malformed id, never Reader
    assert not any(storage in c or "not-an-id" in c for c in calls)
    assert "'not-an-id' is not an IoT Hub or DPS resource id" in done.stderr
    assert storage in done.stderr
    assert f"SPHERE_CATALOGS entry '{hub}' is not an Azure Sphere catalog" in done.stderr
    # The refused grant names the exact command for someone who may run it.
    assert f"--role {READER_ROLE} --scope {refused}" in done.stderr
    assert "4 registration target(s), catalog(s) or app(s) cannot be read yet" in done.stderr
    assert f"Registration reader (certificate lists) on {held}: already granted" in done.stdout
    # A Reader left from an earlier version is named, with the command that removes it.
    removal = f"az role assignment delete --assignee {PRINCIPAL} --role Reader --scope {held}"
    assert removal in done.stderr


def test_postprovision_adds_the_identity_as_an_iot_central_user(tmp_path: Path) -> None:
    done, calls = _run_postprovision(
        tmp_path, "", apps="contoso-app, already-app,https://forbidden.example.test/,Bad_Name"
    )
    assert done.returncode == 0, done.stderr
    rests = [c for c in calls if c.startswith("rest")]
    user = f"/api/users/{PRINCIPAL}?api-version=2022-07-31"
    puts = [c for c in rests if "--method put" in c]
    assert [c.split("--url ")[1].split(" ")[0] for c in puts] == [
        f"https://contoso-app.azureiotcentral.com{user}",
        f"https://forbidden.example.test{user}",
    ]
    assert all("--resource https://apps.azureiotcentral.com" in c for c in rests)
    body = json.loads(puts[0].split("--body ")[1].split(" --only-show-errors")[0])
    assert body == {
        "type": "servicePrincipal",
        "objectId": PRINCIPAL,
        "tenantId": "tenant-1",
        "roles": [{"role": CENTRAL_OPERATOR}],
    }
    already = "IoT Central user in https://already-app.azureiotcentral.com: already added"
    assert already in done.stdout
    assert "Permissions > Users > Assign user" in done.stderr  # how otherwise
    assert "IOT_CENTRAL_APPS entry 'Bad_Name' is not an app subdomain or a URL" in done.stderr
    assert "2 registration target(s), catalog(s) or app(s)" in done.stderr


def test_postprovision_touches_nothing_without_targets_catalogs_or_apps(tmp_path: Path) -> None:
    done, calls = _run_postprovision(tmp_path, " , ", catalogs=" ", apps=",")
    assert done.returncode == 0, done.stderr
    assert calls == []
    ps1 = (HOOKS / "postprovision.ps1").read_text()
    # The Windows hook does the same (no PowerShell here to run it).
    for fragment in (
        "AZURE_REGISTRATION_TARGETS",
        "AZURE_REGISTRATION_READER_ROLE_ID",
        "AZURE_SPHERE_CATALOGS",
        "AZURE_IOT_CENTRAL_APPS",
        "az role assignment create --assignee-object-id $principal",
        "--assignee-principal-type ServicePrincipal --role $role --scope $scope",
        "Microsoft\\.Devices/(IotHubs|provisioningServices)",
        "Microsoft\\.AzureSphere/catalogs",
        DPS_DATA_READER,
        SPHERE_READER,
        CENTRAL_OPERATOR,
        "/api/users/${principal}?api-version=2022-07-31",
        "type = 'servicePrincipal'",
    ):
        assert fragment in ps1, fragment


# --- the deployment package (.funcignore) ---------------------------------------------------

# Files at the root that make up the app; everything else kept must be under shared/.
APP_ROOT_FILES = {"function_app.py", "host.json", "requirements.txt"}
# Paths that must never ship (checked against the rules, whether or not they exist here).
DEV_ONLY_PATHS = [
    ".venv/lib/python3.11/site-packages/x.py",
    ".venv",  # a worktree may hold these as symlinks, which directory-only patterns miss
    ".venv-infra/bin/checkov",
    ".venv-infra",
    "node_modules/azurite/package.json",
    "node_modules",
    "package.json",
    "package-lock.json",
    "Makefile",
    "docs/deploy.md",
    "README.md",
    "ca_rotation_watch.egg-info/PKG-INFO",
    "build/lib/shared/__init__.py",
    ".azurite/__blobstorage__/0",
    ".azurite/azurite.log",
    "__azurite_db_blob__.json",
    ".outbox/demo/fleet.html",
    ".sample/tenant.cer",
    "scripts/bench.py",
    "scripts/bench_pipeline.py",
    "scripts/demo.py",
    "scripts/azd/postdeploy.sh",
    "shared/local/cli.py",
    "shared/local/azurite.py",
    "tests/test_infra.py",
    "tests/data/azure-sphere-public/README.md",
    "infra/main.bicep",
    "azure.yaml",
    "pyproject.toml",
    "requirements-dev.txt",
    "requirements-infra.txt",
    "local.settings.json",
    "local.settings.json.example",
    ".git/config",
    ".github/workflows/ci.yml",
    ".gitignore",
    ".azure/prod/.env",
    "shared/__pycache__/settings.cpython-311.pyc",
    ".pytest_cache/v/cache/nodeids",
    ".ruff_cache/CACHEDIR.TAG",
    ".hypothesis/examples/x",
    ".bench.json",
]

# Runs in a fresh interpreter without `site` (so no .pth file, in particular not the editable
# install that puts the repository on sys.path): only the package copy and the venv's
# site-packages are importable, as on the Flex instance after its remote build.
_IMPORT_PACKAGE = r"""
import ast, importlib, json, sys
from pathlib import Path
package = Path(sys.argv[1]).resolve()
sys.path[:] = [str(package), *[p for p in sys.path if "site-packages" not in p], *sys.argv[2:]]
import function_app
names = sorted(f.get_function_name() for f in function_app.app.get_functions())
from shared.alerts.rules import load_rules
load_rules()  # the packaged default rules (a data file, not a module)
missing = []
for path in sorted(package.rglob("*.py")):
    module = ".".join(path.relative_to(package).with_suffix("").parts).removesuffix(".__init__")
    importlib.import_module(module)
    # Every import the file names, also inside functions (the runtime imports lazily).
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module if path.name == "__init__.py" else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    parent = parent.rpartition(".")[0]
                base = f"{parent}.{base}".strip(".")
            pairs = [(base, alias.name) for alias in node.names]
        else:
            continue
        for base, name in pairs:
            try:
                target = importlib.import_module(base)
                if name and name != "*" and not hasattr(target, name):
                    importlib.import_module(f"{base}.{name}")
            except ImportError as exc:
                missing.append(f"{path.relative_to(package)}: {base} {name or ''}: {exc}")
outside = sorted(
    name for name, mod in sys.modules.items()
    if (name == "function_app" or name.split(".")[0] == "shared")
    and getattr(mod, "__file__", None)
    and not Path(mod.__file__).resolve().is_relative_to(package)
)
print(json.dumps({"functions": names, "missing": missing, "outside": outside}))
"""


def _funcignore() -> pathspec.PathSpec:
    lines = (ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
    return pathspec.GitIgnoreSpec.from_lines(lines)


def _package_files() -> list[str]:
    """The files azd would zip: walk the project, drop what .funcignore matches (gitignore
    rules, directories pruned) and local.settings.json, which azd always leaves out."""
    spec = _funcignore()
    kept: list[str] = []
    for directory, dirs, files in os.walk(ROOT):
        here = Path(directory).relative_to(ROOT)
        # A symlinked directory is a file entry to azd's walk (it does not follow links).
        links = [d for d in dirs if (Path(directory) / d).is_symlink()]
        dirs[:] = sorted(
            d for d in dirs if d not in links and not spec.match_file(f"{(here / d).as_posix()}/")
        )
        for name in sorted([*files, *links]):
            relative = (here / name).as_posix()
            if name != "local.settings.json" and not spec.match_file(relative):
                kept.append(relative)
    return kept


def test_funcignore_keeps_the_app_and_nothing_that_is_only_for_development() -> None:
    spec = _funcignore()
    leaked = [path for path in DEV_ONLY_PATHS if not spec.match_file(path)]
    assert leaked == [], f".funcignore would ship {leaked}"
    app_paths = [
        *APP_ROOT_FILES,
        "shared/__init__.py",
        "shared/alerts/default_rules.toml",
        "shared/app/templates/fleet.html.j2",  # package data, wherever it lives in shared/
        "shared/analysis/tests/vectors.json",  # root-anchored rules spare same-named folders
        "shared/storage/build/x.py",
    ]
    dropped = [path for path in app_paths if spec.match_file(path)]
    assert dropped == [], f".funcignore would drop app files {dropped}"
    kept = _package_files()
    strays = [
        path
        for path in kept
        if path not in APP_ROOT_FILES
        and not (path.startswith("shared/") and not path.startswith("shared/local/"))
    ]
    assert strays == [], f"would be deployed but are not the app: {strays}"
    assert set(kept) >= APP_ROOT_FILES
    assert "shared/alerts/default_rules.toml" in kept
    assert not any(path.startswith("shared/local/") for path in kept)


def test_the_app_imports_from_the_deployment_package_alone(tmp_path: Path) -> None:
    """Copy only what .funcignore keeps and import function_app there: a rule that drops a
    module the app imports (at load or lazily) fails here, not on the first upload in Azure."""
    import site

    package = tmp_path / "package"
    for relative in _package_files():
        target = package / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes((ROOT / relative).read_bytes())
    assert not (package / "shared" / "local").exists()
    done = subprocess.run(
        [sys.executable, "-S", "-c", _IMPORT_PACKAGE, str(package), *site.getsitepackages()],
        cwd=package,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["missing"] == []
    assert result["outside"] == [], "imported from outside the package copy"
    assert result["functions"] == ["analyze_upload", "send_alerts"]


# --- the deploy docs say what the templates do --------------------------------------------


def test_deploy_docs_list_every_table_and_the_commands_that_work() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    deploy = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for name, text in (("README.md", readme), ("docs/deploy.md", deploy)):
        diagram = re.search(r"tables\[\(tables: ([^)]*)\)\]", text)
        assert diagram, f"{name}: the architecture diagram has no tables node"
        drawn = set(diagram.group(1).replace(" ", "").split(","))
        assert drawn == set(TABLES), (
            f"{name}: the diagram's tables node must list the store's TABLES "
            f"(add {sorted(set(TABLES) - drawn)}, drop {sorted(drawn - set(TABLES))})"
        )
        assert "reports[(reports container" in text, name
    # The hooks and the uploads use the Azure CLI: the short snippet signs in to both.
    snippet = readme.split("## Deploy to Azure", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    assert "azd auth login" in snippet and "az login" in snippet.replace("azd auth login", "")
    # The pinned SDKs send a newer storage API version than the pinned Azurite knows.
    core_tools = deploy.split("### Run the functions locally with Core Tools", 1)[1]
    start = re.search(r"node_modules/.bin/azurite[^&]*&", core_tools, re.S)
    assert start and "--skipApiVersionCheck" in start.group(0)
    assert "--disableTelemetry" in start.group(0)
    assert "not supported by" in core_tools  # and says why
