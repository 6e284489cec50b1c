"""Facts, classification (DESIGN §2), chain facts and the scan/v1 shape (DESIGN §3)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from analyzer_samples import (
    AZPS_POP_PEM,
    AZPS_TENANT_PEM,
    GLOVEBOXES_DER,
    INSIDE,
    NOW,
    OUTSIDE,
    pca,
    rules,
    tenant,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID

from shared.analysis.chain import VerifiesWith
from shared.analysis.facts import Mismatch, extract_facts
from shared.analysis.reader import Status
from shared.analysis.scan import SCAN_SCHEMA, FileResult, analyze_bytes, scan_document
from shared.local import samples


def _analyze(data: bytes, now: datetime = NOW, source: str = "upload") -> FileResult:
    result = analyze_bytes(source, data, rules(), now)
    assert result.status is Status.ANALYZED, result.error
    return result


def _one(data: bytes, now: datetime = NOW) -> dict:
    result = _analyze(data, now)
    assert len(result.certificates) == 1
    return result.certificates[0].to_json()


# --- the real public certificates ----------------------------------------------------
REAL = {
    GLOVEBOXES_DER.name: {
        "sha1_thumbprint": "C8D10E9EB374466DB3E3600EEB69AE21A4B3AB1D",
        "subject": "C=US,ST=Washington,L=Redmond,O=Microsoft Corporation,"
        "CN=Microsoft Azure Sphere 9d7e79eb-e021-43ce-9f2b-fa944b447494",
        "issuer": "C=US,ST=Washington,L=Redmond,O=Microsoft Corporation,"
        "CN=Microsoft Azure Sphere PCA01",
        "not_before": "2019-04-27T07:42:26Z",
        "not_after": "2021-04-27T10:42:26Z",
        "is_ca": True,
        "role": "tenant-ca",
        "tenant_id": "9d7e79eb-e021-43ce-9f2b-fa944b447494",
        "algorithm": ("1.2.840.10045.4.3.2", "ecdsa-with-SHA256"),
        "public_key": "ec P-256",
    },
    AZPS_TENANT_PEM.name: {
        "sha1_thumbprint": "BFF18CC17D19D7E3B7884091981E0190F8E84181",
        "subject": "C=US,ST=Washington,L=Redmond,O=Microsoft Corporation,"
        "CN=Microsoft Azure Sphere be51057e-e6eb-487d-82c8-a7043ccab9e1",
        "issuer": "C=US,O=Microsoft Corporation,CN=Azure Sphere Policy CA 2022",
        "not_before": "2023-05-16T14:55:00Z",
        "not_after": "2025-05-15T14:55:00Z",
        "is_ca": True,
        "role": "tenant-ca",
        "tenant_id": "be51057e-e6eb-487d-82c8-a7043ccab9e1",
        "algorithm": ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
        "public_key": "ec P-384",
    },
    AZPS_POP_PEM.name: {
        "sha1_thumbprint": "9071181109CF2D37A3FFD22AEF9B4D2FED770D7B",
        "subject": "CN=BFF18CC17D19D7E3B7884091981E0190F8E84181",
        "issuer": "C=US,ST=Washington,L=Redmond,O=Microsoft Corporation,"
        "CN=Microsoft Azure Sphere be51057e-e6eb-487d-82c8-a7043ccab9e1",
        "not_before": "2023-07-14T18:53:27Z",
        "not_after": "2023-07-14T19:58:27Z",
        "is_ca": False,
        "role": "verification",
        "tenant_id": "be51057e-e6eb-487d-82c8-a7043ccab9e1",
        "algorithm": ("1.2.840.10045.4.3.3", "ecdsa-with-SHA384"),
        "public_key": "ec P-384",
    },
}


@pytest.mark.parametrize("path", [GLOVEBOXES_DER, AZPS_TENANT_PEM, AZPS_POP_PEM], ids=str)
def test_real_certificate_facts(path) -> None:
    want = REAL[path.name]
    cert = _one(path.read_bytes(), NOW)
    for key in ("sha1_thumbprint", "subject", "issuer", "not_before", "not_after", "is_ca"):
        assert cert[key] == want[key], key
    assert cert["public_key"] == want["public_key"]
    assert cert["azure_sphere"] == {"role": want["role"], "tenant_id": want["tenant_id"]}
    oid, name = want["algorithm"]
    algorithm = {"oid": oid, "name": name, "parameters": None}
    assert cert["signature_algorithm"] == {
        "outer": algorithm,
        "inner": algorithm,
        "mismatch": "none",
    }
    assert cert["verdict"] == "ok"  # none issued in the window, none mismatched
    assert re.fullmatch(r"[0-9a-f]{64}", cert["sha256_fingerprint"])


def test_pop_certificate_extensions_refused_by_cryptography_but_not_by_us() -> None:
    cert = x509.load_pem_x509_certificate(AZPS_POP_PEM.read_bytes())
    with pytest.raises(ValueError):
        _ = cert.extensions  # the critical empty EKU: why we read the DER ourselves
    facts = extract_facts(cert.public_bytes(Encoding.DER))
    assert facts.is_ca is False and facts.mismatch is Mismatch.NONE


def test_real_tenant_and_pop_in_one_bundle_chain_verifies() -> None:
    data = AZPS_TENANT_PEM.read_bytes() + AZPS_POP_PEM.read_bytes()
    result = _analyze(data)
    tenant_cert, pop = result.certificates
    assert pop.chain is not None and pop.chain.verifies_with is VerifiesWith.BOTH
    assert pop.chain.issuer_sha256 == tenant_cert.sha256
    assert tenant_cert.chain is None  # its issuer (Policy CA 2022) is not in the file


# --- the incident window, to the second -----------------------------------------------
@pytest.mark.parametrize(
    ("not_before", "verdict"),
    [
        (datetime(2020, 6, 16, 20, 59, 59, tzinfo=UTC), "ok"),
        (datetime(2020, 6, 16, 21, 0, 0, tzinfo=UTC), "affected"),
        (datetime(2020, 7, 1, 0, 0, 0, tzinfo=UTC), "affected"),
        (datetime(2020, 7, 28, 0, 15, 0, tzinfo=UTC), "affected"),
        (datetime(2020, 7, 28, 0, 15, 1, tzinfo=UTC), "ok"),
    ],
)
def test_window_edges_for_a_tenant_ca(not_before: datetime, verdict: str) -> None:
    issued = samples.tenant_ca("0f0e0d0c-0b0a-4908-8706-050403020100", not_before, issuer=pca())
    cert = _one(issued.pem)
    assert cert["azure_sphere"]["role"] == "tenant-ca"
    assert cert["not_before"] == not_before.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert cert["verdict"] == verdict
    assert cert["signature_algorithm"]["mismatch"] == "none"
    if verdict == "affected":
        assert any("azsphere ca list" in action for action in cert["actions"])
        assert any("2020-06-16 21:00" in reason for reason in cert["reasons"])
    else:
        assert not any("azsphere ca list" in action for action in cert["actions"])


def test_window_applies_only_to_tenant_cas() -> None:
    inside = tenant(INSIDE)
    assert _one(inside.pem)["verdict"] == "affected"
    device = samples.device_certificate(inside)
    verification = samples.verification_certificate(inside)
    for issued in (device, verification):
        cert = _one(issued.pem)
        assert cert["azure_sphere"]["role"] in ("device", "verification")
        assert cert["verdict"] == "ok"


# --- mismatches -----------------------------------------------------------------------
KINDS = {
    "oid-outer": "oid",
    "oid-inner": "oid",
    "null-outer": "parameters",
    "null-inner": "parameters",
}


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("when", ["inside", "outside"])
def test_mismatch_kinds_on_a_tenant_ca(kind: str, when: str) -> None:
    issued = tenant(INSIDE if when == "inside" else OUTSIDE)
    der = samples.mismatched(issued, pca(), kind)
    cert = _one(der)
    algorithms = cert["signature_algorithm"]
    assert algorithms["mismatch"] == KINDS[kind]
    assert algorithms["outer"] != algorithms["inner"]
    if KINDS[kind] == "oid":
        assert algorithms["outer"]["oid"] != algorithms["inner"]["oid"]
    else:
        assert algorithms["outer"]["oid"] == algorithms["inner"]["oid"]
        side = "outer" if kind == "null-outer" else "inner"
        other = "inner" if side == "outer" else "outer"
        assert algorithms[side]["parameters"] == "0500"
        assert algorithms[other]["parameters"] is None
    assert cert["azure_sphere"]["role"] == "tenant-ca"
    assert cert["verdict"] == ("affected" if when == "inside" else "signature-mismatch")
    assert any("error 7" in reason for reason in cert["reasons"])


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("when", ["inside", "outside"])
def test_mismatch_kinds_on_a_device_certificate(kind: str, when: str) -> None:
    issuer = tenant(INSIDE if when == "inside" else OUTSIDE)
    device = samples.device_certificate(issuer, "ab" * 64)
    cert = _one(samples.mismatched(device, issuer, kind))
    assert cert["signature_algorithm"]["mismatch"] == KINDS[kind]
    assert cert["azure_sphere"] == {"role": "device", "tenant_id": issuer_tenant(issuer)}
    assert cert["verdict"] == "signature-mismatch"
    assert cert["actions"]


def issuer_tenant(issued: samples.Issued) -> str:
    cn = issued.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    return str(cn).rsplit(" ", 1)[1].lower()


def test_mismatch_detection_is_byte_for_byte() -> None:
    """Same OID, parameters differ only in bytes (an explicit NULL vs other params)."""
    issued = tenant(OUTSIDE)
    odd = bytes.fromhex("300e06082a8648ce3d0403020402abcd")  # OCTET STRING params
    der = samples.with_algorithms(issued.der, pca().key, inner=odd)
    facts = extract_facts(der)
    assert facts.mismatch is Mismatch.PARAMETERS
    assert facts.inner_algorithm.parameters == bytes.fromhex("0402abcd")
    assert facts.outer_algorithm.parameters is None


# --- roles ----------------------------------------------------------------------------
def test_look_alike_common_name_with_another_organization_is_not_a_tenant_ca() -> None:
    fake = samples.tenant_ca(
        "9d7e79eb-e021-43ce-9f2b-fa944b447494", INSIDE, issuer=pca(), organization="Contoso Ltd"
    )
    cert = _one(fake.pem)
    assert cert["azure_sphere"] == {"role": None, "tenant_id": None}
    assert cert["verdict"] == "ok"  # inside the window, but not a tenant CA
    # Its device is not an Azure Sphere device either.
    device = _one(samples.device_certificate(fake, "cd" * 64).pem)
    assert device["azure_sphere"] == {"role": None, "tenant_id": None}
    # A look-alike with a mismatch is still flagged for the mismatch.
    mismatched = _one(samples.mismatched(fake, pca(), "oid-outer"))
    assert mismatched["azure_sphere"]["role"] is None
    assert mismatched["verdict"] == "signature-mismatch"


def test_tenant_guid_is_lower_cased() -> None:
    issued = samples.tenant_ca("9D7E79EB-E021-43CE-9F2B-FA944B447494", OUTSIDE, issuer=pca())
    cert = _one(issued.pem)
    assert cert["azure_sphere"] == {
        "role": "tenant-ca",
        "tenant_id": "9d7e79eb-e021-43ce-9f2b-fa944b447494",
    }
    device = _one(samples.device_certificate(issued, "ef" * 64).pem)
    assert device["azure_sphere"]["tenant_id"] == "9d7e79eb-e021-43ce-9f2b-fa944b447494"


def test_tenant_name_without_ca_true_is_not_a_tenant_ca() -> None:
    key = samples._key(6)
    name = tenant().certificate.subject
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(pca().certificate.subject)
        .public_key(key.public_key())
        .serial_number(77)
        .not_valid_before(INSIDE)
        .not_valid_after(INSIDE + timedelta(days=730))
        .sign(pca().key, hashes.SHA256())
    )
    body = _one(cert.public_bytes(Encoding.DER))
    assert body["is_ca"] is False
    assert body["azure_sphere"]["role"] != "tenant-ca"
    assert body["verdict"] == "ok"


def test_device_and_verification_roles_take_the_tenant_from_the_issuer() -> None:
    issuer = tenant(OUTSIDE, "11111111-2222-4333-8444-555555555555")
    device = _one(samples.device_certificate(issuer, "0123456789abcdef" * 8).pem)
    assert device["azure_sphere"] == {
        "role": "device",
        "tenant_id": "11111111-2222-4333-8444-555555555555",
    }
    # 127 hex digits is not a device id: a verification certificate.
    almost = _one(samples.device_certificate(issuer, "a" * 127).pem)
    assert almost["azure_sphere"]["role"] == "verification"
    verification = _one(samples.verification_certificate(issuer).pem)
    assert verification["azure_sphere"] == {
        "role": "verification",
        "tenant_id": "11111111-2222-4333-8444-555555555555",
    }
    assert verification["is_ca"] is False


def test_pca_is_a_microsoft_ca() -> None:
    cert = _one(pca().pem)
    assert cert["azure_sphere"] == {"role": "microsoft-ca", "tenant_id": None}
    assert cert["verdict"] == "ok"
    assert cert["is_ca"] is True


def test_foreign_certificate_has_no_role() -> None:
    key = samples._key(5)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.org")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(INSIDE)
        .not_valid_after(INSIDE + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    body = _one(cert.public_bytes(Encoding.PEM))
    assert body["azure_sphere"] == {"role": None, "tenant_id": None}
    assert body["verdict"] == "ok" and body["reasons"]


# --- chain facts ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("oid-outer", VerifiesWith.INNER),
        ("oid-inner", VerifiesWith.OUTER),
        ("null-outer", VerifiesWith.BOTH),
        ("null-inner", VerifiesWith.BOTH),
        (None, VerifiesWith.BOTH),
    ],
)
def test_chain_verifies_with(kind: str | None, expected: VerifiesWith) -> None:
    issued = tenant(INSIDE)
    der = samples.mismatched(issued, pca(), kind) if kind else issued.der
    result = _analyze(samples.pem(der) + pca().pem)
    child, issuer = result.certificates
    assert child.chain is not None
    assert child.chain.verifies_with is expected
    assert child.chain.issuer_sha256 == issuer.sha256
    body = child.to_json()
    assert body["chain"] == {
        "issuer": issuer.sha256,
        "verifies_with": str(expected),
        "reason": None,
    }
    assert issuer.chain is not None and issuer.chain.verifies_with is VerifiesWith.BOTH


def test_chain_with_a_different_key_verifies_with_neither() -> None:
    impostor = samples.azure_sphere_pca(seed=5)  # same name as pca(), another key
    assert impostor.certificate.subject == pca().certificate.subject
    signed_by_impostor = samples.tenant_ca("9d7e79eb-e021-43ce-9f2b-fa944b447494", issuer=impostor)
    result = _analyze(signed_by_impostor.pem + pca().pem)
    child = result.certificates[0]
    assert child.chain is not None and child.chain.verifies_with is VerifiesWith.NEITHER
    # With both candidate issuers in the file, the one that verifies is kept.
    result = _analyze(signed_by_impostor.pem + pca().pem + impostor.pem)
    child = result.certificates[0]
    assert child.chain is not None and child.chain.verifies_with is VerifiesWith.BOTH
    assert child.chain.issuer_sha256 == result.certificates[2].sha256


def test_single_certificate_has_no_chain_fact() -> None:
    assert _one(tenant().pem)["chain"] is None


# --- parity with cryptography ------------------------------------------------------------
def _self_signed(name: x509.Name, serial: int = 0x0102030405) -> x509.Certificate:
    key = samples._key(7)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(pca().certificate.subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC))
        .not_valid_after(datetime(2050, 1, 1, 0, 0, 0, tzinfo=UTC))  # GeneralizedTime
        .sign(key, hashes.SHA384())
    )


def _attr(value: str, oid: x509.ObjectIdentifier = NameOID.COMMON_NAME, **kw) -> x509.NameAttribute:
    return x509.NameAttribute(oid, value, **kw)


NAMES = {
    "escaping": x509.Name([_attr('a,b+c"d<e>f;g\\h')]),
    "leading-space": x509.Name([_attr(" leading")]),
    "trailing-space": x509.Name([_attr("trailing ")]),
    "leading-hash": x509.Name([_attr("#hash")]),
    "inner-hash-and-space": x509.Name([_attr("a # b")]),
    "multi-valued": x509.Name(
        [
            x509.RelativeDistinguishedName(
                [_attr("zz", NameOID.ORGANIZATIONAL_UNIT_NAME), _attr("aa")]
            ),
            x509.RelativeDistinguishedName([_attr("US", NameOID.COUNTRY_NAME)]),
        ]
    ),
    "non-ascii-utf8": x509.Name(
        [_attr("Zürich Ünïcödé 証明書", NameOID.ORGANIZATION_NAME), _attr("é")]
    ),
    "bmp-string": x509.Name([_attr("bmp é 証", _type=_ASN1Type.BMPString)]),
    "other-attributes": x509.Name(
        [
            _attr("a@b.example", NameOID.EMAIL_ADDRESS),
            _attr("123", NameOID.SERIAL_NUMBER),
            _attr("example", NameOID.DOMAIN_COMPONENT),
            _attr("u1", NameOID.USER_ID),
            _attr("1 Main St", NameOID.STREET_ADDRESS),
            _attr("Redmond", NameOID.LOCALITY_NAME),
            _attr("WA", NameOID.STATE_OR_PROVINCE_NAME),
        ]
    ),
}


def _rfc4514_in_certificate_order(name: x509.Name) -> str:
    return ",".join(rdn.rfc4514_string() for rdn in name.rdns)


@pytest.mark.parametrize("which", sorted(NAMES))
def test_name_parity_with_cryptography(which: str) -> None:
    cert = _self_signed(NAMES[which])
    facts = extract_facts(cert.public_bytes(Encoding.DER))
    assert facts.subject == _rfc4514_in_certificate_order(cert.subject)
    assert facts.issuer == _rfc4514_in_certificate_order(cert.issuer)


def test_first_cn_and_o_are_unescaped() -> None:
    cert = _self_signed(
        x509.Name([_attr("Org, Inc.", NameOID.ORGANIZATION_NAME), _attr(" a+b "), _attr("x")])
    )
    facts = extract_facts(cert.public_bytes(Encoding.DER))
    assert facts.subject_cn == " a+b "
    assert facts.subject_o == "Org, Inc."


@pytest.mark.parametrize("serial", [1, 0x7F, 0x80, 0xFF, 0x0102030405, (1 << 159) - 1])
def test_serial_and_dates_parity_with_cryptography(serial: int) -> None:
    cert = _self_signed(NAMES["escaping"], serial)
    facts = extract_facts(cert.public_bytes(Encoding.DER))
    assert int(facts.serial_number, 16) == cert.serial_number
    assert facts.serial_number == format(cert.serial_number, "x")
    assert facts.not_before == cert.not_valid_before_utc
    assert facts.not_after == cert.not_valid_after_utc
    assert facts.outer_algorithm.oid == cert.signature_algorithm_oid.dotted_string


@pytest.mark.parametrize("path", [GLOVEBOXES_DER, AZPS_TENANT_PEM, AZPS_POP_PEM], ids=str)
def test_real_certificates_parity_with_cryptography(path) -> None:
    data = path.read_bytes()
    cert = (
        x509.load_der_x509_certificate(data)
        if data[:1] == b"\x30"
        else x509.load_pem_x509_certificate(data)
    )
    der = cert.public_bytes(Encoding.DER)
    facts = extract_facts(der)
    assert facts.subject == _rfc4514_in_certificate_order(cert.subject)
    assert facts.issuer == _rfc4514_in_certificate_order(cert.issuer)
    assert facts.serial_number == format(cert.serial_number, "x")
    assert facts.not_before == cert.not_valid_before_utc
    assert facts.not_after == cert.not_valid_after_utc
    assert facts.sha1_thumbprint == cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303
    assert facts.sha256_fingerprint == cert.fingerprint(hashes.SHA256()).hex()
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert facts.layout.spki == spki


# --- the scan/v1 document ------------------------------------------------------------------
CERT_KEYS = {
    "sha256_fingerprint",
    "sha1_thumbprint",
    "subject",
    "issuer",
    "serial_number",
    "not_before",
    "not_after",
    "is_ca",
    "signature_algorithm",
    "azure_sphere",
    "verdict",
    "reasons",
    "actions",
}
ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def assert_scan_v1(document: dict, sources: list[str]) -> None:
    """DESIGN §3: the keys and value shapes other tools rely on (extra keys allowed)."""
    assert document["schema"] == SCAN_SCHEMA == "ca-watch/scan/v1"
    assert [result["source"] for result in document["results"]] == sources
    for result in document["results"]:
        assert {"source", "status", "error", "certificates"} <= result.keys()
        assert result["status"] in ("analyzed", "unreadable", "rejected")
        if result["status"] == "analyzed":
            assert result["error"] is None
        else:
            assert set(result["error"]) == {"code", "message"}
            assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", result["error"]["code"])
        for cert in result["certificates"]:
            assert cert.keys() >= CERT_KEYS
            assert re.fullmatch(r"[0-9a-f]{64}", cert["sha256_fingerprint"])
            assert re.fullmatch(r"[0-9A-F]{40}", cert["sha1_thumbprint"])
            assert re.fullmatch(r"-?[0-9a-f]+", cert["serial_number"])
            assert ISO_Z.fullmatch(cert["not_before"]) and ISO_Z.fullmatch(cert["not_after"])
            assert isinstance(cert["is_ca"], bool)
            algorithms = cert["signature_algorithm"]
            assert set(algorithms) >= {"outer", "inner", "mismatch"}
            for side in ("outer", "inner"):
                assert set(algorithms[side]) >= {"oid", "name", "parameters"}
                assert re.fullmatch(r"\d+(\.\d+)+", algorithms[side]["oid"])
                params = algorithms[side]["parameters"]
                assert params is None or re.fullmatch(r"([0-9a-f]{2})+", params)
            assert algorithms["mismatch"] in ("none", "oid", "parameters")
            assert set(cert["azure_sphere"]) >= {"role", "tenant_id"}
            assert cert["azure_sphere"]["role"] in (
                "tenant-ca",
                "device",
                "verification",
                "microsoft-ca",
                None,
            )
            assert cert["verdict"] in ("affected", "signature-mismatch", "ok")
            assert isinstance(cert["reasons"], list) and cert["reasons"]
            assert all(isinstance(x, str) for x in cert["reasons"] + cert["actions"])


def test_scan_document_shape_one_result_per_file() -> None:
    inputs = {
        "a/real.cer": GLOVEBOXES_DER.read_bytes(),
        "b/affected.pem": tenant(INSIDE).pem,
        "c/mismatch.der": samples.mismatched(tenant(OUTSIDE), pca(), "null-inner"),
        "d/bundle.pem": tenant(OUTSIDE).pem + pca().pem,
        "e/empty.txt": b"",
        "f/huge.pem": b"x" * 100,
    }
    results = [
        analyze_bytes(name, data, rules(), NOW, max_bytes=99)
        if name == "f/huge.pem"
        else analyze_bytes(name, data, rules(), NOW)
        for name, data in inputs.items()
    ]
    document = json.loads(json.dumps(scan_document(results)))
    assert_scan_v1(document, list(inputs))
    by_source = {r["source"]: r for r in document["results"]}
    assert [c["verdict"] for c in by_source["b/affected.pem"]["certificates"]] == ["affected"]
    mismatch = by_source["c/mismatch.der"]["certificates"][0]["signature_algorithm"]
    assert mismatch["mismatch"] == "parameters" and mismatch["inner"]["parameters"] == "0500"
    assert len(by_source["d/bundle.pem"]["certificates"]) == 2
    assert by_source["e/empty.txt"]["status"] == "unreadable"
    assert by_source["e/empty.txt"]["error"]["code"] == "empty"
    assert by_source["f/huge.pem"]["status"] == "rejected"
    assert by_source["f/huge.pem"]["error"]["code"] == "too-large"


def test_shape_check_can_fail() -> None:
    document = scan_document([analyze_bytes("x.pem", tenant().pem, rules(), NOW)])
    del document["results"][0]["certificates"][0]["verdict"]
    with pytest.raises(AssertionError):
        assert_scan_v1(document, ["x.pem"])


def test_needs_action() -> None:
    assert not analyze_bytes("ok", tenant(OUTSIDE).pem, rules(), NOW).needs_action
    assert analyze_bytes("affected", tenant(INSIDE).pem, rules(), NOW).needs_action
    assert analyze_bytes("bad", b"junk", rules(), NOW).needs_action
