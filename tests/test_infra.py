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


def _only(type_: str) -> dict[str, Any]:
    found = [r for _, _, r in _resources(type_) if not r.get("existing")]
    assert len(found) == 1, f"expected one {type_}, found {len(found)}"
    return found[0]


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
    assert blob["isVersioningEnabled"] is True
    assert blob["deleteRetentionPolicy"]["enabled"] is True
    assert blob["containerDeleteRetentionPolicy"]["enabled"] is True
    # Nobody skips the retention of a deleted version, except an administrator who turns
    # this on for one purge (docs/deploy.md); the next provision turns it off again.
    assert blob["deleteRetentionPolicy"]["allowPermanentDelete"] is False
    assert _default("infra/app/storage.bicep", "softDeleteRetentionDays") >= 7

    containers = [
        _body(r)
        for _, _, r in _resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    ]
    assert len(containers) == 4  # deployment package, certificates, results, reports
    assert all(c["properties"]["publicAccess"] == "None" for c in containers)
    defaults = Settings()
    assert _default("infra/main.bicep", "certContainerName") == defaults.cert_container
    assert _default("infra/main.bicep", "resultsContainerName") == defaults.results_container
    # The fleet report (DESIGN §3: REPORT_CONTAINER, default "reports"), private like the rest.
    assert _default("infra/main.bicep", "reportContainerName") == "reports"
    assert _default("infra/app/storage.bicep", "reportContainerName") == "reports"
    assert defaults.report_container == "reports"
    assert {c["name"] for c in containers} >= {"reportContainerName"}
    tables = set(_default("infra/main.bicep", "tableNames"))
    assert tables == set(TABLES)  # exactly the tables the store creates and uses
    assert set(_default("infra/app/storage.bicep", "tableNames")) == tables


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
    role = _body(_only("Microsoft.Authorization/roleDefinitions"))
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
    assert set(settings) == set(APP_SETTING_NAMES) | INFRA_SETTING_NAMES
    assert settings["REPORT_CONTAINER"] == "reportContainerName"
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


def test_role_assignments_live_in_rbac_bicep_and_are_least_privilege() -> None:
    assignments = list(_resources("Microsoft.Authorization/roleAssignments"))
    assert assignments
    assert {file for file, _, _ in assignments} == {"infra/app/rbac.bicep"}
    roles = _template("infra/app/rbac.bicep")["variables"]["roles"]["value"]
    assert set(roles.values()) <= set(ALLOWED_ROLES), set(roles.values()) - set(ALLOWED_ROLES)
    text = (INFRA / "app" / "rbac.bicep").read_text()
    assert not any(role in text for role in BROAD_ROLES)

    by_principal: dict[str, list[str]] = {}
    for _, name, resource in assignments:
        body = _body(resource)
        principal = body["properties"]["principalId"]
        by_principal.setdefault(principal, []).append(name)
        is_developer = principal == "principalId"
        has_condition = "condition" in resource["config"]
        assert has_condition == is_developer, f"{name}: developer roles are optional, app roles not"
    assert set(by_principal) == {"identityPrincipalId", "principalId"}

    custom = _body(_only("Microsoft.Authorization/roleDefinitions"))["properties"]
    actions = custom["permissions"][0]["actions"]
    assert all("*" not in a and "listkeys" not in a.lower() for a in actions), actions
    assert custom["assignableScopes"] != ["/"]


def test_app_identity_may_delete_blob_versions() -> None:
    """A refused upload holding a private key is deleted with every version of it: that needs
    deleteBlobVersion/action, which Storage Blob Data Owner has and Contributor has not."""
    owner = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
    roles = _template("infra/app/rbac.bicep")["variables"]["roles"]["value"]
    owner_key = next(key for key, role in roles.items() if role == owner)
    grants = [
        _body(r)
        for _, _, r in _resources("Microsoft.Authorization/roleAssignments")
        if owner_key in json.dumps(_body(r)["properties"]["roleDefinitionId"])
    ]
    assert [g["properties"]["principalId"] for g in grants] == ["identityPrincipalId"]
    assert grants[0]["scope"] == "storage"  # the whole account: every container


