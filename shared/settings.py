"""Settings, read once from the environment (``local.settings.json`` ``Values`` locally).

Every name the app reads is listed in ``APP_SETTING_NAMES`` so that the infra tests can
check that the Bicep template sets exactly these (DESIGN §3).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import urlsplit

DEFAULT_CONNECTION = "UseDevelopmentStorage=true"
STORAGE_CONNECTION_NAME = "CertStorage"

# Names the code reads (the connection ``CertStorage`` may instead be given as the
# identity-based ``CertStorage__blobServiceUri`` / ``__tableServiceUri`` / ... family).
APP_SETTING_NAMES: tuple[str, ...] = (
    "CERT_CONTAINER",
    "RESULTS_CONTAINER",
    "REPORT_CONTAINER",
    "MAX_UPLOAD_BYTES",
    "RULES_FILE",
    "ALERT_SCHEDULE",
    "ALERT_CHANNELS",
    "ALERT_OUTBOX_DIR",
    "TEAMS_WEBHOOK_URL",
    "ACS_ENDPOINT",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TO",
    "ALERT_EMAIL_ROUTES",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "REGISTRATION_TARGETS",
    "REGISTRATION_REFRESH",
    # The live readers (shared/readers): what they read, where, and for how long at most.
    "REGISTRATION_PULL_BUDGET",
    "SPHERE_CATALOGS",
    "IOT_CENTRAL_APPS",
    "IOT_CENTRAL_API_TOKENS",
    "ARM_ENDPOINT",
    "DPS_ENDPOINT",
    "IOT_CENTRAL_ENDPOINT",
)
KNOWN_CHANNELS = ("teams", "acs-email", "smtp", "outbox")


class SettingsError(ValueError):
    """A setting has a value the app cannot use; the message names the setting."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a whole number") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r}: use true or false")


def _list(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in raw.replace(";", ",").split(",") if part.strip())


