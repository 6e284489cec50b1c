"""Registration evidence, what ends an alert (DESIGN §4 "Resolved"), and what the alert
says about it: golden tables of resolution outcomes and of the exact lines and commands.

Pure core: certificates here are only their two hashes (what resolution looks at).
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest

from shared.alerts.message import render_message
from shared.alerts.registration import (
    ABSENT,
    UNVERIFIED,
    VERIFIED,
    EnrollmentGroup,
    GroupSlot,
    Registration,
    Resolution,
    TargetEntry,
    TargetSnapshot,
    TargetState,
    ca_state,
    groups_missing,
    registration_of,
    resolve_with_evidence,
)
from shared.alerts.registration_text import (
    NO_EVIDENCE,
    RegistrationLine,
    registration_lines,
)
from tests.test_message import NOW, alert


@dataclass(frozen=True)
class Cert:
    sha256: str
    sha1_thumbprint: str


CURRENT = Cert("a" * 64, "AA" * 20)
RENEWED = Cert("b" * 64, "BB" * 20)
NEWEST = Cert("c" * 64, "CC" * 20)


def snap(
    target: str, kind: str, *entries: tuple[Cert, bool, str], display: str = ""
) -> TargetSnapshot:
    return TargetSnapshot(
        target,
        kind,
        display or target,
        None,
        "listing.json",
        tuple(TargetEntry(c.sha1_thumbprint, None, v, name) for c, v, name in entries),
    )


HUB = snap("hub", "iot-hub", (CURRENT, True, "old-ca"), (RENEWED, True, "new-ca"))
HUB_MISSING = snap("hub", "iot-hub", (CURRENT, True, "old-ca"))
HUB_UNVERIFIED = snap("hub", "iot-hub", (CURRENT, False, "old-ca"), (RENEWED, False, "new-ca"))
DPS = snap("dps", "dps", (CURRENT, True, "o"), (RENEWED, True, "n"))
# Lists only the renewed CA: it never trusted the current one, so it does not count.
ELSEWHERE = snap("elsewhere", "other", (RENEWED, False, ""))


# (snapshots, renewed) -> the registration as the alerts JSON shows it (DESIGN §3)
REGISTRATIONS = [
    ((), None, {"evidence": False, "renewed": None, "targets": [], "pending": []}),
    ((), RENEWED, {"evidence": False, "renewed": "b" * 64, "targets": [], "pending": []}),
    ((ELSEWHERE,), RENEWED, {"evidence": False, "renewed": "b" * 64, "targets": [], "pending": []}),
    (
        (ELSEWHERE, HUB_MISSING),  # a target that does not count, then one that does
        None,
        {
            "evidence": True,
            "renewed": None,
            "targets": [
                {
                    "target": "hub",
                    "kind": "iot-hub",
                    "display_name": "hub",
                    "current": "verified",
                    "renewed": "absent",
                }
            ],
            "pending": ["hub"],
        },
    ),
    (
        (HUB_UNVERIFIED, DPS, ELSEWHERE),
        RENEWED,
        {
            "evidence": True,
            "renewed": "b" * 64,
            "targets": [
                {
                    "target": "dps",
                    "kind": "dps",
                    "display_name": "dps",
                    "current": "verified",
                    "renewed": "verified",
                },
                {
                    "target": "hub",
                    "kind": "iot-hub",
                    "display_name": "hub",
                    "current": "unverified",
                    "renewed": "unverified",
                },
            ],
            "pending": ["hub"],
        },
    ),
    (
        (HUB, DPS),
        RENEWED,
        {
            "evidence": True,
            "renewed": "b" * 64,
            "targets": [
                {
                    "target": "dps",
                    "kind": "dps",
                    "display_name": "dps",
                    "current": "verified",
                    "renewed": "verified",
                },
                {
                    "target": "hub",
                    "kind": "iot-hub",
                    "display_name": "hub",
                    "current": "verified",
                    "renewed": "verified",
                },
            ],
            "pending": [],
        },
    ),
]


@pytest.mark.parametrize(("snapshots", "renewed", "expected"), REGISTRATIONS)
def test_registration_as_the_alerts_json_shows_it(
    snapshots: tuple[TargetSnapshot, ...], renewed: Cert | None, expected: dict[str, object]
) -> None:
    registration = registration_of(CURRENT, renewed, snapshots)
    shown = registration.to_json()
    keys = ("target", "kind", "display_name", "current", "renewed")
    shown["targets"] = [{k: t[k] for k in keys} for t in shown["targets"]]
    assert {k: shown[k] for k in expected} == expected
    assert registration.renewed_thumbprint == (renewed.sha1_thumbprint if renewed else None)


def test_each_target_keeps_the_names_the_commands_use() -> None:
    registration = registration_of(CURRENT, RENEWED, [HUB_UNVERIFIED, HUB_MISSING])
    assert [(t.current_name, t.renewed_name) for t in registration.targets] == [
        ("old-ca", "new-ca"),
        ("old-ca", ""),
    ]
    assert [t.target for t in registration.pending_targets] == ["hub", "hub"]


def test_targets_are_ordered_by_kind_then_name_then_id() -> None:
    held = (CURRENT, True, "")
    snapshots = [
        snap("t1", "other", held, display="b"),
        snap("t2", "iot-hub", held, display="b"),
        snap("t4", "iot-hub", held, display="a"),
        snap("t3", "iot-hub", held, display="a"),
        snap("t5", "dps", held, display="z"),
        snap("t6", "iot-central", held, display="a"),
    ]
    registration = registration_of(CURRENT, None, snapshots)
    assert [t.target for t in registration.targets] == ["t5", "t6", "t3", "t4", "t2", "t1"]


def test_a_listing_names_a_certificate_by_sha1_and_by_its_body_when_it_carries_one() -> None:
    target = TargetSnapshot(
        "hub",
        "iot-hub",
        "hub",
        None,
        "x",
        (
            TargetEntry("AA" * 20, "a" * 64, True, "same-body"),
            TargetEntry("BB" * 20, "f" * 64, True, "other-body"),  # same SHA-1, not this cert
            TargetEntry("CC" * 20, None, False, "no-body"),
            TargetEntry("DD" * 20, "d" * 64, True, "renewed-with-body"),
        ),
    )
    assert target.state_of("aa" * 20, "a" * 64) == VERIFIED  # any case of hex
    assert target.state_of("BB" * 20, "b" * 64) == ABSENT
    assert target.state_of("CC" * 20, "c" * 64) == UNVERIFIED
    assert target.state_of("EE" * 20, "e" * 64) == ABSENT
    registration = registration_of(CURRENT, RENEWED, [target])
    assert [(t.current, t.renewed, t.renewed_name) for t in registration.targets] == [
        (VERIFIED, ABSENT, "")
    ]
    with_body = registration_of(CURRENT, Cert("d" * 64, "DD" * 20), [target])
    assert [(t.renewed, t.renewed_name) for t in with_body.targets] == [
        (VERIFIED, "renewed-with-body")
    ]


# --- resolution: which newer CA ends the alert ---------------------------------------


def resolve(
    snapshots: list[TargetSnapshot], candidates: list[Cert], certs: list[Cert] | None = None
) -> tuple[str | None, str | None, tuple[str, ...]]:
    """(resolved_by, the renewed CA the registration is about, pending targets)."""
    certs = certs if certs is not None else [CURRENT, RENEWED, NEWEST]
    out = resolve_with_evidence(certs, {CURRENT.sha256: [c.sha256 for c in candidates]}, snapshots)
    assert set(out) == {c.sha256 for c in certs}  # every certificate gets an answer
    found = out[CURRENT.sha256]
    return found.resolved_by, found.registration.renewed, found.registration.pending


def newest_only(verified: bool) -> TargetSnapshot:
    return snap("hub", "iot-hub", (CURRENT, True, ""), (NEWEST, verified, ""))


RESOLUTIONS = [
    # no newer CA on record: nothing ends it, whatever the listings say
    ([], [], (None, None, ())),
    ([HUB], [], (None, None, ("hub",))),  # no renewal to be verified anywhere
    # a newer CA and no evidence: only an authenticated one ends it (DESIGN §4 rule 2; the
    # checker here knows nothing, so the renewal is unauthenticated)
    ([], [RENEWED], (None, "b" * 64, ())),
    ([ELSEWHERE], [RENEWED], (None, "b" * 64, ())),
    # evidence: verified in every target that holds the current CA, or not resolved
    ([HUB, DPS], [RENEWED], ("b" * 64, "b" * 64, ())),
    ([HUB_MISSING, DPS], [RENEWED], (None, "b" * 64, ("hub",))),
    ([HUB_UNVERIFIED, DPS], [RENEWED], (None, "b" * 64, ("hub",))),
    # several newer CAs, newest first: the first verified everywhere ends it ...
    ([HUB], [NEWEST, RENEWED], ("b" * 64, "b" * 64, ())),
    ([newest_only(True)], [NEWEST, RENEWED], ("c" * 64, "c" * 64, ())),
    ([], [NEWEST, RENEWED], (None, "c" * 64, ())),
    # ... and when none is, the message asks for the newest
    ([HUB_MISSING], [NEWEST, RENEWED], (None, "c" * 64, ("hub",))),
    ([newest_only(False)], [NEWEST, RENEWED], (None, "c" * 64, ("hub",))),
]


@pytest.mark.parametrize(("snapshots", "candidates", "expected"), RESOLUTIONS)
def test_what_ends_an_alert(
    snapshots: list[TargetSnapshot],
    candidates: list[Cert],
    expected: tuple[str | None, str | None, tuple[str, ...]],
) -> None:
    assert resolve(snapshots, candidates) == expected


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        ({"b" * 64: "authenticated"}, ("b" * 64, "authenticated-renewal", "authenticated")),
        ({"b" * 64: "catalog"}, ("b" * 64, "authenticated-renewal", "catalog")),
        ({"b" * 64: "look-alike"}, (None, None, "unauthenticated")),  # the newest is shown
        ({"b" * 64: "look-alike", "c" * 64: "look-alike"}, (None, None, "look-alike")),
        ({"b" * 64: "unauthenticated"}, (None, None, "unauthenticated")),
        # the newest is a look-alike: the older authenticated one ends it
        (
            {"c" * 64: "look-alike", "b" * 64: "authenticated"},
            ("b" * 64, "authenticated-renewal", "authenticated"),
        ),
    ],
)
def test_without_evidence_only_an_authenticated_renewal_ends_it(
    verdicts: dict[str, str], expected: tuple[str | None, str | None, str]
) -> None:
    out = resolve_with_evidence(
        [CURRENT, RENEWED, NEWEST],
        {CURRENT.sha256: [NEWEST.sha256, RENEWED.sha256]},
        [ELSEWHERE],
        check=lambda _current, renewed: verdicts.get(renewed, "unauthenticated"),
    )[CURRENT.sha256]
    assert (out.resolved_by, out.basis, out.registration.renewal_check) == expected


def test_a_revoked_renewal_is_never_one() -> None:
    out = resolve_with_evidence(
        [CURRENT, RENEWED],
        {CURRENT.sha256: [RENEWED.sha256]},
        [HUB],
        revoked=frozenset({RENEWED.sha256}),
    )[CURRENT.sha256]
    assert out.resolved_by is None and out.registration.renewed is None


def test_a_candidate_not_on_record_is_not_a_renewal() -> None:
    assert resolve([], [NEWEST], certs=[CURRENT, RENEWED]) == (None, None, ())
    assert resolve([HUB], [NEWEST, RENEWED], certs=[CURRENT, RENEWED]) == (
        "b" * 64,
        "b" * 64,
        (),
    )
    # a certificate with no candidates at all (absent from the mapping) is not resolved
    out = resolve_with_evidence([RENEWED], {}, [HUB])
    assert out[RENEWED.sha256].resolved_by is None
    assert out[RENEWED.sha256].registration.evidence is True  # the hub lists it


# --- what the alert says ---------------------------------------------------------------

SUB = "/subscriptions/0000/resourceGroups/Fleet-RG/providers/Microsoft.Devices"
HUB_ID = f"{SUB}/IotHubs/fleet-hub"
DPS_ID = f"{SUB}/provisioningServices/fleet-dps"
THUMB = "ABCDEF12" + "0" * 32
MISSING = "the renewed CA is still missing or unverified"
DOWNLOAD = f"azsphere ca download --thumbprint {THUMB} --destination tenant-ca-abcdef12.cer"
PROOF = "azsphere ca download-proof --verificationcode <code> --destination proof.cer"


def registration(*targets: TargetState, renewed: bool = True) -> Registration:
    return Registration(
        True,
        "b" * 64 if renewed else None,
        targets,
        renewed_thumbprint=THUMB if renewed else None,
    )


def lines(registration: Registration | None) -> list[tuple[str, str]]:
    return [(line.kind, line.text) for line in registration_lines(registration)]


def test_golden_lines_and_commands_per_target() -> None:
    reg = registration(
        TargetState(DPS_ID, "dps", "fleet-dps", VERIFIED, ABSENT, "old-ca", ""),
        TargetState(HUB_ID, "iot-hub", "fleet-hub", UNVERIFIED, UNVERIFIED, "old", "renewed-ca"),
        TargetState("partner", "iot-central", "Partner App", VERIFIED, ABSENT),
        TargetState("x", "other", "X", VERIFIED, VERIFIED),
    )
    dps = "--dps-name fleet-dps --resource-group Fleet-RG --certificate-name tenant-ca-abcdef12"
    hub = "--hub-name fleet-hub --resource-group Fleet-RG --name renewed-ca"
    assert lines(reg) == [
        (
            "summary",
            "Registered in 4 target(s); the renewed CA is still missing or unverified in 3.",
        ),
        ("target", "DPS fleet-dps: current CA verified, renewed CA absent"),
        (
            "target",
            "IoT Hub fleet-hub: current CA registered, not verified, "
            "renewed CA registered, not verified",
        ),
        ("target", "IoT Central Partner App: current CA verified, renewed CA absent"),
        ("target", "Target X: current CA verified, renewed CA verified"),
        ("command", "# DPS fleet-dps"),
        (
            "command",
            f"azsphere ca download --thumbprint {THUMB} --destination tenant-ca-abcdef12.cer",
        ),
        ("command", f"az iot dps certificate create {dps} --path tenant-ca-abcdef12.cer"),
        ("command", f"az iot dps certificate generate-verification-code {dps} --etag <etag>"),
        ("command", PROOF),
        ("command", f"az iot dps certificate verify {dps} --path proof.cer --etag <etag>"),
        ("command", "# IoT Hub fleet-hub"),
        ("command", f"az iot hub certificate generate-verification-code {hub} --etag <etag>"),
        ("command", PROOF),
        ("command", f"az iot hub certificate verify {hub} --path proof.cer --etag <etag>"),
        (
            "command",
            f"In Partner App: register the renewed CA (SHA-1 {THUMB}) and verify it with "
            "`azsphere ca download-proof --verificationcode <code>`.",
        ),
    ]


def test_a_hub_missing_the_renewal_gets_download_and_create() -> None:
    reg = registration(TargetState(HUB_ID, "iot-hub", "fleet-hub", VERIFIED, ABSENT))
    hub = "--hub-name fleet-hub --resource-group Fleet-RG --name tenant-ca-abcdef12"
    assert lines(reg)[2:] == [
        ("command", "# IoT Hub fleet-hub"),
        (
            "command",
            f"azsphere ca download --thumbprint {THUMB} --destination tenant-ca-abcdef12.cer",
        ),
        ("command", f"az iot hub certificate create {hub} --path tenant-ca-abcdef12.cer"),
        ("command", f"az iot hub certificate generate-verification-code {hub} --etag <etag>"),
        ("command", PROOF),
        ("command", f"az iot hub certificate verify {hub} --path proof.cer --etag <etag>"),
    ]


def test_done_no_renewal_and_no_evidence() -> None:
    done = registration(TargetState(HUB_ID, "iot-hub", "fleet-hub", VERIFIED, VERIFIED))
    assert lines(done) == [
        ("summary", "Registered in 1 target(s); the renewed CA is verified in all of them."),
        ("target", "IoT Hub fleet-hub: current CA verified, renewed CA verified"),
    ]
    no_renewal = registration(
        TargetState(HUB_ID, "iot-hub", "fleet-hub", VERIFIED, ABSENT), renewed=False
    )
    assert lines(no_renewal) == [
        (
            "summary",
            "Registered in 1 target(s); the renewed CA is still missing or unverified in 1.",
        ),
        (
            "note",
            "No renewed tenant CA is on record yet: run `azsphere ca list`, download the "
            "newest one and upload it.",
        ),
        ("target", "IoT Hub fleet-hub: current CA verified, renewed CA absent"),
    ]
    assert lines(Registration(False, "b" * 64, ())) == [("note", NO_EVIDENCE)]
    assert lines(None) == []
    assert registration_lines(None) == []
    assert registration_lines(done)[0] == RegistrationLine(
        "summary", "Registered in 1 target(s); the renewed CA is verified in all of them."
    )


def fallback(display: str, thumb: str = THUMB) -> tuple[str, str]:
    return (
        "command",
        f"In {display}: register the renewed CA (SHA-1 {thumb}) and verify it with "
        "`azsphere ca download-proof --verificationcode <code>`.",
    )


# Names a shell would read as more than a name (or as an option), and targets the
# az commands cannot address: the alert says what to do without a command to paste.
NO_COMMAND = [
    TargetState(f"{SUB}/IotHubs/hub;rm -rf ~", "iot-hub", "hub;rm -rf ~", VERIFIED, ABSENT),
    TargetState(f"{SUB}/IotHubs/--help", "iot-hub", "--help", VERIFIED, ABSENT),
    TargetState(HUB_ID.replace("Fleet-RG", "rg$(id)"), "iot-hub", "fleet-hub", VERIFIED, ABSENT),
    TargetState(HUB_ID, "iot-hub", "fleet-hub", VERIFIED, UNVERIFIED, "", "ca `id`"),
    TargetState(HUB_ID, "iot-hub", "fleet hub", VERIFIED, ABSENT),  # display differs from id
    TargetState("fleet-hub", "iot-hub", "fleet-hub", VERIFIED, ABSENT),  # not an ARM id
    TargetState(f"{SUB}/IotHubs/fleet-hub/extra", "iot-hub", "fleet-hub", VERIFIED, ABSENT),
    TargetState(HUB_ID, "iot-central", "fleet-hub", VERIFIED, ABSENT),
    TargetState(DPS_ID, "other", "fleet-dps", VERIFIED, ABSENT),
]


@pytest.mark.parametrize("state", NO_COMMAND, ids=range(len(NO_COMMAND)))
def test_no_command_for_names_unfit_for_a_shell_or_targets_az_cannot_address(
    state: TargetState,
) -> None:
    assert lines(registration(state))[2:] == [fallback(state.display_name)]


def shell_words(command: str) -> list[str]:
    """The words a POSIX shell makes of a pasted command (parentheses are its own tokens)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def test_names_with_the_characters_azure_allows_paste_into_a_shell_as_one_word() -> None:
    # Resource group names may hold dots, underscores and parentheses; hub names hyphens.
    hub_id = f"{SUB.replace('Fleet-RG', 'Fleet_RG.(eu)')}/IOTHUBS/fleet-hub-01"
    state = TargetState(hub_id, "iot-hub", "fleet-hub-01", VERIFIED, ABSENT, "", "")
    commands = [text for kind, text in lines(registration(state)) if kind == "command"]
    assert commands[0] == "# IoT Hub fleet-hub-01"
    name = ["--hub-name", "fleet-hub-01", "--resource-group", "Fleet_RG.(eu)"]
    name += ["--name", "tenant-ca-abcdef12"]
    assert shell_words(commands[2]) == [
        *["az", "iot", "hub", "certificate", "create"],
        *name,
        *["--path", "tenant-ca-abcdef12.cer"],
    ]
    verification_code = commands[3].removesuffix(" --etag <etag>")
    assert shell_words(verification_code) == [
        *["az", "iot", "hub", "certificate", "generate-verification-code"],
        *name,
    ]