def test_communication_services_email_uses_an_azure_managed_domain() -> None:
    domain = _body(_only("Microsoft.Communication/emailServices/domains"))
    assert domain["name"] == "AzureManagedDomain"
    assert domain["properties"]["domainManagement"] == "AzureManaged"
    acs = _body(_only("Microsoft.Communication/communicationServices"))
    assert acs["properties"]["linkedDomains"]
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


# --- post-provision hook: Reader on the registration targets ---------------------------------

_FAKE_AZ = """#!/usr/bin/env bash
# Stands in for the Azure CLI, which cannot run here (no Azure): records each call and answers
# like az would for role assignments: "already" scopes hold Reader, "forbidden" ones refuse.
printf '%s\\n' "$*" >> "$AZ_CALLS"
scope=""
while [[ $# -gt 0 ]]; do
  if [[ "$1" == --scope ]]; then scope="$2"; fi
  shift
done
if [[ "$(tail -n1 "$AZ_CALLS")" == "role assignment list"* ]]; then
  [[ "$scope" == *already* ]] && echo 1 || echo 0
  exit 0
fi
if [[ "$scope" == *forbidden* ]]; then
  echo "ERROR: (AuthorizationFailed) does not have authorization" >&2
  exit 1
fi
exit 0
"""


def _run_postprovision(
    tmp_path: Path, targets: str
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
        "AZURE_FUNCTION_IDENTITY_PRINCIPAL_ID": "11111111-2222-3333-4444-555555555555",
        "AZURE_PRINCIPAL_ID": "dev",
        "AZURE_REGISTRATION_TARGETS": targets,
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


def test_postprovision_grants_reader_on_each_registration_target(tmp_path: Path) -> None:
    sub = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups"
    hub = f"{sub}/rg-iot/providers/Microsoft.Devices/IotHubs/hub-a"
    dps = f"{sub}/rg-dps/providers/Microsoft.Devices/provisioningServices/dps-a"
    held = f"{sub}/rg-already/providers/Microsoft.Devices/IotHubs/hub-b"
    refused = f"{sub}/rg-forbidden/providers/Microsoft.Devices/IotHubs/hub-c"
    storage = f"{sub}/rg-x/providers/Microsoft.Storage/storageAccounts/st"
    done, calls = _run_postprovision(
        tmp_path, f" {hub} ,{dps},{storage},not-an-id,, {held},{refused}"
    )
    assert done.returncode == 0, done.stderr
    creates = [c for c in calls if c.startswith("role assignment create")]
    principal = "--assignee-object-id 11111111-2222-3333-4444-555555555555"
    expected = [
        f"role assignment create {principal} --assignee-principal-type ServicePrincipal "
        f"--role Reader --scope {target} --only-show-errors --output none"
        for target in (hub, dps, refused)
    ]
    assert creates == expected  # not the one already held, never a malformed id
    assert not any(storage in c or "not-an-id" in c for c in calls)
    assert "'not-an-id' is not an IoT Hub or DPS resource id" in done.stderr
    assert storage in done.stderr
    # The refused grant names the exact command for someone who may run it.
    assert f"--role Reader --scope {refused}" in done.stderr
    assert "3 registration target(s) cannot be read yet" in done.stderr
    assert f"Reader on {held}: already granted" in done.stdout


def test_postprovision_touches_nothing_without_registration_targets(tmp_path: Path) -> None:
    done, calls = _run_postprovision(tmp_path, " , ")
    assert done.returncode == 0, done.stderr
    assert calls == []
    ps1 = (HOOKS / "postprovision.ps1").read_text()
    # The Windows hook does the same (no PowerShell here to run it).
    for fragment in (
        "AZURE_REGISTRATION_TARGETS",
        "az role assignment create --assignee-object-id $principal",
        "--assignee-principal-type ServicePrincipal --role Reader --scope $target",
        "Microsoft\\.Devices/(IotHubs|provisioningServices)",
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