# An IoT Hub or DPS ARM resource id (what the portal's "JSON view" and `az iot hub show
# --query id` print); provider and type names are case-insensitive in ARM.
_TARGET_ID = re.compile(
    r"/subscriptions/(?P<subscription>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{12})/resourcegroups/(?P<group>[^/]{1,90})/providers/microsoft\.devices/"
    r"(?P<type>iothubs|provisioningservices)/(?P<name>[a-z0-9][-a-z0-9]{1,62})",
    re.IGNORECASE,
)
# ARM's rule for resource group names: no period at the end, so "." and ".." (which a URL
# path would resolve to another resource) are never one.
_RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
_DURATION_PART = re.compile(r"(\d+)\s*([smhd])", re.IGNORECASE)
_DURATION = re.compile(r"(?:\d+\s*[smhd]\s*)+", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class RegistrationTarget:
    """One hub or DPS named in ``REGISTRATION_TARGETS``."""

    resource_id: str  # as configured (ARM ignores case; the SDK sends these names)
    kind: str  # "iot-hub" | "dps"
    subscription_id: str
    resource_group: str
    name: str

    @property
    def target(self) -> str:
        """The target's identity in listings and the report (DESIGN §3): the id, lower case."""
        return self.resource_id.lower()


def parse_registration_target(raw: str) -> RegistrationTarget:
    """An IoT Hub / DPS ARM resource id; SettingsError naming ``REGISTRATION_TARGETS``."""
    text = raw.strip().rstrip("/")
    match = _TARGET_ID.fullmatch(text)
    if match is None:
        raise SettingsError(
            f"REGISTRATION_TARGETS: {raw.strip()[:200]!r} is not an IoT Hub or DPS resource id "
            "(/subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.Devices/"
            "IotHubs/<hub> or .../provisioningServices/<dps>)"
        )
    if not _RESOURCE_GROUP.fullmatch(match["group"]):
        raise SettingsError(
            f"REGISTRATION_TARGETS: the resource group {match['group'][:90]!r} is not a valid "
            "Azure resource group name (letters, digits, _ - . ( ), not ending in a period: "
            "so never '.' or '..')"
        )
    kind = "iot-hub" if match["type"].lower() == "iothubs" else "dps"
    return RegistrationTarget(text, kind, match["subscription"], match["group"], match["name"])


def _targets(env: Mapping[str, str]) -> tuple[RegistrationTarget, ...]:
    targets: dict[str, RegistrationTarget] = {}
    for raw in _list(env.get("REGISTRATION_TARGETS", "")):
        target = parse_registration_target(raw)
        targets.setdefault(target.target, target)  # the same hub twice is listed once
    return tuple(targets.values())


# --- the live readers' settings (shared/readers) ---------------------------------------
DEFAULT_ARM_ENDPOINT = "https://management.azure.com"
DEFAULT_DPS_ENDPOINT = "https://{name}.azure-devices-provisioning.net"
DEFAULT_IOT_CENTRAL_ENDPOINT = "https://{name}.azureiotcentral.com"
DEFAULT_PULL_BUDGET = timedelta(minutes=3)  # + the 240 s alert pass: well under 10 min
_CATALOG_ID = re.compile(
    r"/subscriptions/(?P<subscription>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{12})/resourcegroups/(?P<group>[-\w.()]{1,90})/providers/microsoft\.azuresphere/"
    r"catalogs/(?P<name>[a-z0-9][-_a-z0-9]{0,49})",
    re.IGNORECASE,
)
_SUBDOMAIN = re.compile(r"[a-z0-9][-a-z0-9]{0,62}")


@dataclass(frozen=True)
class SphereCatalog:
    """One Azure Sphere catalog named in ``SPHERE_CATALOGS``."""

    resource_id: str
    subscription_id: str
    resource_group: str
    name: str

    @property
    def target(self) -> str:
        return self.resource_id.lower()


def _catalogs(env: Mapping[str, str]) -> tuple[SphereCatalog, ...]:
    catalogs: dict[str, SphereCatalog] = {}
    for raw in _list(env.get("SPHERE_CATALOGS", "")):
        text = raw.strip().rstrip("/")
        match = _CATALOG_ID.fullmatch(text)
        # The same resource-group rule as REGISTRATION_TARGETS: never "." or "..", nor a
        # name ending in a period.
        if match is None or not _RESOURCE_GROUP.fullmatch(match["group"]):
            raise SettingsError(
                f"SPHERE_CATALOGS: {text[:200]!r} is not an Azure Sphere catalog resource id "
                "(/subscriptions/<guid>/resourceGroups/<group>/providers/Microsoft.AzureSphere/"
                "catalogs/<catalog>; az sphere catalog show -n CATALOG -g GROUP --query id)"
            )
        catalog = SphereCatalog(text, match["subscription"], match["group"], match["name"])
        catalogs.setdefault(catalog.target, catalog)
    return tuple(catalogs.values())


def _central_apps(env: Mapping[str, str]) -> tuple[str, ...]:
    """App subdomains, lower case: ``myapp`` or ``https://myapp.azureiotcentral.com/``."""
    apps: dict[str, None] = {}
    for raw in _list(env.get("IOT_CENTRAL_APPS", "")):
        text = raw.strip().lower()
        if "://" in text:
            text = (urlsplit(text).hostname or "").split(".")[0]
        if not _SUBDOMAIN.fullmatch(text):
            raise SettingsError(
                f"IOT_CENTRAL_APPS: {raw.strip()[:200]!r} is not an IoT Central app subdomain "
                "(myapp, or https://myapp.azureiotcentral.com)"
            )
        apps.setdefault(text, None)
    return tuple(apps)


def _central_tokens(env: Mapping[str, str]) -> dict[str, str]:
    """``IOT_CENTRAL_API_TOKENS``: a JSON object, app subdomain -> API token (a Key Vault
    reference in Azure), for apps whose users cannot include the app's identity."""
    raw = env.get("IOT_CENTRAL_API_TOKENS", "").strip()
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in value.items()
    ):
        # Never echo the value: it holds secrets.
        raise SettingsError(
            'IOT_CENTRAL_API_TOKENS is not a JSON object {"<app subdomain>": "<API token>"}'
        )
    return {key.strip().lower(): token.strip() for key, token in value.items()}


