"""The API's response bodies mirror the store's records, field for field and type for type.

They are written out on purpose (reminders/api/schemas.py says why): these tests are what keeps
each pair together, so a record that gains or changes a field fails here until the API decides.
"""

from __future__ import annotations

import dataclasses
from typing import get_type_hints

import pytest
from pydantic import BaseModel

from reminders.api.schemas import FlagOut, InboundOut, MessageOut, OutcomeOut, PatientOut
from reminders.store.message_records import MessageView
from reminders.store.records import PatientSummary
from reminders.store.reply_records import FlagView, InboundView, OutcomeView

# record -> (API body, the record's fields the API leaves out, and why)
MIRRORS: dict[type, tuple[type[BaseModel], dict[str, str]]] = {
    PatientSummary: (PatientOut, {}),
    MessageView: (MessageOut, {"updated_at": "internal: the list cursor, sent as X-Next-Cursor"}),
    InboundView: (InboundOut, {}),
    OutcomeView: (OutcomeOut, {}),
    FlagView: (FlagOut, {}),
}


def differences(record: type, body: type[BaseModel], left_out: dict[str, str]) -> set[str]:
    """Fields the record and the body do not share with the same type (left-out ones aside)."""
    hints = get_type_hints(record)
    expected = {
        field.name: hints[field.name]
        for field in dataclasses.fields(record)
        if field.name not in left_out
    }
    actual = {name: field.annotation for name, field in body.model_fields.items()}
    return {
        name for name in expected.keys() | actual.keys() if expected.get(name) != actual.get(name)
    }


@pytest.mark.parametrize("record", list(MIRRORS), ids=lambda record: record.__name__)
def test_each_api_body_has_its_records_fields_with_the_same_types(record: type) -> None:
    body, left_out = MIRRORS[record]

    assert differences(record, body, left_out) == set()


def test_a_record_that_gains_a_field_or_changes_a_type_is_caught() -> None:
    @dataclasses.dataclass(frozen=True)
    class GrownFlagView(FlagView):
        escalated: bool = False

    @dataclasses.dataclass(frozen=True)
    class LooseFlagView(FlagView):
        kind: str

    assert differences(GrownFlagView, FlagOut, {}) == {"escalated"}
    assert differences(LooseFlagView, FlagOut, {}) == {"kind"}