def test_without_a_thumbprint_the_alert_says_so_rather_than_guess_a_command() -> None:
    reg = Registration(
        True, "b" * 64, (TargetState(HUB_ID, "iot-hub", "fleet-hub", VERIFIED, ABSENT),)
    )
    assert lines(reg)[2:] == [fallback("fleet-hub", "<thumbprint>")]


HOSTILE = "<b>x</b> https://evil.example/p ${cardData}"


def test_hostile_target_names_in_the_fallback_are_escaped_and_defanged_in_every_form() -> None:
    state = TargetState(f"{SUB}/IotHubs/x", "iot-hub", HOSTILE, VERIFIED, ABSENT)
    message = render_message([replace(alert(), registration=registration(state))], NOW)
    card = json.dumps(message.adaptive_card)
    for form in (message.text, message.html, card):
        assert "evil.example" not in form
    assert "hxxps://evil[.]example/p" in message.text and "hxxps://evil[.]example/p" in message.html
    assert "<b>x</b>" not in message.html and "&lt;b&gt;x&lt;/b&gt;" in message.html
    assert "${cardData}" not in card
    assert "        In <b>x</b> hxxps://evil[.]example/p ${cardData}: register" in message.text


# --- issue 21: lost trust, unknown targets, the group clause, the whole JSON ----------

