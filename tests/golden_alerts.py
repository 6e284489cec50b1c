"""The golden alert timeline: fixed tenant CAs, the default rules, one `now` per day from
2020-07-25 to 2020-10-10; what the planner finds due (and when it next looks), and the
messages rendered for three of those days. test_mutants_alerts.py compares with the
committed JSON. Not a test module. Regenerate only on purpose and review the diff:
    .venv/bin/python tests/golden_alerts.py
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

EXPECTED = Path(__file__).parent / "data" / "golden" / "expected-alerts.json"
FIRST_DAY = datetime(2020, 7, 25, 9, 30, tzinfo=UTC)
DAYS = 78
RENDER_DAYS = (11, 25, 60)  # 2020-08-05, 2020-08-19 (overdue), 2020-09-23


def message_forms(message: Any) -> dict[str, Any]:
    """Every form of a rendered message, as the golden files hold them."""
    return {
        "subject": message.subject,
        "text": message.text,
        "html": message.html,
        "card": message.adaptive_card,
        "item_count": message.item_count,
        "omitted_count": message.omitted_count,
    }


def certificates() -> list[object]:
    from shared.alerts.model import TenantCertificate

    def cert(n: int, verdict: str, not_after: datetime, **kw: object) -> TenantCertificate:
        return TenantCertificate(
            tenant_id=f"{n:08x}-0000-4000-8000-000000000000",
            sha256=f"{n:064x}",
            sha1_thumbprint=f"{n:040X}",
            subject=f"CN=Microsoft Azure Sphere {n:08x}-0000-4000-8000-000000000000, O=<b>&co",
            not_before=not_after - timedelta(days=730),
            not_after=not_after,
            verdict=verdict,
            **kw,
        )

    far = datetime(2022, 7, 1, tzinfo=UTC)
    return [
        cert(1, "affected", far),
        cert(2, "signature-mismatch", far),
        cert(3, "ok", datetime(2020, 10, 1, 12, tzinfo=UTC)),  # rotation under way
        cert(4, "ok", datetime(2020, 9, 1, tzinfo=UTC)),
        cert(5, "affected", far, acknowledged=True),
        cert(6, "affected", far, resolved_by=f"{7:064x}"),
        cert(8, "ok", far),
    ]


def _due_json(alert: object) -> dict[str, object]:
    body = dict(vars(alert))
    body.pop("state", None)  # set by the alert pass from the store, never by the planner
    for name in ("not_before", "not_after", "due"):
        body[name] = body[name].isoformat()
    body["actions"] = list(body["actions"])
    return body


def timeline() -> dict[str, object]:
    from shared.alerts.message import render_message
    from shared.alerts.planner import AlertPlanner
    from shared.alerts.rules import DEFAULT_RULES_PATH, load_rules

    planner = AlertPlanner(load_rules(DEFAULT_RULES_PATH))
    certs = certificates()
    days: list[dict[str, object]] = []
    for day in range(DAYS):
        now = FIRST_DAY + timedelta(days=day)
        due = planner.due_alerts(now, certs)
        entry: dict[str, object] = {
            "now": now.isoformat(),
            "due": [
                {k: v for k, v in _due_json(a).items() if k not in ("message", "actions")}
                for a in due
            ],
            "next_check": {
                c.sha256[-2:]: (n.isoformat() if (n := planner.next_check(c, now)) else None)
                for c in certs
            },
        }
        if day in RENDER_DAYS:
            entry["texts"] = [_due_json(a) for a in due]
            message = render_message(due, now)
            entry["message"] = message_forms(message)
        days.append(entry)
    return {"days": days}


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent.parent))
    EXPECTED.write_text(json.dumps(timeline(), indent=2) + "\n")
