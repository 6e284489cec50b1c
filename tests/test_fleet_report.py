"""The fleet report: its view model (states, counts, registration targets, stages sent),
the timeline's adaptive axis, a valid page over hard data, and where it appears
(``ca-watch report --html`` and the timer's blobs, on a real Azurite)."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fleet_samples import (
    DPS,
    HOSTILE,
    NOW,
    T_FINE,
    T_PENDING,
    T_RENEWED,
    T_WAITING,
    certificate,
    incident_fleet,
    parse_strictly,
    synthetic_fleet,
)

from shared.alerts.rules import load_rules
from shared.alerts.states import state
from shared.app import handlers, report_writer
from shared.local import samples
from shared.local.cli import main as ca_watch
from shared.local.runner import registered_function
from shared.report.fleet import build_fleet
from shared.report.fleet_model import SentStage
from shared.report.fleet_page import render_fleet_html
from shared.report.fleet_timeline import PLOT_X0, PLOT_X1, build_axis, build_timeline

RULES = load_rules()
RENEWAL = "azure-sphere-2020-07/renewal-available"
ACTIVATION = "azure-sphere-2020-07/activation"


def fleet_at(now: datetime = NOW, document: dict[str, Any] | None = None, sent: Any = ()) -> Any:
    return build_fleet(document or incident_fleet(), RULES, now, sent)


def summary_of(page: str) -> str:
    match = re.search(r'id="summary">(.*?)</p>', page, re.S)
    assert match
    return match.group(1)


# --- the model -------------------------------------------------------------------------


def test_each_tenant_gets_its_state_most_urgent_first() -> None:
    fleet = fleet_at()
    assert [(t.tenant_id, t.state) for t in fleet.tenants] == [
        (T_PENDING, "affected"),  # inside the window, nothing renewed
        (T_WAITING, "pending"),  # renewed, but DPS has not verified the renewal
        (T_RENEWED, "resolved"),
        (T_FINE, "ok"),
    ]
    assert fleet.counts["affected"] == 3
    assert fleet.counts["affected_resolved"] == 1 and fleet.counts["affected_pending"] == 2
    page = render_fleet_html(fleet)
    # The summary counts what the rows say, in the vocabulary's words and marks.
    assert summary_of(page).startswith(
        "6 certificates (6 tenant CAs of 4 tenants); tenants by state: 1 ⚠ affected, "
        "1 ☐ pending, 1 ✔ resolved, 1 ✔ ok;"
    )
    rows = re.findall(r'<td class="st st-([a-z-]+)">([^<]*)</td>', page)
    assert [state_id for state_id, _ in rows] == ["affected", "pending", "resolved", "ok"]
    assert [label for _, label in rows] == [
        f"{state(s).symbol} {state(s).label}" for s in ("affected", "pending", "resolved", "ok")
    ]
    assert "1 unreadable or refused upload of 2." in summary_of(page)


def test_acknowledged_tenant_is_shown_as_such() -> None:
    document = incident_fleet()
    document["certificates"][4]["acknowledged"] = {"by": "ops@contoso", "at": "x", "note": "lab"}
    fleet = fleet_at(document=document)
    state = {t.tenant_id: t.state for t in fleet.tenants}
    assert state[T_PENDING] == "acknowledged"
    assert "acknowledged by ops@contoso (lab)" in render_fleet_html(fleet)


def test_next_deadline_is_the_next_action_deadline_not_a_milestone() -> None:
    fleet = fleet_at(datetime(2020, 8, 1, 9, tzinfo=UTC))
    view, hits = fleet.next_deadline
    # Aug 5 (renewal available) is Microsoft's milestone; the operator's deadline is Aug 18.
    assert (view.id, view.due, view.when, hits) == (
        ACTIVATION,
        datetime(2020, 8, 18, tzinfo=UTC),
        "16 days left",
        2,  # the two affected tenants still open; the renewed one is resolved
    )
    page = render_fleet_html(fleet)
    assert (
        "next action deadline: Register the renewed tenant CA before it activates on "
        "2020-08-18 (16 days left) for 2 tenants" in summary_of(page)
    )
    assert "Renewed tenant CA available" not in re.sub(r"<svg.*</svg>", "", page, flags=re.S)


@pytest.mark.parametrize(
    ("now", "when"),
    [
        (datetime(2020, 8, 17, 9, tzinfo=UTC), "15 hours left"),  # under 2 days: hours
        (datetime(2020, 8, 18, 9, tzinfo=UTC), "overdue by 9 hours"),  # never "1 day"
        (datetime(2022, 6, 10, 9, tzinfo=UTC), "overdue since 2020-08-18"),  # not "-662"
    ],
)
def test_time_left_reads_in_hours_days_or_a_date_and_only_late_actions_are_red(
    now: datetime, when: str
) -> None:
    page = render_fleet_html(fleet_at(now))
    cell = re.search(r'<td class="nowrap( late)?">([^<]*)</td>', page)
    assert cell is not None and cell.group(2).startswith(when)
    assert bool(cell.group(1)) == when.startswith("overdue")


def test_registration_targets_show_current_and_renewed_state() -> None:
    fleet = fleet_at()
    waiting = next(t for t in fleet.tenants if t.tenant_id == T_WAITING)
    rows = {(r.display_name, r.current, r.renewed) for r in waiting.targets}
    assert rows == {("hub-west", "verified", "verified"), ("dps", "verified", "unverified")}
    dps = next(r for r in waiting.targets if r.target == DPS)
    assert dps.error == "forbidden: Reader role missing"
    page = render_fleet_html(fleet)
    assert "<td>dps (dps)<br>cannot be read: forbidden: Reader role missing</td>" in page
    assert '<td class="nowrap">verified</td><td>unverified</td>' in page


def test_without_registrations_the_page_says_no_listing_shows_them() -> None:
    document = incident_fleet()
    for cert in document["certificates"]:
        cert.pop("registrations", None)
    document.pop("targets")
    page = render_fleet_html(fleet_at(document=document))
    assert page.count("No registration listing shows these CAs.") == 4
    parse_strictly(page)


def test_last_stage_sent_per_channel_comes_from_the_ledger() -> None:
    sha = "e2" * 32
    sent = [
        SentStage(T_PENDING, sha, RENEWAL, "14d", "outbox", datetime(2020, 7, 22, tzinfo=UTC)),
        SentStage(T_PENDING, sha, RENEWAL, "1d", "outbox", datetime(2020, 8, 4, tzinfo=UTC)),
        SentStage(T_PENDING, sha, ACTIVATION, "overdue@2020-08-19", "teams", None),
    ]
    tenant = fleet_at(sent=sent).tenants[0]
    assert tenant.sent == [
        ("outbox", "1d of Renewed tenant CA available on 2020-08-04"),
        ("teams", "overdue of Renewed tenant CA activates"),
    ]


# --- the timeline ----------------------------------------------------------------------


def _x_of(page: str, label: str) -> float:
    pattern = r'<text class="hl" x="([\d.]+)" y="[\d.]+" text-anchor="\w+">[^<]*'
    match = re.search(pattern + label, page)
    assert match, label
    return float(match.group(1))


def test_incident_axis_keeps_aug_5_and_aug_18_apart() -> None:
    page = render_fleet_html(fleet_at())
    aug5, aug18 = _x_of(page, "2020-08-05 Renewed"), _x_of(page, "2020-08-18 Register")
    assert aug18 - aug5 >= 20  # 13 days stay readable next to 2-year validity bars
    assert "incident window 2020-06-16 to 2020-07-28" in page
    assert "today 2020-09-01" in page


def test_routine_rotation_alone_does_not_draw_the_2020_incident() -> None:
    document = {
        "certificates": [
            certificate(
                f"0000000{i}-0000-4000-8000-000000000000",
                f"{i:02x}",
                f"{2023 + i % 2}-0{1 + i}-01T00:00:00Z",
                f"{2025 + i % 2}-0{1 + i}-01T00:00:00Z",
            )
            for i in range(4)
        ],
        "uploads": [],
    }
    fleet = fleet_at(datetime(2025, 1, 15, tzinfo=UTC), document)
    timeline = build_timeline(fleet)
    assert not [line for line in timeline.lines if line.kind == "window"]
    assert timeline.ticks and all(label >= "2023" for _, label in timeline.ticks)
    assert 'class="band"' not in render_fleet_html(fleet)


def test_incident_seen_from_years_later_breaks_the_axis() -> None:
    fleet = fleet_at(datetime(2026, 6, 1, tzinfo=UTC))
    timeline = build_timeline(fleet)
    assert timeline.breaks, "six empty years must collapse into a break"
    page = render_fleet_html(fleet)
    assert _x_of(page, "2020-08-18 Register") - _x_of(page, "2020-08-05 Renewed") >= 20
    assert _x_of(page, "today 2026-06-01") > _x_of(page, "2020-08-18 Register")


def test_axis_positions_are_monotonic_across_breaks() -> None:
    moments = [datetime(2020, 7, 1, tzinfo=UTC), datetime(2020, 8, 18, tzinfo=UTC),
               datetime(2023, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)]  # fmt: skip
    axis = build_axis(moments)
    xs = [axis.x(m) for m in sorted([*moments, datetime(2021, 6, 1, tzinfo=UTC)])]
    assert xs == sorted(xs)
    assert xs[0] >= PLOT_X0 and xs[-1] <= PLOT_X1
    assert axis.x(datetime(1990, 1, 1, tzinfo=UTC)) == PLOT_X0
    assert axis.x(datetime(2090, 1, 1, tzinfo=UTC)) == PLOT_X1


def test_past_fifty_tenants_the_picture_shows_the_most_urgent() -> None:
    fleet = fleet_at(document=synthetic_fleet(120))
    timeline = build_timeline(fleet)
    assert timeline.shown == 50 and timeline.total == len(fleet.tenants)
    shown = [row.tenant.state for row in timeline.rows]
    assert shown[0] == "affected" and shown == sorted(shown, key=lambda s: shown.index(s))
    page = render_fleet_html(fleet)
    more = len(fleet.tenants) - 50
    assert f"Showing the 50 most urgent of {len(fleet.tenants)} tenants" in page
    assert f"({more} more)" in page
    assert page.count('<g class="row">') == 50
    assert page.count('<tr id="t-') == len(fleet.tenants)


# --- a valid page over hard data --------------------------------------------------------


def hostile_fleet() -> dict[str, Any]:
    document = synthetic_fleet(30, hostile=HOSTILE)
    document["certificates"][0]["sha1_thumbprint"] = HOSTILE
    document["uploads"][0]["error"] = {"code": HOSTILE, "message": HOSTILE}
    document["uploads"][0]["status"] = "rejected"
    return document


@pytest.mark.parametrize(
    "document",
    [
        pytest.param(hostile_fleet(), id="hostile"),
        pytest.param(synthetic_fleet(1000), id="1000-tenants"),
        pytest.param(
            {"schema": "ca-watch/report/v1", "certificates": [], "uploads": []}, id="empty"
        ),
        pytest.param(
            {
                "certificates": [],
                "uploads": [
                    {
                        "name": f"{HOSTILE}{i}",
                        "status": "unreadable",
                        "error": {"code": "not-a-certificate", "message": "no"},
                    }
                    for i in range(3)
                ],
            },
            id="only-unreadable",
        ),
        pytest.param(
            {
                "certificates": [
                    {
                        "azure_sphere": {"role": "tenant-ca", "tenant_id": 7},
                        "not_before": "yesterday",
                        "not_after": None,
                        "registrations": "no",
                        "sources": [None, 3],
                    },
                    "junk",
                ],
                "uploads": ["junk", {"name": None}],
                "targets": 5,
            },
            id="malformed",
        ),
    ],
)
def test_the_page_is_valid_html_for_any_document(document: dict[str, Any]) -> None:
    page = render_fleet_html(build_fleet(document, RULES, NOW))
    tree = parse_strictly(page)
    assert tree.find(".//script") is None and tree.find(".//img") is None
    assert not [e for e in tree.iter() if any(a.startswith("on") for a in e.attrib)]
    csp = tree.find(".//meta[@http-equiv='Content-Security-Policy']")
    assert csp is not None and "default-src 'none'" in csp.get("content")
    assert not [e for e in tree.iter() if {"src", "href", "xlink:href"} & set(e.attrib)]
    assert len(page.encode()) < 2_000_000


def test_hostile_values_are_text() -> None:
    page = render_fleet_html(build_fleet(hostile_fleet(), RULES, NOW))
    assert "<script>" not in page and "<img" not in page
    tree = parse_strictly(page)
    text = "".join(tree.itertext())
    assert HOSTILE in text  # shown, as text, where it belongs (subjects, blob names, codes)


# --- where it appears -------------------------------------------------------------------


def hostile_tenant_ca() -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.LOCALITY_NAME, HOSTILE),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Microsoft Corporation"),
        x509.NameAttribute(NameOID.COMMON_NAME, f"Microsoft Azure Sphere {T_PENDING}"),
    ])  # fmt: skip
    start = datetime(2020, 7, 20, tzinfo=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(7)
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=730))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def upload(rt: handlers.Runtime, files: dict[str, bytes]) -> None:
    container = rt.blobs.get_container_client(rt.settings.cert_container)
    for name, data in files.items():
        container.upload_blob(name, data, overwrite=True)
    # 1 when an upload was unreadable (the README's exit codes), never 2.
    assert ca_watch(["process", "--once", "-q", "--now", "2020-07-30T09:00:00Z"]) in (0, 1)
    assert not app_runtime_pending(rt)


def app_runtime_pending(rt: handlers.Runtime) -> list[tuple[str, str]]:
    from shared.local.runner import pending_blobs

    return pending_blobs(rt)


def test_the_text_report_and_the_page_name_the_same_states(
    app_runtime: handlers.Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a renewal: the text report said "open: renewal pending in 2 target(s)" where
    the page said "resolved"; both now take the state from one place."""
    files = samples.incident_sample_files()
    upload(app_runtime, {**files, **dict([samples.renewed_tenant_file()])})
    capsys.readouterr()
    ca_watch(["report", "--now", "2020-09-01T09:00:00Z"])
    text_rows: dict[str, str] = {}  # tenant -> its CAs' rows
    for line in capsys.readouterr().out.splitlines():
        if "tenant-ca" in line:
            text_rows[line.split()[2]] = text_rows.get(line.split()[2], "") + line + "\n"
    page = tmp_path / "fleet.html"
    ca_watch(["report", "--html", str(page), "--now", "2020-09-01T09:00:00Z"])
    row = r'<td class="st st-([a-z-]+)">[^<]*</td><th scope="row" class="mono">([^<]*)<'
    html_states = re.findall(row, page.read_text())
    assert len(html_states) == 3
    for state_id, tenant_id in html_states:  # the tenant's state is one of its CAs' states
        assert f" {state(state_id).label}" in text_rows[tenant_id], text_rows[tenant_id]
    assert "open:" not in " ".join(text_rows.values())