SEEN = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_the_whole_registration_json_of_a_target_that_failed_and_one_never_read() -> None:
    failed_hub = TargetSnapshot(
        "hub-id",
        "iot-hub",
        "Hub",
        SEEN,
        "hubs.json",
        (TargetEntry(CURRENT.sha1_thumbprint, None, True, "old-ca"),),
        error=("read-failed", "timed out"),
    )
    never_read = TargetSnapshot("dps-2", "dps", "dps-2", None, "", (), read_ok=False)
    catalog = TargetSnapshot("cat", "sphere-catalog", "cat", None, "", (), read_ok=False)
    dps = TargetSnapshot(
        "dps-1",
        "dps",
        "DPS",
        None,
        "live",
        (TargetEntry(CURRENT.sha1_thumbprint, None, True, "o"),),
        groups=(EnrollmentGroup("fleet", True, (GroupSlot("primary", None, "o"),)),),
    )
    registration = registration_of(
        CURRENT,
        RENEWED,
        [never_read, catalog, failed_hub, dps],
        renewal_check="unauthenticated",
        look_alikes=("c" * 64,),
    )
    assert registration.to_json() == {
        "evidence": True,
        "renewed": "b" * 64,
        "renewal_check": "unauthenticated",
        "look_alikes": ["c" * 64],
        "targets": [
            {
                "target": "dps-1",
                "kind": "dps",
                "display_name": "DPS",
                "current": "verified",
                "renewed": "absent",
                "status": "pending",
                "unknown": False,
                "source": "live",
                "seen_at": None,
                "error": None,
                "groups": {"seen": True, "missing": ["fleet"]},
            },
            {
                "target": "hub-id",
                "kind": "iot-hub",
                "display_name": "Hub",
                "current": "verified",
                "renewed": "absent",
                "status": "pending",
                "unknown": True,
                "source": "hubs.json",
                "seen_at": "2026-03-04T05:06:07Z",
                "error": {"code": "read-failed", "message": "timed out"},
                "groups": None,  # a hub has no enrollment groups
            },
        ],
        "pending": ["dps-1", "hub-id"],
        "lost_trust": [],
        # the catalog is where tenant CAs come from, not a target: never read, it blocks nothing
        "unknown": ["hub-id", "dps-2"],
    }


