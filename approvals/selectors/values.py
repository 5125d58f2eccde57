"""Values as people read them on the pages: a payload's or a task's fields, in order,
numbers with thousands separators, amounts with their currency, dates as dates."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from approvals.schemas import field_label, schema_fields

# Custom schema keywords (JSON Schema ignores unknown ones): the currency of an amount,
# fixed (`x-currency: EUR`) or read from another field of the same payload
# (`x-currency-field: currency`). Such an amount is shown with two decimals.
CURRENCY = "x-currency"
CURRENCY_FIELD = "x-currency-field"


def value_text(value: Any) -> str:
    """A payload value as a person reads it (without a schema to say more)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        # Exactly as stored: the audit pages show this; the request pages format by schema.
        return str(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def number_text(value: float | int | Decimal, *, places: int | None = None) -> str:
    """1234567.5 → '1,234,567.5'; with `places`, rounded to that many decimals. Written
    out in full, never in exponent form (1e+20 is 100,000,000,000,000,000,000)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    exact = Decimal(str(value))
    if places is not None:
        return f"{exact.quantize(Decimal(1).scaleb(-places)):,}"
    text = f"{exact:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _date_text(value: str, kind: str) -> str:
    try:
        if kind == "date":
            return f"{date.fromisoformat(value):%-d %b %Y}"
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value  # not a date after all (an old payload): shown as it was sent
    if timezone.is_aware(moment):
        moment = timezone.localtime(moment)
    return f"{moment:%-d %b %Y %H:%M}"


def field_value_text(sub: Mapping[str, Any], value: Any, payload: Mapping[str, Any] | None = None) -> str:
    """A value as its field's schema `sub` says to show it: an amount with its currency,
    a number with thousands separators, a date (format date / date-time) as a date."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        currency = sub.get(CURRENCY)
        if not currency and isinstance(sub.get(CURRENCY_FIELD), str) and payload is not None:
            currency = payload.get(str(sub[CURRENCY_FIELD]))
        if isinstance(currency, str) and currency:
            return f"{currency} {number_text(value, places=2)}"
        return number_text(value)
    if isinstance(value, str) and value and sub.get("format") in {"date", "date-time"}:
        return _date_text(value, str(sub["format"]))
    return value_text(value)


def _sub(properties: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    sub = properties.get(name)
    return sub if isinstance(sub, Mapping) else {}


@dataclass(frozen=True)
class PayloadItem:
    name: str
    label: str
    value: str


def payload_items(schema: Mapping[str, Any], payload: Mapping[str, Any]) -> list[PayloadItem]:
    """The payload's fields in the schema's order (fields it does not name after them)."""
    names = [name for name, _, _ in schema_fields(schema)]
    names += sorted(k for k in payload if k not in names)
    properties = schema.get("properties") or {}
    return [
        PayloadItem(
            name=name,
            label=field_label(schema, name),
            value=field_value_text(_sub(properties, name), payload.get(name), payload),
        )
        for name in names
        if name in payload
    ]
