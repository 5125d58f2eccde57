"""Idempotency keys: a retried transition replays its first result instead of acting twice."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, TypeVar

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction

from workflows import errors
from workflows.models import IdempotencyKey, WorkflowModel
from workflows.services.common import TransitionResult

if TYPE_CHECKING:
    from accounts.models import User

W = TypeVar("W", bound=WorkflowModel)
KEY_MAX = 200


def idempotency_fingerprint(**parts: Any) -> str:
    """A digest of what a call asked for: the same key with another request is refused."""
    canonical = json.dumps(parts, sort_keys=True, cls=DjangoJSONEncoder, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def idempotency_claim(
    *, model: type[W], actor: User | None, key: str, fingerprint: str
) -> TransitionResult[W] | None:
    """Record `key` for `actor`, or return the result it already stands for.

    A concurrent call with the same key waits on the unique index until the first one
    commits, then replays its result (or proceeds, if the first rolled back).
    """
    if actor is None:
        raise errors.InvalidInput(
            "Idempotency keys belong to a person.", field_errors={"idempotency_key": ["Not allowed here."]}
        )
    if len(key) > KEY_MAX:
        raise errors.InvalidInput(
            "Idempotency key too long.", field_errors={"idempotency_key": [f"At most {KEY_MAX} characters."]}
        )
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(actor=actor, key=key, fingerprint=fingerprint)
        return None
    except IntegrityError:
        existing = IdempotencyKey.objects.select_related("audit_entry").get(actor=actor, key=key)
    if existing.fingerprint != fingerprint or existing.audit_entry is None:
        raise errors.DuplicateKey(f"The idempotency key '{key}' was already used for a different action.")
    entry = existing.audit_entry
    instance = model._default_manager.get(pk=entry.object_id)
    return TransitionResult(
        instance=instance, entry=entry, source=entry.source, target=entry.target, replayed=True
    )