def listed_once(*entries: tuple[Cert, bool]) -> TargetSnapshot:
    """A hub whose history has the current CA (listed in an earlier snapshot)."""
    return TargetSnapshot(
        "hub",
        "iot-hub",
        "hub",
        None,
        "live",
        tuple(TargetEntry(c.sha1_thumbprint, None, v, "n") for c, v in entries),
        history=frozenset({CURRENT.sha1_thumbprint}),
    )


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        # listed C once, now lists neither C nor R: trust was lost there
        (listed_once(), ("lost-trust", "absent", "absent", "", ["hub"])),
        (listed_once((RENEWED, False)), ("lost-trust", "absent", "unverified", "", ["hub"])),
        # C is gone because R replaced it, verified: that target is done
        (listed_once((RENEWED, True)), ("done", "absent", "verified", "", [])),
    ],
)
def test_a_target_that_listed_the_current_ca_and_no_longer_does(
    snapshot: TargetSnapshot, expected: tuple[str, str, str, str, list[str]]
) -> None:
    (target,) = registration_of(CURRENT, RENEWED, [snapshot]).targets
    lost = registration_of(CURRENT, RENEWED, [snapshot]).to_json()["lost_trust"]
    assert (target.status, target.current, target.renewed, target.current_name, lost) == expected


