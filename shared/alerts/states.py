"""The one vocabulary of states (issues 21 and 24): every surface (text report, HTML, JSON,
e-mail, Teams card) names a tenant CA's state, and an upload's outcome, from here.

Pure: no Azure import, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class State:
    id: str  # what the JSON carries
    label: str  # what a person reads
    symbol: str  # one glyph, for tables and the timeline
    open: bool  # alerts continue in this state
    meaning: str  # one sentence: where the state comes from
    next_step: str  # one sentence: what the operator does about it


# Most urgent first: a tenant takes the state of its most urgent CA.
CA_STATES: tuple[State, ...] = (
    State(
        "lost-trust",
        "lost trust",
        "✖",
        True,
        "A target that listed the current CA now lists neither it nor a verified renewal.",
        "Register and verify the renewed CA in that target again.",
    ),
    State(
        "look-alike",
        "look-alike renewal",
        "✖",
        True,
        "A certificate with the tenant's name whose signature does not verify under the "
        "issuer of the current CA; it is never counted as a renewal.",
        "Find out who uploaded it; download the real renewal with `azsphere ca list`.",
    ),
    State(
        "unknown",
        "unknown",
        "?",
        True,
        "A target's last read failed or its listing was refused; its last good snapshot "
        "is kept and shown with its source and time.",
        "Fix the read (the error says how) or upload a fresh listing of that target.",
    ),
    State(
        "affected",
        "affected",
        "⚠",
        True,
        "Issued inside the incident window and no renewal is on record yet.",
        "Download the renewed CA (`azsphere ca list`, `azsphere ca download`) and upload it.",
    ),
    State(
        "unauthenticated-renewal",
        "unauthenticated renewal",
        "⚠",
        True,
        "A renewal is on record, no target lists the current CA, and its signature could "
        "not be checked: no issuer certificate of the current CA is on record.",
        "Upload the chain: `azsphere ca download-chain --destination chain.p7b`.",
    ),
    State(
        "pending",
        "pending",
        "☐",
        True,
        "An action is still to do: the renewal is not yet on record, or not yet verified "
        "in every target that trusts the current CA.",
        "Follow the checklist per target; alerts stop once every target shows the renewal.",
    ),
    State(
        "acknowledged",
        "acknowledged",
        "⊘",
        False,
        "An operator silenced this CA (scoped to the CAs on record then, optionally until a date).",
        "Nothing, until the acknowledgement ends; `ca-watch ack --withdraw` ends it now.",
    ),
    State(
        "retired",
        "retired",
        "–",
        False,
        "An operator retired this CA from the inventory (audited).",
        "Nothing.",
    ),
    State(
        "resolved",
        "resolved",
        "✔",
        False,
        "Replaced: the renewal is verified in every target that trusted the current CA, or, "
        "where no target ever listed it, the renewal is authenticated.",
        "Nothing; the resolution was announced with its evidence.",
    ),
    State(
        "ok",
        "ok",
        "✔",
        False,
        "Nothing to do yet: no action deadline is within its first reminder.",
        "Nothing.",
    ),
)

# What became of an uploaded listing that changed nothing (besides the refusal codes).
UPLOAD_OUTCOMES: tuple[State, ...] = (
    State(
        "live-target",
        "live target",
        "–",
        False,
        "The listing names a target the app reads live; uploads change nothing there.",
        "Nothing: the live read is the evidence for that target.",
    ),
    State(
        "stale-listing",
        "stale listing",
        "–",
        False,
        "An older listing arrived after a newer one of the same target; it replaced nothing.",
        "Upload a listing taken after the one on record, if the target changed since.",
    ),
)

BY_ID: dict[str, State] = {state.id: state for state in CA_STATES + UPLOAD_OUTCOMES}
RANK: dict[str, int] = {state.id: rank for rank, state in enumerate(CA_STATES)}


def state(state_id: str) -> State:
    """The state named ``state_id``; KeyError for a name the vocabulary does not have."""
    return BY_ID[state_id]


def most_urgent(state_ids: list[str] | tuple[str, ...]) -> str:
    """The most urgent of ``state_ids`` ("ok" when there are none)."""
    return min(state_ids, key=lambda s: RANK[s], default="ok")
