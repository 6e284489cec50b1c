"""The alert message, pinned where a one-line change would go unnoticed (issue 16): golden
messages with hostile and over-long fields in every form, the helpers' exact results at
their limits, the Teams payload's exact bytes, the card cut at its exact byte limit, and
the possible-repeat note. How to regenerate the golden file: tests/golden_messages.py.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import pytest
from golden_messages import EXPECTED, NOW, _item, cut_items, messages

from shared.alerts.message import (
    POSSIBLE_REPEAT,
    REPEAT_NOTE_BYTES,
    mark_possible_repeat,
    render_message,
    render_subject,
)
from shared.alerts.model import RenderedMessage
from shared.alerts.operator_message import render_operator_message
from shared.alerts.teams_card import encode_teams_payload
from shared.alerts.text_safety import clean, code_runs, defang

NOTE_BLOCK = {
    "type": "TextBlock",
    "text": POSSIBLE_REPEAT[:-1] + "\\.",  # Markdown-escaped
    "wrap": True,
    "color": "Warning",
    "isSubtle": True,
}
NOTE_HTML = f'<p style="color:#8a6d00">{POSSIBLE_REPEAT}</p>'


def test_golden_messages_match_the_committed_json_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Naive times are UTC: a host in another zone must print the same times.
    monkeypatch.setenv("TZ", "America/Los_Angeles")
    time.tzset()
    try:
        actual = json.loads(json.dumps(messages(), ensure_ascii=False))
    finally:
        monkeypatch.undo()
        time.tzset()
    expected = json.loads(EXPECTED.read_text())
    assert actual.keys() == expected.keys()
    for name, want in expected.items():
        for form, value in want.items():
            assert actual[name][form] == value, f"{name}: {form}"


def test_the_golden_messages_stay_broad() -> None:
    """What the golden file must keep meeting if it is ever regenerated."""
    golden = json.loads(EXPECTED.read_text())
    text = golden["hostile"]["text"]
    # Action deadlines with their hours or days left, never rounded up; past a week, a date.
    for label in ("overdue by 45 hours", "overdue by 21 hours", "27 hours left", "2 days left",
                  "13 days left", "overdue since 2020-07-26"):  # fmt: skip
        assert f", {label}\n" in text
    # Milestones as information, in the right tense.
    assert "- Renewed tenant CA available from 2020-08-05 (information)\n" in text
    assert "- Renewed tenant CA available since 2020-08-04 (information)\n" in text
    assert "\n        az iot hub certificate create " in text  # a command, indented
    for name, message in golden.items():
        blocks = message["text"].split("\nTenant ")[1:]
        headers = [block.splitlines()[0] for block in blocks]
        assert len(headers) == len(set(headers)), name  # no tenant block repeats
        # Each tenant block ends with its closing step (the "cut" run then says what folded).
        for block in blocks:
            lines = block.rstrip().splitlines()
            assert lines[-1].startswith("Closing step: ") or lines[-1].startswith("and "), name
            assert any(line.startswith("Closing step: ") for line in lines), name
    assert golden["cut"]["omitted_count"] > 0 and golden["cut"]["item_count"] > 0
    assert golden["cut, possible repeat"]["text"].startswith(POSSIBLE_REPEAT)


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        (" a\r\n\tb\x00c\u2028d ", 400, "a b c d"),  # control runs become one space
        ("\u202etxt.exe\u2066\u200b", 400, "txt.exe"),  # invisible format characters go
        ("x" * 400, 400, "x" * 400),  # exactly at the limit: kept whole
        ("x" * 401, 400, "x" * 399 + "…"),  # one over: cut, still 400 characters
        ("é" * 81, 80, "é" * 79 + "…"),
    ],
)
def test_clean_gives_one_line_within_the_limit(value: str, limit: int, expected: str) -> None:
    assert clean(value, limit) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("see http://evil.example.com/x", "see hxxp://evil[.]example[.]com/x"),
        ("HTTP://EVIL.EXAMPLE", "HxxP://EVIL[.]EXAMPLE"),
        ("https://a.example:8443/p.q", "hxxps://a[.]example:8443/p.q"),
        ("ftp://a.b/c", "ftp[://]a[.]b/c"),
        ("go to www.evil.example/x", "go to www[.]evil[.]example/x"),
        ("E=ops.team@evil.example.com", "E=ops.team[@]evil[.]example[.]com"),
        ("document.title", "document.title"),
    ],
)
def test_defang_makes_links_and_addresses_inert(value: str, expected: str) -> None:
    assert defang(value) == expected


def test_the_teams_payload_is_compact_utf8_json() -> None:
    """The bytes posted, and the ones the 28 KB limit counts: no spaces, no \\u escapes."""
    card = {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "Zürich ✓"}]}
    assert (
        encode_teams_payload(card)
        == (
            '{"type":"message","attachments":[{"contentType":'
            '"application/vnd.microsoft.card.adaptive","contentUrl":null,"content":'
            '{"type":"AdaptiveCard","body":[{"type":"TextBlock","text":"Zürich ✓"}]}}]}'
        ).encode()
    )


def _payload_size(card: dict[str, Any]) -> int:
    return len(encode_teams_payload(card))


def test_the_card_holds_every_item_that_fits_under_the_byte_limit_and_no_more() -> None:
    """At each limit the card keeps as many leading items as fit below it: a payload of
    limit - 1 bytes is sent whole, one of exactly `limit` bytes is cut."""
    items = cut_items()  # three tenants; 12 items: the tail's count is one or two digits
    whole = render_message(items, NOW)
    limit = _payload_size(whole.adaptive_card)
    assert render_message(items, NOW, max_card_bytes=limit + 1).item_count == len(items)
    count = len(items)
    while count:
        cut = render_message(items, NOW, max_card_bytes=limit)
        size = _payload_size(cut.adaptive_card)
        assert size < limit and cut.item_count < count, (limit, cut.item_count)
        assert cut.item_count + cut.omitted_count == len(items)
        # The next item did not fit under `limit`, so it cannot fit under `size + 1`.
        assert render_message(items, NOW, max_card_bytes=size + 1).item_count == cut.item_count
        count, limit = cut.item_count, size


def test_a_possible_repeat_says_so_first_in_every_form() -> None:
    message = render_message(cut_items()[:3], NOW)
    card_before = copy.deepcopy(message.adaptive_card)
    marked = mark_possible_repeat(message)

    assert marked.subject == f"[possible repeat] {message.subject}"
    assert marked.text == f"{POSSIBLE_REPEAT}\n\n{message.text}"
    head, heading, rest = message.html.partition("<h2>")
    assert marked.html == f"{head}{NOTE_HTML}\n{heading}{rest}"  # inside <body>, on top
    assert marked.adaptive_card == {
        **message.adaptive_card,
        "body": [NOTE_BLOCK, *card_before["body"]],
    }
    assert (marked.item_count, marked.omitted_count) == (message.item_count, 0)
    assert message.adaptive_card == card_before  # the unmarked message is unchanged
    # The renderers leave REPEAT_NOTE_BYTES free in the Teams payload for the note.
    grown = _payload_size(marked.adaptive_card) - _payload_size(message.adaptive_card)
    assert 0 < grown < REPEAT_NOTE_BYTES


def test_a_marked_subject_stays_within_250_characters() -> None:
    message = render_operator_message("t" * 300, ["A line."], NOW)
    marked = mark_possible_repeat(message)
    assert len(message.subject) == 250
    assert marked.subject == f"[possible repeat] {message.subject}"[:249] + "…"


def test_a_message_without_a_heading_or_a_card_body_still_gets_the_note() -> None:
    bare = RenderedMessage("Subject", "Text.\n", "<p>Text.</p>\n", {}, item_count=1)
    marked = mark_possible_repeat(bare)
    assert marked.html == f"{NOTE_HTML}<p>Text.</p>\n"
    assert marked.adaptive_card == {"body": [NOTE_BLOCK]}
    assert marked.text == f"{POSSIBLE_REPEAT}\n\nText.\n"


GUID_A = "0a0a0a0a-1111-4222-8333-944445555666"


def test_the_subject_cuts_what_to_do_at_80_characters() -> None:
    """A rule's text may be long; the subject keeps 79 characters of it and an ellipsis, so
    the date and the time left still show in a mail client's subject line."""
    todo = "Register " + "the renewed tenant CA " * 10
    subject = render_subject([_item(GUID_A, 1, "7d", 7, todo=todo)], NOW)
    assert f"next action: {clean(todo)[:79]}… by " in subject