def test_history_is_matched_whatever_the_case_of_the_thumbprint_asked_for() -> None:
    assert listed_once().has_listed(CURRENT.sha1_thumbprint.lower(), CURRENT.sha256)
    assert not listed_once().has_listed(RENEWED.sha1_thumbprint, RENEWED.sha256)


def central_app(*groups: EnrollmentGroup) -> TargetSnapshot:
    """An IoT Central app as enrollment_listings.central_listing makes it: its slots are its
    certificate list, in group and slot order."""
    entries = tuple(
        TargetEntry(s.thumbprint or "", None, bool(s.verified), f"{g.group_id}/{s.slot}")
        for g in groups
        for s in g.slots
    )
    return TargetSnapshot("app", "iot-central", "App", None, "live", entries, groups=groups)


def slot(name: str, cert: Cert, verified: bool) -> GroupSlot:
    return GroupSlot(name, cert.sha1_thumbprint, "", verified)


OTHER = Cert("e" * 64, "EE" * 20)
OLD_DISABLED = EnrollmentGroup(
    "old", False, (slot("primary", CURRENT, True), slot("secondary", RENEWED, True))
)


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        # verified only in a disabled group: it provisions no device
        ((OLD_DISABLED,), ("pending", ["old"])),
        (
            (OLD_DISABLED, EnrollmentGroup("x", True, (slot("primary", OTHER, True),))),
            ("pending", ["old"]),
        ),
        # an enabled group holds R, but not verified
        (
            (OLD_DISABLED, EnrollmentGroup("new", True, (slot("primary", RENEWED, False),))),
            ("pending", ["old"]),
        ),
        # an enabled group holds R verified: the disabled one does not matter
        (
            (OLD_DISABLED, EnrollmentGroup("new", True, (slot("primary", RENEWED, True),))),
            ("done", []),
        ),
        # the group that holds C, unverified, must hold R verified too
        (
            (EnrollmentGroup("g", True, (slot("primary", CURRENT, False),)),),
            ("pending", ["g"]),
        ),
        (
            (
                EnrollmentGroup(
                    "g", True, (slot("primary", CURRENT, False), slot("secondary", RENEWED, True))
                ),
            ),
            ("done", []),
        ),
    ],
)
def test_iot_central_counts_a_renewal_only_verified_in_an_enabled_group(
    groups: tuple[EnrollmentGroup, ...], expected: tuple[str, list[str]]
) -> None:
    (target,) = registration_of(CURRENT, RENEWED, [central_app(*groups)]).targets
    assert (target.status, target.to_json()["groups"]["missing"]) == expected
    assert target.to_json()["groups"]["seen"] is True


