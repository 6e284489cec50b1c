"""The one error of reading a registration listing: a kebab-case code and a fixed text
(never a value from the document). A leaf, so every listing module can raise it. Pure."""

from __future__ import annotations


class ListingError(ValueError):
    """A document that looks like a listing but cannot be read as one."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
