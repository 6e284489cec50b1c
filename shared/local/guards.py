"""What the local runner guards against before and around storage: a file that must not be
sent (private key material, a name storage cannot use), a name shown on a terminal, and the
worker's blob client waiting out a dead endpoint."""

from __future__ import annotations

import os
from typing import Any


def refusal(name: str, data: bytes) -> str | None:
    """Why a file must not be sent, or None: private key material (never overridden), or
    a name storage cannot use. Read with the analyzer's own reader, whatever the size."""
    from shared.app.pipeline import blob_name_problem, holds_private_key

    if holds_private_key(data):
        return (
            "it holds private key material, which never leaves this machine; "
            "upload the certificate only"
        )
    problem = blob_name_problem(name)
    return f"{problem}: {name!r}" if problem else None


def bound_retries(client: Any) -> Any:
    """The worker's client keeps the blob SDK's retries: about 80 s on a dead endpoint
    before an error. When the CLI bounds retries (``CA_WATCH_STORAGE_RETRY_TOTAL``), so does
    this client, by setting its retry policy's numbers (the binding takes no options; the
    pipeline's policies are linked at construction, so the policy is tuned, not swapped)."""
    from azure.storage.blob import ExponentialRetry

    from shared.storage.connections import BOUNDED_BLOB_BACKOFF

    raw = os.environ.get("CA_WATCH_STORAGE_RETRY_TOTAL", "").strip()
    if not raw.isdigit():
        return client
    for policy in getattr(getattr(client, "_pipeline", None), "_impl_policies", ()):
        if isinstance(policy, ExponentialRetry):
            policy.total_retries = int(raw)
            for attribute, value in BOUNDED_BLOB_BACKOFF.items():
                setattr(policy, attribute, value)
    return client
