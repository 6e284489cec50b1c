"""What an alert says about registration (issue 10 item 3): per target, the state of the
current and the renewed CA, and for each pending target the commands that finish the job,
filled in with the target's names. Pure; the values are unescaped here: message.py
escapes them for the form they go into.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.alerts.registration import ABSENT, UNVERIFIED, VERIFIED, Registration, TargetState

STATE_LABELS = {
    VERIFIED: "verified",
    UNVERIFIED: "registered, not verified",
    ABSENT: "absent",
}
NO_EVIDENCE = (
    "No registration evidence was seen: no IoT Hub, DPS or other listing shows this CA. "
    "Upload the output of `az iot hub certificate list` / `az iot dps certificate list` "
    "so the alert can tell which services still need the renewed CA."
)
NO_RENEWAL = (
    "No renewed tenant CA is on record yet: run `azsphere ca list`, download the "
    "newest one and upload it."
)
CLOSE_NO_RENEWAL = (
    "Upload the renewed tenant CA (`azsphere ca download`) to CA Rotation Watch; alerts for "
    "this tenant stop once it is on record and verified in every target that trusts the "
    "current CA."
)
CLOSE_NO_EVIDENCE = (
    "Alerts for this tenant stop once every target that lists the current CA shows the "
    "renewed CA verified; with no listing on record, upload them (see above)."
)
CLOSE_UNKNOWN = (
    "Alerts for this tenant stop once the renewed tenant CA is on record and verified in "
    "every target that trusts the current CA."
)
LIVE = "live"  # a snapshot's source when the app read the target itself
_ARM = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)/providers/"
    r"microsoft\.devices/(?:iothubs|provisioningservices)/(?P<name>[^/]+)$",
    re.IGNORECASE,
)


# Names put into a command line must be plain Azure names: a listing is uploaded input,
# and an operator may paste the command into a shell.
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,127}")


@dataclass(frozen=True)
class RegistrationLine:
    kind: str  # "summary" | "target" | "command" | "note"
    text: str


def renewed_file(registration: Registration) -> str:
    thumb = (registration.renewed_thumbprint or "renewed").lower()
    return f"tenant-ca-{thumb[:8]}.cer"


def target_label(state: TargetState) -> str:
    kind = {"iot-hub": "IoT Hub", "dps": "DPS", "iot-central": "IoT Central"}.get(
        state.kind, "Target"
    )
    return f"{kind} {state.display_name}"


def registration_lines(registration: Registration | None) -> list[RegistrationLine]:
    """The registration part of one alert, in reading order."""
    if registration is None:
        return []
    if not registration.evidence:
        return [RegistrationLine("note", NO_EVIDENCE)]
    pending = registration.pending_targets
    lines = [
        RegistrationLine(
            "summary",
            f"Registered in {len(registration.targets)} target(s); "
            + (
                f"the renewed CA is still missing or unverified in {len(pending)}."
                if pending
                else "the renewed CA is verified in all of them."
            ),
        )
    ]
    if registration.renewed is None:
        lines.append(RegistrationLine("note", NO_RENEWAL))
    for state in registration.targets:
        lines.append(
            RegistrationLine(
                "target",
                f"{target_label(state)}: current CA {STATE_LABELS[state.current]}, "
                f"renewed CA {STATE_LABELS[state.renewed]}",
            )
        )
    if registration.renewed is not None:
        for state in pending:
            lines.extend(
                RegistrationLine("command", command) for command in commands(state, registration)
            )
    return lines


@dataclass(frozen=True)
class TargetCheck:
    """One line of a tenant's checklist: a target that trusts the current CA."""

    done: bool  # the renewed CA is verified there
    mark: str  # "✔ done", "☐ pending", "✖ lost trust", "? unknown" (its last read failed)
    label: str  # "IoT Hub fleet-hub"
    status: str  # "current CA verified, renewed CA absent"
    evidence: str  # "seen 2020-08-04 09:00 UTC, live read" or "" when not known
    commands: tuple[str, ...]  # what finishes it (empty when done or no renewal yet)
    closing: str  # how the app will see it done: the listing to upload, or the live read


@dataclass(frozen=True)
class Checklist:
    summary: str
    notes: tuple[str, ...]
    targets: tuple[TargetCheck, ...]
    closing: str  # the step that makes this tenant's alerts stop


def _when(moment: object) -> str:
    if not isinstance(moment, datetime):
        return ""
    utc = moment if moment.tzinfo is None else moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d %H:%M UTC")


def _evidence(state: TargetState) -> str:
    # Provenance of the snapshot (issue 21).
    seen = _when(state.seen_at)
    where = (
        "live read" if state.source == LIVE else (f"from {state.source}" if state.source else "")
    )
    return ", ".join(part for part in (f"seen {seen}" if seen else "", where) if part)


def _arm_names(state: TargetState) -> tuple[str, str] | None:
    """(name, resource group) quoted for a shell, or None when they are not plain names."""
    found = _ARM.match(state.target)
    if found is None or not all(_SAFE_NAME.fullmatch(v) for v in (state.display_name, found["rg"])):
        return None
    return shlex.quote(state.display_name), shlex.quote(found["rg"])


