"""List a container for the local runner so that one blob the service cannot list does
not hide the others.

Azurite answers 500 to every listing whose page holds a name with a character XML cannot
carry (a control character), so one such blob would stop every pass. (Azure encodes such
names in its listings; there this fallback does not come into play.) When a level of the
hierarchy cannot be listed, it is listed again one printable ASCII character at a time
(``prefix + c``), going deeper under any part that still fails: everything else at that
level is found, and each level that could not be listed whole is said in one line (the
names going on with a control or non-ASCII character there are skipped). Hand-written
because no SDK call lists around a name the service refuses."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

_PRINTABLE = [chr(code) for code in range(0x20, 0x7F)]
MAX_PROBES = 2_000  # listings spent working around unlistable names, per pass


class _Lister:
    def __init__(self, container: Any, warn: Callable[[str], None]) -> None:
        self.container = container
        self.warn = warn
        self.probes = 0

    def level(self, prefix: str) -> Iterator[tuple[str, str]]:
        """Every (name, etag) under ``prefix``, one "/" level at a time."""
        from azure.core.exceptions import HttpResponseError
        from azure.storage.blob import BlobPrefix

        items: list[Any] | None = None
        for _attempt in range(2):  # a transient 500 passes on a second try; a refusal stays
            try:
                items = list(
                    self.container.walk_blobs(
                        name_starts_with=prefix or None, delimiter="/", retry_total=0
                    )
                )
                break
            except HttpResponseError as exc:
                if (exc.status_code or 0) < 500:
                    self.warn(f"cannot list blobs under {prefix!r}: {exc.reason}; skipped")
                    return
        if items is None:
            yield from self.split(prefix)
            return
        for item in items:
            if isinstance(item, BlobPrefix):
                yield from self.level(item.name)
            else:
                yield item.name, item.etag

    def split(self, prefix: str) -> Iterator[tuple[str, str]]:
        """The level under ``prefix`` failed: list it by its next character."""
        from azure.core.exceptions import ResourceNotFoundError

        if self.probes + len(_PRINTABLE) > MAX_PROBES:
            self.warn(
                f"cannot list blobs under {prefix!r} (the service refuses a name there) "
                "and the search for it is over its bound; skipped"
            )
            return
        self.probes += len(_PRINTABLE)
        found = 0
        if prefix:  # a blob named exactly ``prefix`` is under no longer prefix
            with contextlib.suppress(ResourceNotFoundError):
                props = self.container.get_blob_client(prefix).get_blob_properties()
                found += 1
                yield prefix, props.etag
        for char in _PRINTABLE:
            if char == "/":
                continue  # prefix + "/" is the next level down: listed by its own prefix
            for entry in self.level(prefix + char):
                found += 1
                yield entry
        yield from self.level(prefix + "/")
        self.warn(
            f"cannot list blobs under {prefix!r}: the service answers 500 (a name there holds "
            "a character it cannot list); listed them by their next character instead: "
            f"{found} found, names going on with a control or non-ASCII character skipped"
        )


def list_container(container: Any, warn: Callable[[str], None]) -> list[tuple[str, str]]:
    """(name, etag) of every blob the service can list."""
    found = dict(_Lister(container, warn).level(""))
    return sorted(found.items())
