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
        )

    def recipients_for(self, tenant_id: str | None) -> tuple[str, ...]:
        if tenant_id and tenant_id.lower() in self.alert_email_routes:
            return self.alert_email_routes[tenant_id.lower()]
        return self.alert_email_to