def target_closing(state: TargetState) -> str:
    """How the app learns that this target is done: a live read, or the listing to upload."""
    if state.source == LIVE:
        return (
            f"The app reads {target_label(state)} live: it sees the change within "
            "REGISTRATION_REFRESH; nothing to upload."
        )
    names = _arm_names(state) if state.kind in ("iot-hub", "dps") else None
    if names is None:
        return (
            f"Then upload an updated listing of {state.display_name} (a ca-watch/registrations/v1 "
            "manifest, or the service's certificate list) to CA Rotation Watch."
        )
    name, group = names
    if state.kind == "iot-hub":
        listing = f"az iot hub certificate list --hub-name {name} --resource-group {group}"
        return f"Then upload the new `{listing}` output to CA Rotation Watch."
    listing = f"az iot dps certificate list --dps-name {name} --resource-group {group}"
    groups = f"az iot dps enrollment-group list --dps-name {name} --resource-group {group}"
    if state.groups_seen is False:  # the group clause is unchecked
        return (
            f"Then upload the new `{listing}` output, and `{groups}` (its enrollment groups "
            "were never seen), to CA Rotation Watch."
        )
    return f"Then upload the new `{listing}` and `{groups}` output to CA Rotation Watch."


def _group_commands(state: TargetState, registration: Registration) -> list[str]:
    """DPS enrollment groups that cover the current CA but not the renewal must name it too
    (DESIGN §4 rule 1): the commands, when the snapshot read the groups and some miss it."""
    missing = state.groups_missing
    names = _arm_names(state) if state.kind == "dps" else None
    if not missing or names is None:
        return []
    thumb = (registration.renewed_thumbprint or "").lower()[:8]
    cert = state.renewed_name or (f"tenant-ca-{thumb}" if thumb else "")  # "": no name to give
    if not _SAFE_NAME.fullmatch(cert):
        return []
    out = []
    for group_id in map(str, missing):
        if _SAFE_NAME.fullmatch(group_id):
            out.append(
                f"az iot dps enrollment-group update --dps-name {names[0]} "
                f"--resource-group {names[1]} --enrollment-id {shlex.quote(group_id)} "
                f"--secondary-ca-name {shlex.quote(cert)}"
            )
    return out


def checklist(registration: Registration | None) -> Checklist:
    """The registration part of a tenant's alert as a checklist: per target ✔ done or
    ☐ pending with the commands that finish it and how the app will see it, then the step
    that closes the tenant."""
    if registration is None:
        return Checklist("", (), (), CLOSE_UNKNOWN)
    if not registration.evidence:
        closing = CLOSE_NO_EVIDENCE if registration.renewed else CLOSE_NO_RENEWAL
        return Checklist("", (NO_EVIDENCE,), (), closing)
    pending = registration.pending_targets
    summary = f"Registered in {len(registration.targets)} target(s); " + (
        f"the renewed CA is still missing or unverified in {len(pending)}."
        if pending
        else "the renewed CA is verified in all of them."
    )
    notes: tuple[str, ...] = ()
    if registration.renewed is None:
        notes = (NO_RENEWAL,)
    checks = []
    for state in registration.targets:
        status = state.status  # done | pending | lost-trust (issue 21)
        done = status == "done"
        mark = "✔ done" if done else "✖ lost trust" if status == "lost-trust" else "☐ pending"
        if state.unknown:  # issue 21: the last read failed
            mark = "? unknown"
        todo: list[str] = []
        if not done and registration.renewed is not None:
            todo = commands(state, registration) + _group_commands(state, registration)
        checks.append(
            TargetCheck(
                done=done,
                mark=mark,
                label=target_label(state),
                status=f"current CA {STATE_LABELS[state.current]}, "
                f"renewed CA {STATE_LABELS[state.renewed]}",
                evidence=_evidence(state),
                commands=tuple(todo),
                closing="" if done else target_closing(state),
            )
        )
    if registration.renewed is None:
        closing = CLOSE_NO_RENEWAL
    elif pending:
        closing = (
            f"Alerts for this tenant stop once every target above shows the renewed CA "
            f"verified ({len(pending)} of {len(registration.targets)} still pending)."
        )
    else:
        closing = "Every target shows the renewed CA verified: the next pass resolves this tenant."
    return Checklist(summary, notes, tuple(checks), closing)


def commands(state: TargetState, registration: Registration) -> list[str]:
    """The commands that register and verify the renewed CA in one target."""
    thumb = registration.renewed_thumbprint or "<thumbprint>"
    file = renewed_file(registration)
    name = state.renewed_name or f"tenant-ca-{thumb.lower()[:8]}"
    found = _ARM.match(state.target)
    safe = found is not None and all(
        _SAFE_NAME.fullmatch(value) for value in (state.display_name, found["rg"], name)
    )
    if state.kind not in ("iot-hub", "dps") or found is None or not safe:
        return [
            f"In {state.display_name}: register the renewed CA (SHA-1 {thumb}) and verify it "
            f"with `azsphere ca download-proof --verificationcode <code>`."
        ]
    # Quoted where a shell would split them: resource group names may hold parentheses.
    target, group, cert = (shlex.quote(v) for v in (state.display_name, found["rg"], name))
    if state.kind == "iot-hub":
        base = f"az iot hub certificate {{}} --hub-name {target} "
        base += f"--resource-group {group} --name {cert}"
    else:
        base = f"az iot dps certificate {{}} --dps-name {target} "
        base += f"--resource-group {group} --certificate-name {cert}"
    steps = [f"# {target_label(state)}"]
    if state.renewed == ABSENT:
        steps.append(f"azsphere ca download --thumbprint {thumb} --destination {file}")
        steps.append(base.format("create") + f" --path {file}")
    steps.append(base.format("generate-verification-code") + " --etag <etag>")
    steps.append("azsphere ca download-proof --verificationcode <code> --destination proof.cer")
    steps.append(base.format("verify") + " --path proof.cer --etag <etag>")
    return steps
