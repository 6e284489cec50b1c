"""One vocabulary (issues 21 and 24): the README's table of states is the one in
shared/alerts/states.py, and every state the store computes is in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.alerts import states
from shared.alerts.registration import (
    Registration,
    Resolution,
    TargetState,
    ca_state,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_rows() -> list[list[str]]:
    section = README.read_text(encoding="utf-8").split("## States", 1)[1].split("\n## ", 1)[0]
    return [
        [cell.strip() for cell in line.strip("|").split("|")]
        for line in section.splitlines()
        if re.match(r"\| `[a-z-]+` \|", line)
    ]


def test_the_readme_table_is_the_vocabulary() -> None:
    expected = [
        [f"`{s.id}`", s.symbol, "yes" if s.open else "no", s.meaning, s.next_step]
        for s in states.CA_STATES
    ] + [[f"`{s.id}`", s.meaning, s.next_step] for s in states.UPLOAD_OUTCOMES]
    assert readme_rows() == expected


def target(status: str, unknown: bool = False) -> TargetState:
    return TargetState(
        "hub", "iot-hub", "hub", "verified", "absent", status=status, unknown=unknown
    )


@pytest.mark.parametrize(
    ("resolution", "flags", "expected"),
    [
        (None, {"verdict": "affected"}, "affected"),
        (None, {"verdict": "ok"}, "pending"),
        (Resolution("b" * 64, Registration(True, "b" * 64, ())), {}, "resolved"),
        (Resolution(None, Registration(True, "b" * 64, (target("lost-trust"),))), {}, "lost-trust"),
        (
            Resolution(
                None,
                Registration(
                    False, "b" * 64, (), renewal_check="look-alike", look_alikes=("b" * 64,)
                ),
            ),
            {},
            "look-alike",
        ),
        (Resolution(None, Registration(True, "b" * 64, (target("pending", True),))), {}, "unknown"),
        (Resolution(None, Registration(False, None, (), unread=("hub",))), {}, "unknown"),
        (
            Resolution(None, Registration(False, "b" * 64, (), renewal_check="unauthenticated")),
            {},
            "unauthenticated-renewal",
        ),
        (Resolution(None, Registration(False, None, ())), {"verdict": "affected"}, "affected"),
        (Resolution(None, Registration(True, "b" * 64, (target("pending"),))), {}, "pending"),
        (None, {"acknowledged": True}, "acknowledged"),
        (None, {"retired": True, "acknowledged": True}, "retired"),
    ],
)
def test_every_state_the_store_computes_is_in_the_vocabulary(
    resolution: Resolution | None, flags: dict[str, object], expected: str
) -> None:
    arguments = {"verdict": "ok", "acknowledged": False, "retired": False, **flags}
    found = ca_state(resolution, **arguments)  # type: ignore[arg-type]
    assert found == expected and states.state(found).id == found


def test_most_urgent_follows_the_table_order() -> None:
    assert states.most_urgent(["ok", "pending", "lost-trust"]) == "lost-trust"
    assert states.most_urgent([]) == "ok"
    # by rank, not by name: "affected" sorts first alphabetically, "unknown" is more urgent
    assert states.most_urgent(["resolved", "unknown", "affected", "pending"]) == "unknown"
    ids = [s.id for s in states.CA_STATES]
    for rank, state_id in enumerate(ids):
        assert states.most_urgent(list(reversed(ids[rank:]))) == state_id
    with pytest.raises(KeyError):
        states.state("fine")