def test_report_html_over_hostile_uploads(
    app_runtime: handlers.Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    upload(app_runtime, {
        f"tenant/{HOSTILE}.cer": hostile_tenant_ca(),
        f"junk/{HOSTILE}.txt": b"not a certificate",
    })  # fmt: skip
    out = tmp_path / "fleet.html"
    assert ca_watch(["report", "--html", str(out), "--now", "2020-09-01T09:00:00Z"]) == 1
    assert f"fleet report written to {out}" in capsys.readouterr().out
    page = out.read_text(encoding="utf-8")
    tree = parse_strictly(page)
    assert tree.find(".//script") is None and tree.find(".//img") is None
    text = "".join(tree.itertext())
    # The subject as text (RFC 4514 escapes < > and " with a backslash).
    assert "L=\\<script\\>document.title='pwned'\\</script\\>\\<img src=x" in text
    assert f"junk/{HOSTILE}.txt" in text and f"tenant/{HOSTILE}.cer" in text  # blob names
    assert T_PENDING in text and "affected" in text


def test_report_html_with_no_tenants_and_only_unreadable_uploads(
    app_runtime: handlers.Runtime, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.html"
    assert ca_watch(["report", "--html", str(empty)]) == 0
    assert "No tenant CA is on record yet" in empty.read_text(encoding="utf-8")
    parse_strictly(empty.read_text(encoding="utf-8"))

    upload(app_runtime, {"a.txt": b"hello", "b.pem": b"-----BEGIN CERTIFICATE-----\nAAA"})
    unreadable = tmp_path / "unreadable.html"
    assert ca_watch(["report", "--html", str(unreadable)]) == 1
    page = unreadable.read_text(encoding="utf-8")
    parse_strictly(page)
    assert "Unreadable and refused uploads (2)" in page
    assert "2 unreadable or refused uploads of 2." in summary_of(page)


def test_report_html_over_a_thousand_tenants_from_the_tables(
    app_runtime: handlers.Runtime, tmp_path: Path
) -> None:
    from bench_report import seed

    seed(app_runtime.store, synthetic_fleet(1000))
    out = tmp_path / "fleet.html"
    ca_watch(["report", "--html", str(out), "--now", "2020-09-01T09:00:00Z"])
    page = out.read_text(encoding="utf-8")
    parse_strictly(page)
    assert len(page.encode()) < 2_000_000
    assert page.count('<tr id="t-') == 980  # 1,000 tenant CAs, 20 of them renewals
    assert "Showing the 50 most urgent of 980 tenants" in page
    assert "outbox: overdue of Renewed tenant CA activates on 2020-08-26" in page  # the ledger


def test_report_html_refuses_a_path_it_cannot_write(
    app_runtime: handlers.Runtime, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ca_watch(["report", "--html", str(tmp_path / "missing" / "x.html")]) == 2
    assert ca_watch(["report", "--html", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "is a directory" in err and "Traceback" not in err


def _timer_at(moment: datetime) -> None:
    handlers.use_clock(lambda: moment)
    try:
        registered_function("send_alerts")(SimpleNamespace(past_due=False))
    finally:
        handlers.use_clock(None)


def test_the_timer_writes_the_report_when_something_changed_and_daily(
    app_runtime: handlers.Runtime,
) -> None:
    upload(app_runtime, samples.incident_sample_files())
    container = app_runtime.blobs.get_container_client(app_runtime.settings.report_container)

    def written() -> dict[str, str]:
        return {b.name: b.etag for b in container.list_blobs()}

    _timer_at(datetime(2020, 8, 4, 9, tzinfo=UTC))  # sends: writes
    first = written()
    assert set(first) == {"fleet.html", "fleet.json"}
    report = json.loads(container.download_blob("fleet.json").readall())
    assert report["schema"] == "ca-watch/report/v1"
    page = container.download_blob("fleet.html").readall().decode()
    assert samples.TENANT_OID in page and "today 2020-08-04" in page
    props = container.get_blob_client("fleet.html").get_blob_properties()
    assert props.content_settings.content_type == "text/html; charset=utf-8"

    _timer_at(datetime(2020, 8, 4, 10, tzinfo=UTC))  # nothing new, written an hour ago
    assert written() == first
    # An upload that closes a tenant (its renewal) sends nothing, yet the next pass writes.
    # The blob's Last-Modified has whole seconds: rows of the report's own second count as
    # seen, so the upload comes later than that here.
    time.sleep(2.1)
    upload(app_runtime, dict([samples.renewed_tenant_file()]))
    _timer_at(datetime(2020, 8, 4, 11, tzinfo=UTC))
    assert written()["fleet.json"] != first["fleet.json"]
    first = written()
    _timer_at(datetime(2020, 8, 4, 12, tzinfo=UTC))  # and then quiet again
    assert written() == first
    _timer_at(datetime(2020, 8, 5, 11, tzinfo=UTC))  # a day later: refreshed
    assert written()["fleet.json"] != first["fleet.json"]
    assert report_writer.last_written(app_runtime) == datetime(2020, 8, 5, 11, tzinfo=UTC)


def test_a_failing_report_never_costs_the_alert_pass(
    app_runtime: handlers.Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    upload(app_runtime, samples.incident_sample_files())

    def broken(*_: Any) -> None:
        raise RuntimeError("storage said no")

    monkeypatch.setattr(report_writer, "write_fleet_report", broken)
    _timer_at(datetime(2020, 8, 4, 9, tzinfo=UTC))
    assert handlers.last_alert_result is not None
    assert handlers.last_alert_result["messages"]


def test_incident_keeps_its_room_beside_certificates_years_apart() -> None:
    """The demo's fleet: the kit's real 2019 and 2023 tenant CAs beside the incident."""
    document = incident_fleet()
    document["certificates"] += [
        certificate(
            "9d7e79eb-e021-43ce-9f2b-fa944b447494",
            "09",
            "2019-04-27T07:42:26Z",
            "2021-04-27T10:42:26Z",
        ),
        certificate(
            "be51057e-e6eb-487d-82c8-a7043ccab9e1",
            "0b",
            "2023-03-01T00:00:00Z",
            "2025-03-01T00:00:00Z",
        ),
    ]
    page = render_fleet_html(fleet_at(document=document))
    assert _x_of(page, "2020-08-18 Register") - _x_of(page, "2020-08-05 Renewed") >= 20


def test_a_target_is_named_by_its_listing_not_by_the_certificate_name_in_it() -> None:
    document = incident_fleet()
    document.pop("targets")  # only the per-certificate registrations
    waiting = next(t for t in fleet_at(document=document).tenants if t.tenant_id == T_WAITING)
    assert sorted(r.display_name for r in waiting.targets) == ["dps", "hub-west"]


def test_display_text_is_one_line_and_bounded() -> None:
    from shared.report.fleet_model import MAX_TEXT, text

    assert text("CN=a\x00b\r\nc\u2028d\u202ee") == "CN=a b  c d e"
    assert text(None) == "" and text(7) == "7"
    long = text("x" * 10_000)
    assert len(long) == MAX_TEXT and long.endswith("…")
