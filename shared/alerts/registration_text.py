"""What an alert says about registration (issue 10 item 3): per target, the state of the
current and the renewed CA, and for each pending target the commands that finish the job,
filled in with the target's names. Pure; the values are unescaped here: message.py
escapes them for the form they go into.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

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
        lines.append(
            RegistrationLine(
                "note",
                "No renewed tenant CA is on record yet: run `azsphere ca list`, download the "
                "newest one and upload it.",
            )
        )
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
