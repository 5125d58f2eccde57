"""`Idempotency-Key` on every POST: a retry with the same key and body gets the first
answer and changes nothing; another body under the same key is a 422; a retry while the
first is still running is a 409. Keys are the caller's own and kept 24 hours.

The key's row is committed before the work starts (in its own transaction), so a
concurrent retry finds it; the answer is stored when the work is done. A first call that
failed with a 5xx (or whose process died) leaves no answer: its row is removed (or, once
stale, taken over) so the client may retry.
"""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.http.request import RawPostDataException
from django.utils import timezone
from rest_framework import status
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from approvals.api.errors import problem
from approvals.models import IdempotentRequest
from approvals.services import IDEMPOTENCY_KEPT

if TYPE_CHECKING:
    from rest_framework.request import Request

    from accounts.models import User

HEADER = "Idempotency-Key"
KEY_MAX = 200
KEPT = IDEMPOTENCY_KEPT
# A first call still 'running' after this long died with its process: a retry takes over.
ABANDONED_AFTER = timedelta(minutes=5)
REPLAYED_HEADER = "Idempotent-Replayed"
# Headers of the first answer a replay repeats.
KEPT_HEADERS = ("ETag", "Location")


def body_digest(request: Request) -> str:
    """What the call asked: method, path and body bytes."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    try:
        digest.update(request.body)
    except RawPostDataException:
        # A multipart body is parsed as it streams in and its bytes are not kept: what it
        # asked is then its fields, and its files' names and sizes.
        fields = sorted((name, value) for name, values in request.POST.lists() for value in values)
        files = sorted((name, f.name, f.size) for name, found in request.FILES.lists() for f in found)
        digest.update(json.dumps([fields, files], default=str).encode())
    return digest.hexdigest()


def idempotency_begin(
    *, request: Request, caller: User, key: str
) -> tuple[IdempotentRequest | None, Response | None]:
    """Claim `key` for this call. Returns (row, None) to go ahead, or (None, answer): the
    first call's answer replayed, a 409 (still running) or a 422 (another body)."""
    if not key or len(key) > KEY_MAX or not key.isprintable():
        return None, problem(
            status_code=status.HTTP_400_BAD_REQUEST,
            code="invalid_input",
            title="Invalid input",
            detail=f"{HEADER} must be 1 to {KEY_MAX} printable characters.",
            field_errors=[{"field": HEADER, "message": f"1 to {KEY_MAX} printable characters."}],
        )
    digest = body_digest(request)
    now = timezone.now()
    for _attempt in range(2):
        try:
            with transaction.atomic():
                row = IdempotentRequest.objects.create(
                    caller=caller,
                    key=key,
                    method=request.method or "",
                    path=request.path[:500],
                    body_sha256=digest,
                )
            return row, None
        except IntegrityError:
            existing = IdempotentRequest.objects.filter(caller=caller, key=key).first()
        if existing is None:
            continue  # removed meanwhile (the first call failed): try again
        stale = existing.created_at < now - KEPT or (
            existing.status is None and existing.created_at < now - ABANDONED_AFTER
        )
        if stale:
            IdempotentRequest.objects.filter(pk=existing.pk).delete()
            continue
        if existing.body_sha256 != digest:
            return None, problem(
                status_code=status.HTTP_422_UNPROCESSABLE_ENTITY,
                code="idempotency_key_reused",
                title="Idempotency key already used for another request",
                detail=f"The key '{key}' was used for a different request ({existing.method} {existing.path}).",
            )
        if existing.status is None:
            return None, problem(
                status_code=status.HTTP_409_CONFLICT,
                code="idempotency_key_in_use",
                title="The first request with this key is still running",
                detail="Retry once it is done; you will get its answer.",
                headers={"Retry-After": "1"},
            )
        return None, _replay(existing)
    return None, problem(
        status_code=status.HTTP_409_CONFLICT,
        code="idempotency_key_in_use",
        title="The first request with this key is still running",
        detail="Retry in a moment.",
        headers={"Retry-After": "1"},
    )


def _replay(row: IdempotentRequest) -> Response:
    headers = {name: str(value) for name, value in (row.response_headers or {}).items()}
    headers[REPLAYED_HEADER] = "true"
    content_type = headers.pop("Content-Type", None)
    return Response(row.response_body, status=row.status, headers=headers, content_type=content_type)


def idempotency_finish(*, row: IdempotentRequest, response: Response) -> None:
    """Keep the answer for replays; a server error keeps nothing (the client may retry)."""
    if response.status_code >= 500:
        IdempotentRequest.objects.filter(pk=row.pk).delete()
        return
    body: Any = json.loads(json.dumps(response.data, cls=JSONEncoder)) if response.data is not None else None
    headers = {name: response[name] for name in KEPT_HEADERS if response.has_header(name)}
    # Only an explicit type (problem+json); otherwise the renderer chooses again on replay.
    if response.content_type:
        headers["Content-Type"] = response.content_type
    IdempotentRequest.objects.filter(pk=row.pk).update(
        status=response.status_code, response_body=body, response_headers=headers, completed_at=timezone.now()
    )