def test_a_milestone_subject_names_it_cut_at_80_characters() -> None:
    title = "Renewed tenant CA available " + "x" * 100
    subject = render_subject([_item(GUID_A, 1, "7d", 7, action=False, deadline_title=title)], NOW)
    assert f"for information: {title[:79]}… from " in subject
    short = render_subject([_item(GUID_A, 1, "7d", 7, action=False)], NOW)
    assert "for information: Renewed tenant CA activates from " in short


def test_the_subject_counts_time_from_utc_now_whatever_the_local_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without ``now`` the subject counts from the current UTC time: a host in another zone
    (naive local time read as UTC) would say 10 hours where 5 are left."""
    from datetime import UTC, datetime, timedelta

    due = datetime.now(UTC) + timedelta(hours=5, minutes=30)
    item = _item(GUID_A, 1, "0d", 0, due=due)
    monkeypatch.setenv("TZ", "America/New_York")  # UTC-5 or UTC-4: never UTC
    time.tzset()
    try:
        subject = render_subject([item])
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "(5 hours left)" in subject


def _monospace(card: dict[str, Any]) -> list[str]:
    return [
        block["text"]
        for container in card["body"]
        if container.get("type") == "Container"
        for block in container["items"]
        if block.get("fontType") == "Monospace"
    ]


def test_a_code_span_of_four_words_or_more_follows_as_a_command_block_in_the_card() -> None:
    """A rule's text may quote a command: from four words on it is a command to copy (its
    own monospace block); a shorter span (`azsphere ca list`) stays inline."""
    four = _item(GUID_A, 1, "7d", 7, message="Then run `azsphere ca list now` or `ca list x`.")
    assert "azsphere ca list now" in _monospace(render_message([four], NOW).adaptive_card)
    three = _item(GUID_A, 1, "7d", 7, message="Then run `ca list now` today.")
    assert "ca list now" not in _monospace(render_message([three], NOW).adaptive_card)


def test_an_odd_number_of_backticks_is_not_code_markup() -> None:
    """A subject or rule text with a stray backtick stays one plain run, backtick kept."""
    assert code_runs("run `azsphere ca list") == [(False, "run `azsphere ca list")]
    assert code_runs("a `b` c") == [(False, "a "), (True, "b"), (False, " c")]