def dps_with(entries: tuple[TargetEntry, ...], *slots: GroupSlot) -> TargetSnapshot:
    group = EnrollmentGroup("fleet", True, slots)
    return TargetSnapshot("dps", "dps", "dps", None, "live", entries, groups=(group,))


C_ENTRY = TargetEntry(CURRENT.sha1_thumbprint, None, True, "old")


@pytest.mark.parametrize(
    ("snapshot", "missing"),
    [
        # inline R whose certificate the DPS list lacks, or holds unverified: not covered
        (
            dps_with(
                (C_ENTRY,),
                GroupSlot("p", CURRENT.sha1_thumbprint),
                GroupSlot("s", RENEWED.sha1_thumbprint),
            ),
            ("fleet",),
        ),
        (
            dps_with(
                (C_ENTRY, TargetEntry(RENEWED.sha1_thumbprint, None, False, "new")),
                GroupSlot("p", CURRENT.sha1_thumbprint),
                GroupSlot("s", RENEWED.sha1_thumbprint),
            ),
            ("fleet",),
        ),
        # a reference with no name names nothing (not the first certificate without one)
        (
            dps_with(
                (TargetEntry(CURRENT.sha1_thumbprint, None, True, ""),), GroupSlot("p", None, "")
            ),
            (),
        ),
        # C in the group unverified still puts the group under the clause
        (
            dps_with(
                (TargetEntry(CURRENT.sha1_thumbprint, None, False, "old"),),
                GroupSlot("p", None, "old"),
            ),
            ("fleet",),
        ),
    ],
)
def test_dps_group_clause_edges(snapshot: TargetSnapshot, missing: tuple[str, ...]) -> None:
    assert groups_missing(snapshot, CURRENT, RENEWED) == missing


