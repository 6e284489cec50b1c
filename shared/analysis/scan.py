"""One uploaded file -> its ``ca-watch/scan/v1`` result: read, facts, classify, chain.

Pure: bytes, rules and a clock in; a value out. Used by the CLI, the blob function and
the benchmarks alike, so all three give the same answer.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from shared.alerts.rules import Rules
from shared.analysis.classify import NEEDS_ACTION, Classification, classify_certificate
from shared.analysis.enrollment_envelope import read_uploaded_listing
from shared.analysis.facts import CertificateError, CertificateFacts, extract_facts, facts_json
from shared.analysis.keys import key_material
from shared.analysis.listing_json import listing_in_text, looks_like_listing
from shared.analysis.listings import ListingDocument, ListingError
from shared.analysis.reader import (
    DEFAULT_MAX_UPLOAD_BYTES,
    ErrorCode,
    ReadError,
    ReadResult,
    Status,
    read_certificates,
)

if TYPE_CHECKING:  # the chain check (and cryptography) loads only for multi-cert files
    from shared.analysis.chain import ChainLink

SCAN_SCHEMA = "ca-watch/scan/v1"
_ANALYZED = Status.ANALYZED  # a global: ~8x cheaper than the Enum lookup per file


class AnalyzedCertificate(NamedTuple):  # immutable and cheap to build, as CertificateFacts
    facts: CertificateFacts
    classification: Classification
    chain: ChainLink | None = None

    @property
    def sha256(self) -> str:
        return self.facts.sha256_fingerprint

    def to_json(self) -> dict[str, Any]:
        body = facts_json(self.facts)
        body["azure_sphere"] = self.classification.azure_sphere_json()
        body["verdict"] = str(self.classification.verdict)
        body["reasons"] = list(self.classification.reasons)
        body["actions"] = list(self.classification.actions)
        body["chain"] = self.chain.to_json() if self.chain else None
        return body


class FileResult(NamedTuple):  # immutable; cheap to build, as CertificateFacts
    source: str
    status: Status
    error: ReadError | None = None
    certificates: tuple[AnalyzedCertificate, ...] = ()
    format: str = ""
    listing: ListingDocument | None = None  # a registration listing (DESIGN §3)

    @property
    def needs_action(self) -> bool:
        """What makes ``ca-watch scan`` exit 1."""
        return self.status is not Status.ANALYZED or any(
            cert.classification.verdict in NEEDS_ACTION for cert in self.certificates
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": str(self.status),
            "error": (
                {"code": str(self.error.code), "message": self.error.message}
                if self.error
                else None
            ),
            "format": self.format or None,
            "certificates": [cert.to_json() for cert in self.certificates],
            **({"listing": _listing_json(self.listing)} if self.listing else {}),
        }


def _listing_json(document: ListingDocument) -> dict[str, Any]:
    return {
        "targets": [
            {
                "target": listing.target,
                "kind": listing.kind,
                "display_name": listing.display_name,
                "certificates": [
                    {"name": c.name, "thumbprint": c.thumbprint, "verified": c.verified}
                    for c in listing.certificates
                ],
            }
            for listing in document.listings
        ],
        "tenant_cas": [entry.to_json() for entry in document.sphere_entries],
    }


def analyze_read_result(source: str, read: ReadResult, rules: Rules, now: datetime) -> FileResult:
    if read.error is not None:
        return FileResult(source, read.status, read.error, (), read.format)
    if len(read.certificates) == 1:
        return _analyze_single(source, read, rules, now)
    facts_list: list[CertificateFacts] = []
    error: ReadError | None = None
    seen: dict[bytes, CertificateFacts] = {}  # a file may repeat a certificate: read it once
    for index, der in enumerate(read.certificates, start=1):
        if (known := seen.get(der)) is not None:
            facts_list.append(known)
            continue
        try:
            facts = seen[der] = extract_facts(der)
        except CertificateError as exc:
            # Keep the good ones (nothing lost) and say which one failed.
            error = error or ReadError(
                ErrorCode.MALFORMED_CERTIFICATE,
                f"certificate {index} of {len(read.certificates)}: {exc}",
            )
            continue
        facts_list.append(facts)
    links: dict[str, ChainLink] = {}
    if len(facts_list) > 1:
        from shared.analysis.chain import chain_links

        links = chain_links(facts_list)
    classified: dict[str, Classification] = {}
    analyzed = tuple(
        AnalyzedCertificate(
            facts,
            classified.get(facts.sha256_fingerprint)
            or classified.setdefault(
                facts.sha256_fingerprint, classify_certificate(facts, rules, now)
            ),
            links.get(facts.sha256_fingerprint),
        )
        for facts in facts_list
    )
    status = Status.UNREADABLE if error else Status.ANALYZED
    return FileResult(source, status, error, analyzed, read.format)


def _analyze_single(source: str, read: ReadResult, rules: Rules, now: datetime) -> FileResult:
    """The common one-certificate file, as the general loop would analyse it (no chain,
    the same error text) without its lists, generator and lookups."""
    try:
        facts = extract_facts(read.certificates[0])
    except CertificateError as exc:
        error = ReadError(ErrorCode.MALFORMED_CERTIFICATE, f"certificate 1 of 1: {exc}")
        return FileResult(source, Status.UNREADABLE, error, (), read.format)
    analyzed = AnalyzedCertificate(facts, classify_certificate(facts, rules, now))
    return FileResult(source, _ANALYZED, None, (analyzed,), read.format)


def analyze_bytes(
    source: str,
    data: bytes,
    rules: Rules,
    now: datetime | None = None,
    max_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
) -> FileResult:
    """The whole analysis of one file; never raises for any content. The key check comes
    first, for every kind of file (a listing too, DESIGN §2)."""
    now = now or datetime.now(UTC)
    whole = len(data) <= max_bytes
    if (key := key_material(data, whole=whole)) is not None:
        return FileResult(source, key.status, key)
    if whole and looks_like_listing(data):
        return analyze_listing(source, data, rules, now)
    read = read_certificates(data, max_bytes)
    # PEM text with a listing's JSON after it: refused, never half read (issue 21). Only
    # PEM can hide text (DER and base64 cannot), and JSON needs a brace: cheap to rule out.
    if "pem" in read.format and b"{" in data and listing_in_text(data):
        read = ReadResult(error=_LISTING_IN_CERTIFICATE_FILE)
    return analyze_read_result(source, read, rules, now)


_LISTING_IN_CERTIFICATE_FILE = ReadError(
    ErrorCode.LISTING_IN_CERTIFICATE_FILE,
    "the file holds certificates and a registration listing (JSON); upload each as its own file",
)


_LISTING_CODES = frozenset(code.value for code in ErrorCode)  # what a ListingError may carry


def analyze_listing(source: str, data: bytes, rules: Rules, now: datetime) -> FileResult:
    """A registration listing: its targets are evidence; the certificates an Azure Sphere
    CA list carries are analysed as if uploaded one by one."""
    try:
        document = read_uploaded_listing(data)
    except ListingError as exc:
        code = ErrorCode(exc.code) if exc.code in _LISTING_CODES else ErrorCode.MALFORMED_LISTING
        error = ReadError(code, exc.message)
        return FileResult(source, error.status, error)
    bodies = tuple(entry.der for entry in document.sphere_entries if entry.der)
    result = FileResult(source, _ANALYZED, None, (), document.format, document)
    if bodies:
        read = analyze_read_result(source, ReadResult(bodies, document.format), rules, now)
        result = read._replace(listing=document)
    return result


def scan_document(results: list[FileResult]) -> dict[str, Any]:
    return {"schema": SCAN_SCHEMA, "results": [result.to_json() for result in results]}