def _endpoint(env: Mapping[str, str], name: str, default: str, *, template: bool) -> str:
    """An https URL (a template with ``{name}`` where ``template``), without a trailing /."""
    text = env.get(name, "").strip().rstrip("/") or default
    parts = urlsplit(text.replace("{name}", "name"))
    if parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError(f"{name}={text[:200]!r}: use an https URL such as {default}")
    if template and text.count("{name}") != 1:
        raise SettingsError(f"{name}={text[:200]!r}: the URL needs one {{name}}, as in {default}")
    if not template and "{" in text:
        raise SettingsError(f"{name}={text[:200]!r}: use an https URL such as {default}")
    return text


def parse_duration(name: str, raw: str) -> timedelta:
    """``30m``, ``6h``, ``1d``, ``1h30m`` (s, m, h, d); SettingsError naming ``name``."""
    text = raw.strip()
    if not _DURATION.fullmatch(text):
        raise SettingsError(f"{name}={text!r}: use a duration such as 30m, 6h or 1d")
    seconds = sum(int(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(text))
    if seconds <= 0:
        raise SettingsError(f"{name} must be longer than zero, got {text!r}")
    return timedelta(seconds=seconds)


KEY_VAULT_REFERENCE_PREFIX = "@Microsoft.KeyVault("


def teams_webhook_url(url: str | None) -> str | None:
    """The Teams webhook URL, https only: its ``sig`` is a bearer secret that plain http
    would carry in clear. An unresolved Key Vault reference passes: the channel reports
    it in the self-health message (not the user's typo)."""
    if url is None or url.startswith(KEY_VAULT_REFERENCE_PREFIX):
        return url
    if not url.lower().startswith("https://"):
        raise SettingsError(
            "TEAMS_WEBHOOK_URL must be an https:// URL (copy it from the Teams workflow's "
            "trigger; the sig in it is a secret that plain http would expose)"
        )
    return url


@dataclass(frozen=True)
class Settings:
    cert_container: str = "certificates"
    results_container: str = "results"
    report_container: str = "reports"  # fleet.html and fleet.json, written by the timer
    max_upload_bytes: int = 1_048_576
    rules_file: str | None = None
    alert_schedule: str = "0 0 * * * *"
    alert_channels: tuple[str, ...] = ("outbox",)
    alert_outbox_dir: str = ".outbox"
    teams_webhook_url: str | None = field(default=None, repr=False)  # its sig is a secret
    acs_endpoint: str | None = None
    alert_email_from: str | None = None
    alert_email_to: tuple[str, ...] = ()
    # tenant_id -> recipients; tenants not listed go to alert_email_to.
    alert_email_routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    smtp_starttls: bool = True
    registration_targets: tuple[RegistrationTarget, ...] = ()
    registration_refresh: timedelta = timedelta(hours=6)
    registration_pull_budget: timedelta = DEFAULT_PULL_BUDGET
    sphere_catalogs: tuple[SphereCatalog, ...] = ()
    iot_central_apps: tuple[str, ...] = ()
    # App subdomain -> IoT Central API token (secrets: never in repr).
    iot_central_api_tokens: Mapping[str, str] = field(default_factory=dict, repr=False)
    arm_endpoint: str = DEFAULT_ARM_ENDPOINT
    dps_endpoint: str = DEFAULT_DPS_ENDPOINT
    iot_central_endpoint: str = DEFAULT_IOT_CENTRAL_ENDPOINT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        channels = _list(env.get("ALERT_CHANNELS", "outbox")) or ("outbox",)
        unknown = [c for c in channels if c not in KNOWN_CHANNELS]
        if unknown:
            raise SettingsError(
                f"ALERT_CHANNELS has unknown channel(s) {', '.join(unknown)}; "
                f"choose from {', '.join(KNOWN_CHANNELS)}"
            )
        routes_raw = env.get("ALERT_EMAIL_ROUTES", "").strip()
        routes: dict[str, tuple[str, ...]] = {}
        if routes_raw:
            try:
                parsed = json.loads(routes_raw)
            except json.JSONDecodeError as exc:
                raise SettingsError(f"ALERT_EMAIL_ROUTES is not JSON: {exc.msg}") from None
            if not isinstance(parsed, dict):
                raise SettingsError('ALERT_EMAIL_ROUTES must be {"tenant-id": "a@x,b@y"}')
            for tenant, recipients in parsed.items():
                values = recipients if isinstance(recipients, list) else _list(str(recipients))
                routes[str(tenant).lower()] = tuple(str(v) for v in values)
        return cls(
            cert_container=env.get("CERT_CONTAINER", "").strip() or "certificates",
            results_container=env.get("RESULTS_CONTAINER", "").strip() or "results",
            report_container=env.get("REPORT_CONTAINER", "").strip() or "reports",
            max_upload_bytes=_int(env, "MAX_UPLOAD_BYTES", 1_048_576),
            rules_file=env.get("RULES_FILE", "").strip() or None,
            alert_schedule=env.get("ALERT_SCHEDULE", "").strip() or "0 0 * * * *",
            alert_channels=channels,
            alert_outbox_dir=env.get("ALERT_OUTBOX_DIR", "").strip() or ".outbox",
            teams_webhook_url=teams_webhook_url(env.get("TEAMS_WEBHOOK_URL", "").strip() or None),
            acs_endpoint=env.get("ACS_ENDPOINT", "").strip() or None,
            alert_email_from=env.get("ALERT_EMAIL_FROM", "").strip() or None,
            alert_email_to=_list(env.get("ALERT_EMAIL_TO", "")),
            alert_email_routes=routes,
            smtp_host=env.get("SMTP_HOST", "").strip() or None,
            smtp_port=_int(env, "SMTP_PORT", 587),
            smtp_user=env.get("SMTP_USER", "").strip() or None,
            smtp_password=env.get("SMTP_PASSWORD") or None,
            smtp_starttls=_bool(env, "SMTP_STARTTLS", True),
            registration_targets=_targets(env),
            registration_refresh=parse_duration(
                "REGISTRATION_REFRESH", env.get("REGISTRATION_REFRESH", "").strip() or "6h"
            ),
            registration_pull_budget=parse_duration(
                "REGISTRATION_PULL_BUDGET", env.get("REGISTRATION_PULL_BUDGET", "").strip() or "3m"
            ),
            sphere_catalogs=_catalogs(env),
            iot_central_apps=_central_apps(env),
            iot_central_api_tokens=_central_tokens(env),
            arm_endpoint=_endpoint(env, "ARM_ENDPOINT", DEFAULT_ARM_ENDPOINT, template=False),
            dps_endpoint=_endpoint(env, "DPS_ENDPOINT", DEFAULT_DPS_ENDPOINT, template=True),
            iot_central_endpoint=_endpoint(
                env, "IOT_CENTRAL_ENDPOINT", DEFAULT_IOT_CENTRAL_ENDPOINT, template=True
            ),
        )

    @property
    def live_targets(self) -> frozenset[str]:
        """The targets the app reads live: uploads naming them change nothing (DESIGN §1
        "Who may silence an alert")."""
        return frozenset(t.target for t in self.registration_targets) | frozenset(
            app.lower() for app in self.iot_central_apps
        )

    def recipients_for(self, tenant_id: str | None) -> tuple[str, ...]:
        if tenant_id and tenant_id.lower() in self.alert_email_routes:
            return self.alert_email_routes[tenant_id.lower()]
        return self.alert_email_to