NEVER_READ_HUB = TargetSnapshot("hub-2", "iot-hub", "hub-2", None, "", (), read_ok=False)


def test_a_target_never_read_blocks_every_resolution_and_a_catalog_does_not() -> None:
    candidates = {CURRENT.sha256: [RENEWED.sha256]}
    blocked = resolve_with_evidence([CURRENT, RENEWED], candidates, [HUB, NEVER_READ_HUB])
    assert blocked[CURRENT.sha256].resolved_by is None
    assert blocked[CURRENT.sha256].registration.unread == ("hub-2",)
    catalog = TargetSnapshot("cat", "sphere-catalog", "cat", None, "", (), read_ok=False)
    out = resolve_with_evidence([CURRENT, RENEWED], candidates, [HUB, catalog])
    assert (out[CURRENT.sha256].resolved_by, out[CURRENT.sha256].basis) == (
        "b" * 64,
        "registration",
    )


def test_evidence_counts_a_listing_that_carries_the_certificate_bodies() -> None:
    hub = TargetSnapshot(
        "hub",
        "iot-hub",
        "hub",
        None,
        "live",
        (
            TargetEntry(CURRENT.sha1_thumbprint, CURRENT.sha256, True, "old"),
            TargetEntry(RENEWED.sha1_thumbprint, RENEWED.sha256, True, "new"),
        ),
    )
    out = resolve_with_evidence([CURRENT, RENEWED], {CURRENT.sha256: [RENEWED.sha256]}, [hub])
    assert (out[CURRENT.sha256].resolved_by, out[CURRENT.sha256].basis) == (
        "b" * 64,
        "registration",
    )


