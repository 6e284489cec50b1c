"""Listing shapes and resolution by evidence: the pure core (no storage)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from shared.alerts.registration import (
    ABSENT,
    UNVERIFIED,
    VERIFIED,
    Resolution,
    TargetEntry,
    TargetSnapshot,
    resolve_with_evidence,
)
from shared.analysis.listing_json import looks_like_listing
from shared.analysis.listings import (
    ListingError,
    normalize_thumbprint,
    parse_listing,
    read_listing_document,
)
from shared.local import samples
from tests.registration_samples import DPS_ID, HUB_ID, arm_entry, arm_listing, sphere_ca_list

OLD = samples.tenant_ca("abcd0000-1111-4222-8333-944445555666", key_seed=41)
NEW = samples.tenant_ca(
    "abcd0000-1111-4222-8333-944445555666", datetime(2021, 1, 1, tzinfo=UTC), key_seed=42
)


def sha1(issued: samples.Issued) -> str:
    return hashlib.sha1(issued.der, usedforsecurity=False).hexdigest().upper()


def test_hub_listing_wrapper_and_bare_array_give_the_same_target() -> None:
    wrapped = json.loads(arm_listing(HUB_ID, [("old", OLD, True), ("new", NEW, False)]))
    for document in (wrapped, wrapped["value"]):
        (listing,) = parse_listing(document)
        assert listing.target == HUB_ID.lower()
        assert (listing.kind, listing.display_name, listing.format) == (
            "iot-hub",
            "Fleet-Hub",
            "iot-hub-certificates",
        )
        assert [(c.name, c.thumbprint, c.verified) for c in listing.certificates] == [
            ("old", sha1(OLD), True),
            ("new", sha1(NEW), False),
        ]
        assert listing.certificates[0].sha256 is None  # no "certificate" in the entry
        # RFC 1123 expiry, as ARM prints it
        assert listing.certificates[0].expiry == OLD.certificate.not_valid_after_utc


@pytest.mark.parametrize("spelling", ["upper", "lower", "colons", "spaces"])
def test_thumbprint_spellings_normalise(spelling: str) -> None:
    (listing,) = parse_listing(
        json.loads(arm_listing(DPS_ID, [("a", OLD, True)], spelling=spelling))
    )
    assert listing.certificates[0].thumbprint == sha1(OLD)
    assert listing.kind == "dps" and listing.format == "dps-certificates"


def test_body_gives_sha256_and_must_agree_with_the_thumbprint() -> None:
    entry = arm_entry(HUB_ID, "old", OLD, verified=True, with_body=True)
    (listing,) = parse_listing([entry])
    assert listing.certificates[0].sha256 == hashlib.sha256(OLD.der).hexdigest()
    entry["properties"]["thumbprint"] = sha1(NEW)
    with pytest.raises(ListingError) as caught:
        parse_listing([entry])
    assert caught.value.code == "malformed-listing"


def test_entries_of_two_hubs_give_two_listings() -> None:
    other = HUB_ID.replace("Fleet-Hub", "Second-Hub")
    document = [
        arm_entry(HUB_ID, "a", OLD, verified=True),
        arm_entry(other, "b", NEW, verified=True),
    ]
    assert {listing.display_name for listing in parse_listing(document)} == {
        "Fleet-Hub",
        "Second-Hub",
    }


def test_manifest_and_sphere_list() -> None:
    (listing,) = parse_listing(
        {
            "schema": "ca-watch/registrations/v1",
            "target": "Partner-Cloud",
            "kind": "other",
            "certificates": [{"thumbprint": sha1(OLD).lower(), "verified": True}],
        }
    )
    assert (listing.target, listing.display_name, listing.format) == (
        "partner-cloud",
        "Partner-Cloud",
        "ca-watch-registrations",
    )
    document = read_listing_document(sphere_ca_list([(OLD, False), (NEW, True)]))
    assert document.format == "azure-sphere-ca-list" and document.listings == ()
    assert [(e.thumbprint, e.is_active) for e in document.sphere_entries] == [
        (sha1(OLD), False),
        (sha1(NEW), True),
    ]
    # The CLI's camel-case spelling, with a status instead of the flags, and no body.
    cli = json.dumps([{"thumbprint": sha1(OLD), "status": "Active"}]).encode()
    (entry,) = read_listing_document(cli).sphere_entries
    assert (entry.der, entry.is_active, entry.is_revoked) == (None, True, False)


def test_sniff_tells_listings_from_other_files() -> None:
    assert looks_like_listing(arm_listing(HUB_ID, [("a", OLD, True)]))
    assert looks_like_listing(b"\xef\xbb\xbf" + arm_listing(HUB_ID, [("a", OLD, True)]))
    assert looks_like_listing(arm_listing(HUB_ID, [("a", OLD, True)]).decode().encode("utf-16"))
    assert not looks_like_listing(OLD.pem)
    assert not looks_like_listing(OLD.der)
    assert not looks_like_listing(b'{"name": "not a listing"}')
    assert not looks_like_listing(b'{"schema": "ca-watch/scan/v1", "sha1_thumbprint": "AB"}')
    assert looks_like_listing(b'{"schema" : "ca-watch/registrations/v1"}')


@pytest.mark.parametrize(
    "document",
    [
        {"value": "x"},
        "text",
        [{"id": "/not/an/arm/id", "properties": {"thumbprint": "00" * 20}}],
        [{"id": f"{HUB_ID}/certificates/a", "properties": {"thumbprint": "zz"}}],
        [{"id": f"{HUB_ID}/certificates/a", "properties": {"thumbprint": "00" * 20,
                                                             "isVerified": "yes"}}],
        [{"id": f"{HUB_ID}/certificates/a", "properties": {}}],
        [
            {"id": f"{HUB_ID}/certificates/a", "properties": {"thumbprint": "00" * 20}},
            {"id": f"{DPS_ID}/certificates/a", "properties": {"thumbprint": "00" * 20}},
        ],
        {"schema": "ca-watch/registrations/v1", "target": "x", "kind": "iot-hub",
         "certificates": []},
    ],
)  # fmt: skip
def test_malformed_listings_raise_with_a_code(document: object) -> None:
    with pytest.raises(ListingError) as caught:
        parse_listing(document)
    assert caught.value.code == "malformed-listing"


def test_normalize_thumbprint() -> None:
    assert normalize_thumbprint("ab:cd " + "0" * 36) == "ABCD" + "0" * 36
    with pytest.raises(ListingError):
        normalize_thumbprint("ab" * 19)


# --- resolution (DESIGN §4) --------------------------------------------------------------


class Cert:
    def __init__(self, issued: samples.Issued) -> None:
        self.sha256 = hashlib.sha256(issued.der).hexdigest()
        self.sha1_thumbprint = sha1(issued)


def snap(target: str, *entries: tuple[samples.Issued, bool]) -> TargetSnapshot:
    return TargetSnapshot(
        target,
        "iot-hub",
        target,
        None,
        "test",
        tuple(TargetEntry(sha1(c), None, v) for c, v in entries),
    )


def resolve(*snapshots: TargetSnapshot) -> Resolution:
    old, new = Cert(OLD), Cert(NEW)
    return resolve_with_evidence([old, new], {old.sha256: [new.sha256]}, snapshots)[old.sha256]


def test_resolved_only_when_verified_in_every_target_holding_the_current_ca() -> None:
    new_sha = Cert(NEW).sha256
    # no evidence: an unauthenticated renewal no longer ends it (DESIGN §4 rule 2)
    assert resolve().resolved_by is None
    assert resolve().registration.evidence is False
    assert resolve().registration.renewal_check == "unauthenticated"
    assert resolve(snap("elsewhere", (NEW, False))).resolved_by is None  # lists neither
    pending = resolve(snap("hub", (OLD, True)), snap("dps", (OLD, True), (NEW, True)))
    assert pending.resolved_by is None
    assert pending.registration.pending == ("hub",)
    states = {t.target: (t.current, t.renewed) for t in pending.registration.targets}
    assert states == {"hub": (VERIFIED, ABSENT), "dps": (VERIFIED, VERIFIED)}
    unverified = resolve(snap("hub", (OLD, False), (NEW, False)))
    assert unverified.resolved_by is None
    assert unverified.registration.targets[0].renewed == UNVERIFIED
    done = resolve(snap("hub", (OLD, True), (NEW, True)), snap("dps", (OLD, True), (NEW, True)))
    assert done.resolved_by == new_sha and done.registration.pending == ()


def test_a_body_that_differs_is_another_certificate() -> None:
    other_body = TargetSnapshot(
        "hub", "iot-hub", "hub", None, "t", (TargetEntry(sha1(OLD), "0" * 64, True),)
    )
    assert other_body.state_of(sha1(OLD), Cert(OLD).sha256) == ABSENT
    assert other_body.state_of(sha1(OLD), "0" * 64) == VERIFIED
