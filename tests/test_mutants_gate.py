"""Kill test for the alert gate (shared/storage/gate.py) on a real Azurite: a write the
service refuses for a reason other than a lost race reaches the caller at once (the host
retries the upload or the pass), instead of being retried as a race and the gate quietly
cleared. The refusal is a fake (a table client whose writes answer 500), for what Azurite
cannot be made to do on demand; reads and the fallback's delete go to Azurite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from shared.alerts.rules import load_rules
from shared.local.azurite import Azurite
from shared.storage.connections import table_service
from shared.storage.gate import NextLookGate
from shared.storage.store import TableStore

NOW = datetime(2020, 8, 4, 9, tzinfo=UTC)
_WRITES = frozenset({"create_entity", "update_entity", "upsert_entity"})


class _WritesFail:
    """The real table, but every write answers 500 Internal Server Error."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def __getattr__(self, name: str) -> Any:
        if name not in _WRITES:
            return getattr(self._table, name)

        def fail(*_args: Any, **_kwargs: Any) -> None:
            error = HttpResponseError("Internal Server Error")
            error.status_code = 500
            raise error

        return fail


class _Tables:
    def __init__(self, real: Any) -> None:
        self._real = real

    def __call__(self, name: str) -> Any:
        table = self._real(name)
        return _WritesFail(table) if name == "alertindex" else table

    def __getattr__(self, name: str) -> Any:  # delete_quietly and the rest: the real ones
        return getattr(self._real, name)


@pytest.mark.parametrize("held", [False, True], ids=["no-gate-yet", "a-later-gate"])
def test_a_refused_write_reaches_the_caller_and_leaves_the_gate(
    azurite: Azurite, held: bool
) -> None:
    service = table_service({"CertStorage": azurite.connection_string})
    store = TableStore(service, load_rules(), prefix=f"gate{uuid.uuid4().hex[:8]}")
    store.ensure_tables()
    try:
        if held:
            store.gate.lower_next_look(NOW.replace(year=2021))
        before = store.gate.next_look()
        gate = NextLookGate(_Tables(store.tables))  # type: ignore[arg-type]
        with pytest.raises(HttpResponseError) as raised:
            gate.lower_next_look(NOW)
        assert raised.value.status_code == 500
        assert store.gate.next_look() == before  # neither lowered nor cleared
    finally:
        store.delete_all()