def test_the_checker_is_asked_about_the_pair_and_look_alikes_travel_with_the_answer() -> None:
    asked: list[tuple[str, str]] = []

    def check(current: str, renewed: str) -> str:
        asked.append((current, renewed))
        return "look-alike" if renewed == NEWEST.sha256 else "authenticated"

    candidates = {CURRENT.sha256: [NEWEST.sha256, RENEWED.sha256]}
    out = resolve_with_evidence([CURRENT, RENEWED, NEWEST], candidates, [], check=check)
    assert ("a" * 64, "c" * 64) in asked and ("a" * 64, "b" * 64) in asked
    resolved = out[CURRENT.sha256]
    assert (resolved.resolved_by, resolved.registration.look_alikes) == ("b" * 64, ("c" * 64,))
    # unresolved (every renewal a look-alike): the registration still names them
    out = resolve_with_evidence(
        [CURRENT, RENEWED, NEWEST], candidates, [], check=lambda _c, _r: "look-alike"
    )
    assert out[CURRENT.sha256].registration.look_alikes == ("c" * 64, "b" * 64)
    assert ca_state(out[CURRENT.sha256], verdict="affected", acknowledged=False, retired=False) == (
        "look-alike"
    )


def target_state(status: str) -> TargetState:
    return TargetState("hub", "iot-hub", "hub", VERIFIED, ABSENT, status=status)


@pytest.mark.parametrize(
    ("registration", "verdict", "expected"),
    [
        # a look-alike on record, but the renewal asked for is not one
        (
            Registration(
                False, "b" * 64, (), renewal_check="unauthenticated", look_alikes=("c" * 64,)
            ),
            "affected",
            "unauthenticated-renewal",
        ),
        # evidence in a target: an unauthenticated renewal is just pending there
        (
            Registration(
                True, "b" * 64, (target_state("pending"),), renewal_check="unauthenticated"
            ),
            "affected",
            "pending",
        ),
        # no renewal on record, and the analysis did not find the CA affected
        (Registration(True, None, (target_state("pending"),)), "ok", "pending"),
        (Registration(True, None, (target_state("pending"),)), "affected", "affected"),
    ],
)
def test_the_state_of_an_open_ca(registration: Registration, verdict: str, expected: str) -> None:
    resolution = Resolution(None, registration)
    assert ca_state(resolution, verdict=verdict, acknowledged=False, retired=False) == expected
