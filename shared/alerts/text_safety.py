"""Text that came from a certificate or a listing, made safe for a message: one line,
no control or invisible format characters, links defanged, Markdown escaped for the card,
`code` spans found for the renderers. Pure; shared by every message and the fleet page."""

from __future__ import annotations

import re
import unicodedata

# A certificate subject can be as long as the upload limit allows; one huge value must
# not push every other item out of a 28 KB card.
MAX_FIELD_CHARS = 400

# Markdown metacharacters of the subset Adaptive Card TextBlocks and Facts render.
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]()#+-.!|<>~")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def clean(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    """One line of text: control characters (CR, LF, tabs, ...) become a space; invisible
    format characters (Unicode category Cf: the bidirectional overrides and isolates
    U+202A-U+202E and U+2066-U+2069, zero-width characters, ...) are removed, so that a
    value reads as it is stored; long values are cut with an ellipsis."""
    text = str(value)
    if not text.isascii():  # the common case costs nothing
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


# A URL (scheme and authority), a www. host, a mail address: what mail clients and Teams
# turn into links. Other dotted words ("document.title") are left as they are.
_URL = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,30})://([^\s/?#\\]*)")
_WWW = re.compile(r"(?i)\bwww\.[^\s/?#\\]*")
_MAIL = re.compile(r"(?i)\b([\w.+-]+)@([a-z0-9-]+(?:\.[a-z0-9-]+)+)")


def _defang_url(match: re.Match[str]) -> str:
    scheme, authority = match.group(1), match.group(2).replace(".", "[.]")
    if scheme.lower() in ("http", "https"):
        return f"{scheme[0]}xx{scheme[3:]}://{authority}"  # the usual hxxp:// / hxxps://
    return f"{scheme}[://]{authority}"


def defang(value: str) -> str:
    """Make URLs and mail addresses in a value inert: ``hxxps://example[.]com/x``,
    ``www[.]example[.]com``, ``ops[@]example[.]com``. A subject is whatever the
    certificate's maker wrote; mail clients and Teams would link it otherwise."""
    value = _URL.sub(_defang_url, value)
    value = _WWW.sub(lambda m: m.group(0).replace(".", "[.]"), value)
    return _MAIL.sub(lambda m: f"{m.group(1)}[@]{m.group(2).replace('.', '[.]')}", value)


def cert_text(value: object, limit: int = MAX_FIELD_CHARS) -> str:
    """A value taken from a certificate (subject, tenant id): cleaned, then defanged."""
    return clean(defang(clean(value, limit * 2)), limit)


def escape_markdown(value: str) -> str:
    """Escape Markdown metacharacters and break Adaptive Card template syntax ``${...}``."""
    # The zero-width space keeps "${" from ever reappearing, even if a client drops
    # the backslash in front of "{".
    value = value.replace("${", "$\u200b{")
    return "".join("\\" + ch if ch in _MARKDOWN_SPECIALS else ch for ch in value)


def code_runs(value: str) -> list[tuple[bool, str]]:
    """A text split at its `code` spans: (is_code, text) pairs, backticks removed. An odd
    number of backticks is not code markup: the text stays one plain run."""
    parts = value.split("`")
    if len(parts) % 2 == 0:
        return [(False, value)]
    return [(i % 2 == 1, part) for i, part in enumerate(parts) if part]
