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

import pytest

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
    "AZURE_CLIENT_ID",
}

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
    if os.environ.get("CI", "").strip().lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


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
    assert _default("infra/app/storage.bicep", "softDeleteRetentionDays") >= 7

    containers = [
        _body(r)
        for _, _, r in _resources("Microsoft.Storage/storageAccounts/blobServices/containers")
    ]
    assert len(containers) == 3  # deployment package, certificates, results
    assert all(c["properties"]["publicAccess"] == "None" for c in containers)
    defaults = Settings()
    assert _default("infra/main.bicep", "certContainerName") == defaults.cert_container
    assert _default("infra/main.bicep", "resultsContainerName") == defaults.results_container
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
    assert properties["siteConfig"]["ftpsState"] == "Disabled"
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


def test_app_settings_are_exactly_what_the_code_reads_plus_platform_settings() -> None:
    settings = _app_settings()
    assert set(settings) == set(APP_SETTING_NAMES) | INFRA_SETTING_NAMES
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
        "api": {"project": ".", "language": "python", "host": "function"}
    }
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
