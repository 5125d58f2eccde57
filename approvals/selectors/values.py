"""Values as people read them on the pages: a payload's or a task's fields, in order."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from approvals.schemas import field_label, schema_fields


def value_text(value: Any) -> str:
    """A payload value as a person reads it."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


@dataclass(frozen=True)
class PayloadItem:
    name: str
    label: str
    value: str


def payload_items(schema: Mapping[str, Any], payload: Mapping[str, Any]) -> list[PayloadItem]:
    """The payload's fields in the schema's order (fields it does not name after them)."""
    names = [name for name, _, _ in schema_fields(schema)]
    names += sorted(k for k in payload if k not in names)
    return [
        PayloadItem(name=name, label=field_label(schema, name), value=value_text(payload.get(name)))
        for name in names
        if name in payload
    ]
