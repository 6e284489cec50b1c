"""What reading one upload gives: its DER certificates, or a refusal with a kebab-case code.

Shared by the reader and its format modules (pem, pkcs7, pkcs12); a leaf, so the format
modules can raise ``ReadError`` without importing the reader. Pure.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

DEFAULT_MAX_UPLOAD_BYTES = 1_048_576


class Status(StrEnum):
    ANALYZED = "analyzed"
    UNREADABLE = "unreadable"  # not a certificate format, truncated, malformed
    REJECTED = "rejected"  # refused on purpose: too large, key material, password


class ErrorCode(StrEnum):
    TOO_LARGE = "too-large"
    PRIVATE_KEY_MATERIAL = "private-key-material"
    PASSWORD_PROTECTED = "password-protected"  # noqa: S105 - an error code, not a password
    EMPTY = "empty"
    NOT_A_CERTIFICATE = "not-a-certificate"
    BAD_TEXT_ENCODING = "bad-text-encoding"
    MALFORMED_PEM = "malformed-pem"
    MALFORMED_DER = "malformed-der"
    TRUNCATED = "truncated"
    MALFORMED_CERTIFICATE = "malformed-certificate"
    MALFORMED_PKCS7 = "malformed-pkcs7"
    MALFORMED_PKCS12 = "malformed-pkcs12"
    NO_CERTIFICATES = "no-certificates"
    CERTIFICATE_REQUEST = "certificate-request"
    CRL = "crl"
    PUBLIC_KEY_ONLY = "public-key-only"
    UNSUPPORTED_PEM_BLOCK = "unsupported-pem-block"
    UNSUPPORTED_ENCODING = "unsupported-encoding"
    MALFORMED_LISTING = "malformed-listing"  # a registration listing (JSON) we cannot read
    EMPTY_LISTING = "empty-listing"
    DUPLICATE_JSON_KEY = "duplicate-json-key"  # a listing's object holds a key twice
    MANIFEST_CLAIMS_ARM_TARGET = "manifest-claims-arm-target"  # only ARM speaks for hub/DPS
    TOO_MANY_TARGETS = "too-many-targets"  # one document names more than MAX_TARGETS
    LISTING_IN_CERTIFICATE_FILE = "listing-in-certificate-file"  # PEM and listing JSON in one
    ENROLLMENT_GROUPS_NEED_TARGET = "enrollment-groups-need-target"  # groups, no DPS/app named
    # A PKCS#12 whose key derivation would cost more than any real tool asks for.
    PKCS12_ITERATIONS_TOO_HIGH = "pkcs12-iterations-too-high"
    # What reading a local file can meet (ca-watch scan); never raised by the reader itself.
    PERMISSION_DENIED = "permission-denied"
    SYMLINK_LOOP = "symlink-loop"
    NOT_FOUND = "not-found"
    READ_ERROR = "read-error"
    # Refused by the blob function, not the reader:
    TOO_LARGE_TO_RECORD = "too-large-to-record"  # a value outgrew a table property anyway
    BAD_BLOB_NAME = "bad-blob-name"  # a name the storage service or the runner cannot use


REJECTING_CODES = frozenset(
    {
        ErrorCode.TOO_LARGE,
        ErrorCode.PRIVATE_KEY_MATERIAL,
        ErrorCode.PASSWORD_PROTECTED,
        ErrorCode.PKCS12_ITERATIONS_TOO_HIGH,
        ErrorCode.TOO_LARGE_TO_RECORD,
        ErrorCode.BAD_BLOB_NAME,
    }
)


class ReadError(Exception):
    """A file we refuse; ``message`` is safe to log (no file content in it)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def status(self) -> Status:
        return Status.REJECTED if self.code in REJECTING_CODES else Status.UNREADABLE


class ReadResult(NamedTuple):
    """The certificates of one file, in file order, or why there are none. (Immutable; a
    NamedTuple because one is built per upload on the hot path.)"""

    certificates: tuple[bytes, ...] = ()
    format: str = ""  # "pem", "der", "base64", "pkcs7-der", "pkcs7-pem", "pkcs12", ...
    error: ReadError | None = None

    @property
    def status(self) -> Status:
        return self.error.status if self.error else Status.ANALYZED


def too_large(size: int, limit: int) -> ReadResult:
    """The refusal for a file over the limit, made without reading it."""
    return ReadResult(
        error=ReadError(
            ErrorCode.TOO_LARGE,
            f"{size} bytes is over the {limit}-byte limit (MAX_UPLOAD_BYTES); "
            "upload certificates only, or split the bundle",
        )
    )
