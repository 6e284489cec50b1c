"""Classification contract v1 (DESIGN §2): role, tenant_id, verdict, reasons and actions.

Pure: facts and rules in, a frozen value out. The incident window is data (``rules``).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from shared.alerts.rules import Rules
from shared.analysis.facts import SIGNATURE_ALGORITHM_NAMES, CertificateFacts, Mismatch

_TENANT_CN = re.compile(
    r"^Microsoft Azure Sphere ([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_DEVICE_ID = re.compile(r"^[0-9a-fA-F]{128}$")
MICROSOFT = "Microsoft Corporation"


class Role(StrEnum):
    TENANT_CA = "tenant-ca"
    DEVICE = "device"
    VERIFICATION = "verification"
    MICROSOFT_CA = "microsoft-ca"


class Verdict(StrEnum):
    AFFECTED = "affected"
    SIGNATURE_MISMATCH = "signature-mismatch"
    OK = "ok"


NEEDS_ACTION = frozenset({Verdict.AFFECTED, Verdict.SIGNATURE_MISMATCH})

# Module-level names for the members used per certificate: an Enum class attribute costs
# ~50 ns a lookup, a global ~6 ns, and classification makes a dozen of them.
_TENANT_CA, _DEVICE, _VERIFICATION, _MICROSOFT_CA = (
    Role.TENANT_CA,
    Role.DEVICE,
    Role.VERIFICATION,
    Role.MICROSOFT_CA,
)
_AFFECTED, _SIGNATURE_MISMATCH, _OK = Verdict.AFFECTED, Verdict.SIGNATURE_MISMATCH, Verdict.OK
_NO_MISMATCH, _OID_MISMATCH = Mismatch.NONE, Mismatch.OID


class Classification(NamedTuple):  # immutable and cheap to build, as CertificateFacts
    role: Role | None
    tenant_id: str | None
    verdict: Verdict
    incident_id: str | None  # the incident whose window holds this tenant CA
    reasons: tuple[str, ...]
    actions: tuple[str, ...]

    def azure_sphere_json(self) -> dict[str, object]:
        return {"role": str(self.role) if self.role else None, "tenant_id": self.tenant_id}


def tenant_of(common_name: str | None, organization: str | None) -> str | None:
    """The tenant guid when a name is an Azure Sphere tenant CA name (CN and O rule)."""
    if common_name is None or organization != MICROSOFT:
        return None
    match = _TENANT_CN.match(common_name)
    return match.group(1).lower() if match else None


def role_of(facts: CertificateFacts) -> tuple[Role | None, str | None]:
    subject_tenant = tenant_of(facts.subject_cn, facts.subject_o)
    if subject_tenant and facts.is_ca:
        return _TENANT_CA, subject_tenant
    issuer_tenant = tenant_of(facts.issuer_cn, facts.issuer_o)
    if issuer_tenant:
        if facts.subject_cn and _DEVICE_ID.match(facts.subject_cn):
            return _DEVICE, issuer_tenant
        return _VERIFICATION, issuer_tenant
    if facts.is_ca and facts.subject_o == MICROSOFT and "Azure Sphere" in (facts.subject_cn or ""):
        return _MICROSOFT_CA, None
    return None, None


def _day(moment: datetime) -> str:
    # isoformat is 3x faster than strftime; moments here are UTC (certificate and rules times).
    return moment.isoformat(" ", "seconds")[:19] + " UTC"


def _mismatch_reason(facts: CertificateFacts) -> str:
    outer, inner = facts.outer_algorithm, facts.inner_algorithm
    if facts.mismatch is _OID_MISMATCH:
        return (
            "The outer signature algorithm "
            f"({SIGNATURE_ALGORITHM_NAMES.get(outer.oid, outer.oid)}) differs from the one "
            f"inside the signed part ({SIGNATURE_ALGORITHM_NAMES.get(inner.oid, inner.oid)}); "
            "RFC 5280 requires them to be equal, and `openssl verify` refuses the certificate "
            "(error 7, certificate signature failure)."
        )
    return (
        "The outer and inner signature algorithm identifiers name the same algorithm but "
        f"their parameters differ (outer {_params(outer.parameters)}, inner "
        f"{_params(inner.parameters)}); `openssl verify` compares both and refuses the "
        "certificate (error 7)."
    )


def _params(parameters: bytes | None) -> str:
    return "absent" if parameters is None else parameters.hex()


def classify_certificate(facts: CertificateFacts, rules: Rules, now: datetime) -> Classification:
    role, tenant_id = role_of(facts)
    reasons: list[str] = []
    actions: list[str] = []
    verdict = _OK
    incident_id: str | None = None

    if role is _TENANT_CA:
        not_before = facts.not_before
        # Certificate times are aware and whole seconds: compare directly, as
        # Incident.contains would after its normalisation (it runs for any other time).
        exact = not_before.tzinfo is not None and not not_before.microsecond
        for incident in rules.incidents:
            if (
                incident.window_start <= not_before <= incident.window_end
                if exact
                else incident.contains(not_before)
            ):
                verdict, incident_id = _AFFECTED, incident.id
                reasons.append(f"Tenant CA issued {_day(facts.not_before)}.")
                reasons.extend(incident.reasons)
                actions.extend(incident.actions)
                break
    if facts.mismatch is not _NO_MISMATCH:
        reasons.append(_mismatch_reason(facts))
        if verdict is _OK:
            verdict = _SIGNATURE_MISMATCH
            actions.append(
                "Obtain a reissued certificate from its issuer; until then OpenSSL-based "
                "services (IoT Hub, DPS, mosquitto, ...) may refuse it."
            )

    if role is _TENANT_CA:
        reasons.extend(_rotation_reasons(facts, rules, now))
        if verdict is _OK and rules.rotation and _in_rotation(facts, now):
            actions.extend(rules.rotation.actions)
    elif role is _VERIFICATION:
        reasons.append(
            "A proof-of-possession (verification) certificate: it proves control of the "
            "tenant CA to IoT Hub or DPS and is valid only about an hour."
        )
    elif role is _DEVICE:
        reasons.append(f"A device certificate issued by tenant {tenant_id}'s CA.")
    elif role is _MICROSOFT_CA:
        reasons.append("A Microsoft Azure Sphere CA above the tenant CAs.")
    if verdict is _OK and not reasons:
        reasons.append("Not an Azure Sphere certificate; its signature algorithms agree.")
    elif verdict is _OK and facts.mismatch is _NO_MISMATCH:
        reasons.append("Its outer and inner signature algorithm identifiers agree.")
    return Classification(role, tenant_id, verdict, incident_id, tuple(reasons), tuple(actions))


_ROTATION_WINDOW = timedelta(days=90)


def _in_rotation(facts: CertificateFacts, now: datetime) -> bool:
    return facts.not_after - _ROTATION_WINDOW <= now <= facts.not_after


def _rotation_reasons(facts: CertificateFacts, rules: Rules, now: datetime) -> list[str]:
    if now > facts.not_after:
        return [f"Expired on {_day(facts.not_after)}."]
    text = f"Valid until {_day(facts.not_after)} ({(facts.not_after - now).days} days left)."
    if _in_rotation(facts, now) and rules.rotation:
        upcoming = sorted(
            (deadline.due_for(facts.not_after), deadline.title)
            for deadline in rules.rotation.deadlines
            if deadline.due_for(facts.not_after) >= now
        )
        if upcoming:
            due, title = upcoming[0]
            text += f" Rotation under way; next: {title} on {_day(due)}."
    return [text]
