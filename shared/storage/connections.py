"""Storage clients from the ``CertStorage`` connection, the way the Functions host reads it:
a connection string (locally ``UseDevelopmentStorage=true``, i.e. Azurite) or, in Azure,
identity-based ``CertStorage__blobServiceUri`` / ``__tableServiceUri`` with a managed
identity (``__credential=managedidentity`` and ``__clientId`` for a user-assigned one).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

from shared.settings import DEFAULT_CONNECTION, STORAGE_CONNECTION_NAME, SettingsError

if TYPE_CHECKING:
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

# Azurite's well-known development account (published in its docs; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def azurite_connection_string(host: str, blob_port: int, queue_port: int, table_port: int) -> str:
    base = f"http://{host}"
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint={base}:{blob_port}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint={base}:{queue_port}/{AZURITE_ACCOUNT};"
        f"TableEndpoint={base}:{table_port}/{AZURITE_ACCOUNT};"
    )


# Variables that only requests' environment scan honours: a proxy, or a CA bundle.
_ENV_TRANSPORT_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "requests_ca_bundle",
    "curl_ca_bundle",
)


def _client_options(env: Mapping[str, str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    # Local/test knob: the SDKs' default retries wait about a minute on a dead endpoint.
    raw = env.get("CA_WATCH_STORAGE_RETRY_TOTAL", "").strip()
    if raw.isdigit():
        options["retry_total"] = int(raw)
    if not any(key.lower() in _ENV_TRANSPORT_VARIABLES for key in env):
        # With no proxy configured, skip requests' per-call scan of the environment and
        # ~/.netrc: measured at ~0.3 ms of every storage round trip on the blob hot path.
        from azure.core.pipeline.transport import RequestsTransport

        options["transport"] = RequestsTransport(use_env_settings=False)
    return options


# Waits of 0.5 s, then 1.5 s: what the blob SDK's ExponentialRetry takes as keywords.
BOUNDED_BLOB_BACKOFF = {"initial_backoff": 0.5, "increment_base": 1, "random_jitter_range": 0.5}


def _blob_options(env: Mapping[str, str]) -> dict[str, Any]:
    options = _client_options(env)
    if "retry_total" in options:
        # The blob SDK waits 15 s and more between retries (plus up to 3 s of jitter);
        # with the knob set, a dead endpoint fails within seconds, as the table SDK's does.
        options.update(BOUNDED_BLOB_BACKOFF)
    return options


def _expand(connection: str) -> str:
    if connection.strip().rstrip(";") == "UseDevelopmentStorage=true":
        return azurite_connection_string("127.0.0.1", 10000, 10001, 10002)
    return connection


# The keys the storage SDKs read from a connection string (matched without case).
_CONNECTION_KEYS = {
    key.lower(): key
    for key in (
        "DefaultEndpointsProtocol", "AccountName", "AccountKey", "SharedAccessSignature",
        "EndpointSuffix", "BlobEndpoint", "QueueEndpoint", "TableEndpoint", "FileEndpoint",
        "BlobSecondaryEndpoint", "QueueSecondaryEndpoint", "TableSecondaryEndpoint",
        "FileSecondaryEndpoint", "UseDevelopmentStorage", "DevelopmentStorageProxyUri",
    )
}  # fmt: skip
_CONNECTION_SHAPE = (
    "a connection string is KEY=VALUE pairs joined by ';', e.g. DefaultEndpointsProtocol=https;"
    "AccountName=ACCOUNT;AccountKey=KEY;EndpointSuffix=core.windows.net"
)


def connection_string_problem(connection: str, name: str = STORAGE_CONNECTION_NAME) -> str | None:
    """What is wrong with a storage connection string, in words, or None. The SDKs say only
    "blank or malformed". Values are never quoted but endpoint URLs: a key or SAS may be
    anywhere in a malformed string."""
    import base64
    import binascii
    import difflib
    import re

    if not connection.strip():
        return "it is blank"
    pairs: dict[str, str] = {}
    previous = "nothing"
    for part in connection.strip().rstrip(";").split(";"):
        key, equals, value = part.partition("=")
        if not equals or not re.fullmatch(r"[A-Za-z]{1,40}", key):
            return (
                f"the part after {previous} is not KEY=VALUE"
                if pairs
                else "the first part is not KEY=VALUE"
            )
        known = _CONNECTION_KEYS.get(key.lower())
        if known is None:
            close = difflib.get_close_matches(key, _CONNECTION_KEYS.values(), n=1)
            # Named only when it is a typo of a key: else it may be a pasted secret.
            return (
                f"unknown key {key!r} (did you mean {close[0]}?)"
                if close
                else f"the part after {previous} has a key no storage SDK reads"
            )
        pairs[known] = value
        previous = known
    if "UseDevelopmentStorage" in pairs:
        return "UseDevelopmentStorage=true is the only form of that key, and stands alone"
    protocol = pairs.get("DefaultEndpointsProtocol", "https")
    if protocol.lower() not in ("http", "https"):
        return f"DefaultEndpointsProtocol must be https or http, not {protocol!r}"
    for key in ("BlobEndpoint", "QueueEndpoint", "TableEndpoint"):
        if key in pairs and not re.match(r"https?://[^/\s]+", pairs[key]):
            return f"{key} {pairs[key]!r} is not an http(s) URL"
    if "AccountName" not in pairs and not {"BlobEndpoint", "TableEndpoint"} <= pairs.keys():
        return "it names no account: add AccountName=... (or BlobEndpoint and TableEndpoint)"
    if "AccountKey" in pairs:
        try:
            base64.b64decode(pairs["AccountKey"], validate=True)
        except binascii.Error:
            return "AccountKey is not base64: copy the account's access key again"
    elif "SharedAccessSignature" not in pairs:
        return (
            "it holds no credential: add AccountKey=... or SharedAccessSignature=..., or set "
            f"{name}__blobServiceUri and {name}__tableServiceUri to sign in with an identity"
        )
    return None


def _credential(env: Mapping[str, str], name: str) -> Any:
    return shared_credential(
        env.get(f"{name}__credential", "").lower() == "managedidentity",
        env.get(f"{name}__clientId"),
    )


@cache
def shared_credential(managed_identity: bool, client_id: str | None) -> Any:
    """One credential per kind and identity for the whole worker process, so the blob and
    table clients (and every invocation) share one token cache: one token request, not one
    per client or per blob."""
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if managed_identity:
        return (
            ManagedIdentityCredential(client_id=client_id)
            if client_id
            else (ManagedIdentityCredential())
        )
    # A developer signed in with `az login` / `azd auth login`.
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def app_credential(env: Mapping[str, str] | None = None) -> Any:
    """The app's own identity, built as for its storage connection: the user-assigned
    managed identity in Azure (``CertStorage__credential`` / ``__clientId``), a developer's
    ``az login`` locally. The live registration pull reads ARM with it."""
    return _credential(os.environ if env is None else env, STORAGE_CONNECTION_NAME)


def _connection(env: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """(connection string, None) or (None, service-uri prefix) for the named connection."""
    value = env.get(name)
    if value:
        connection = _expand(value)
        problem = connection_string_problem(connection, name)
        if problem:
            raise SettingsError(
                f"{name} is not a valid connection string: {problem} ({_CONNECTION_SHAPE})"
            )
        return connection, None
    if any(key.startswith(f"{name}__") for key in env):
        return None, name
    if name == STORAGE_CONNECTION_NAME:
        return _expand(DEFAULT_CONNECTION), None
    raise SettingsError(f"storage connection {name!r} is not set")


def blob_service(
    env: Mapping[str, str] | None = None, name: str = STORAGE_CONNECTION_NAME
) -> BlobServiceClient:
    from azure.storage.blob import BlobServiceClient

    env = os.environ if env is None else env
    connection, identity = _connection(env, name)
    if connection:
        return BlobServiceClient.from_connection_string(connection, **_blob_options(env))
    uri = env.get(f"{identity}__blobServiceUri") or env.get(f"{identity}__serviceUri")
    if not uri:
        raise SettingsError(f"set {name} or {name}__blobServiceUri")
    return BlobServiceClient(
        account_url=uri, credential=_credential(env, name), **_blob_options(env)
    )


def table_service(
    env: Mapping[str, str] | None = None, name: str = STORAGE_CONNECTION_NAME
) -> TableServiceClient:
    from azure.data.tables import TableServiceClient

    env = os.environ if env is None else env
    connection, identity = _connection(env, name)
    if connection:
        return TableServiceClient.from_connection_string(connection, **_client_options(env))
    uri = env.get(f"{identity}__tableServiceUri")
    if not uri:
        raise SettingsError(f"set {name} or {name}__tableServiceUri")
    return TableServiceClient(
        endpoint=uri, credential=_credential(env, name), **_client_options(env)
    )
