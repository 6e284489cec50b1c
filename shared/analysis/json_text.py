"""The JSON bytes every output writes: the scan/v1 result blob of each upload, and the
CLI's ``--json`` documents. One serialiser, so they stay byte-for-byte alike. Pure."""

from __future__ import annotations


def json_bytes(document: object, *, may_hold_floats: bool = True) -> bytes:
    """``json.dumps(document, indent=2)`` + newline, as bytes, made in one call: by
    orjson when it is installed (about 20x faster), else by the stdlib.

    orjson's OPT_INDENT_2 layout equals ``json.dumps(indent=2)`` for ASCII text, ints,
    bools and null. It differs in three places, so the output is kept byte-identical:
    it writes non-ASCII characters as UTF-8 and U+007F (DEL) raw, where ``json`` escapes
    both as ``\\uXXXX`` (these are re-escaped below, only when present); and it writes
    floats as ``1.5e-7`` where ``json`` writes ``1.5e-07``, and refuses lone surrogates
    and ints beyond 64 bits: documents with any of those go to the stdlib (none of the
    scan/v1 fields is a float, so a scan passes ``may_hold_floats=False`` and skips the
    check)."""
    try:
        import orjson
    except ImportError:
        orjson = None
    if orjson is not None and not (may_hold_floats and _has_float(document)):
        try:
            data = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        except TypeError:  # orjson.JSONEncodeError: a lone surrogate, a huge int
            pass
        else:
            if not data.isascii() or b"\x7f" in data:
                data = _escape_as_json_does(data)
            return data + b"\n"
    import json

    return (json.dumps(document, indent=2) + "\n").encode("ascii")


def _has_float(document: object) -> bool:
    # Only a scan/v1 document is large; its shape has no floats, so this walk is cheap
    # insurance for the other documents (report, alerts) sent through here.
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, float):
            return True
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def _escape_as_json_does(data: bytes) -> bytes:
    """Non-ASCII characters and DEL as ``json`` writes them (``\\u00e9``, astral ones
    as a surrogate pair). They can only occur inside strings, so a global pass is safe."""
    import re

    def escape(match: re.Match[str]) -> str:
        code = ord(match.group())
        if code < 0x10000:
            return f"\\u{code:04x}"
        code -= 0x10000
        return f"\\u{0xD800 | (code >> 10):04x}\\u{0xDC00 | (code & 0x3FF):04x}"

    return re.sub("[^\x00-\x7e]", escape, data.decode("utf-8")).encode("ascii")
