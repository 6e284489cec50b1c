"""Alert channels: Teams (Workflows webhook), ACS Email, SMTP and the local outbox.

Each channel sends one ``RenderedMessage`` and either returns a provider id (or None) or
raises ``ChannelError``. Channel modules are imported only when chosen, so that a Teams
only app never loads the ACS SDK at cold start.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from shared.channels.base import (
    REDACTED,
    Channel,
    ChannelError,
    redact_url,
    scrub,
    url_secrets,
)
from shared.settings import Settings, SettingsError, teams_webhook_url


def _require(value: object, setting: str, channel: str) -> None:
    if not value:
        raise SettingsError(f"ALERT_CHANNELS includes {channel}, which needs {setting}")


def _has_recipients(settings: Settings) -> bool:
    return bool(settings.alert_email_to) or any(settings.alert_email_routes.values())


def build_channels(
    settings: Settings,
    *,
    clock: Callable[[], datetime] | None = None,
) -> dict[str, Channel]:
    """The channels named in ``settings.alert_channels``, by name, in that order.

    Raises ``SettingsError`` naming the missing setting when a chosen channel lacks one.
    ``clock`` only names outbox files (the CLI's injected time).
    """
    channels: dict[str, Channel] = {}
    for name in settings.alert_channels:
        if name == "teams":
            _require(settings.teams_webhook_url, "TEAMS_WEBHOOK_URL", name)
            assert settings.teams_webhook_url is not None
            teams_webhook_url(settings.teams_webhook_url)  # https only (its sig is a secret)
            from shared.channels.teams import TeamsChannel

            channels[name] = TeamsChannel(settings.teams_webhook_url)
        elif name == "acs-email":
            _require(settings.acs_endpoint, "ACS_ENDPOINT", name)
            _require(settings.alert_email_from, "ALERT_EMAIL_FROM", name)
            _require(_has_recipients(settings), "ALERT_EMAIL_TO (or ALERT_EMAIL_ROUTES)", name)
            assert settings.acs_endpoint and settings.alert_email_from
            from shared.channels.acs_email import AcsEmailChannel

            channels[name] = AcsEmailChannel(settings.acs_endpoint, settings.alert_email_from)
        elif name == "smtp":
            _require(settings.smtp_host, "SMTP_HOST", name)
            _require(settings.alert_email_from, "ALERT_EMAIL_FROM", name)
            _require(_has_recipients(settings), "ALERT_EMAIL_TO (or ALERT_EMAIL_ROUTES)", name)
            if settings.smtp_user and not settings.smtp_password:
                raise SettingsError("SMTP_USER is set but SMTP_PASSWORD is not")
            if settings.smtp_user and not settings.smtp_starttls:
                raise SettingsError(
                    "SMTP_USER is set but SMTP_STARTTLS is false: credentials are never "
                    "sent over a connection without TLS"
                )
            assert settings.smtp_host and settings.alert_email_from
            from shared.channels.smtp import SmtpChannel

            channels[name] = SmtpChannel(
                settings.smtp_host,
                settings.smtp_port,
                sender=settings.alert_email_from,
                user=settings.smtp_user,
                password=settings.smtp_password,
                starttls=settings.smtp_starttls,
            )
        elif name == "outbox":
            from shared.channels.outbox import OutboxChannel

            channels[name] = OutboxChannel(settings.alert_outbox_dir, clock=clock)
        else:
            raise SettingsError(f"ALERT_CHANNELS: unknown channel {name!r}")
    return channels


__all__ = [
    "REDACTED",
    "Channel",
    "ChannelError",
    "SettingsError",
    "build_channels",
    "redact_url",
    "scrub",
    "url_secrets",
]
