"""Delivering a webhook: one attempt at a time, by the Celery task, safe to run twice.

An attempt first claims the delivery with a conditional UPDATE (pending, due, no attempt
in flight), so a task delivered twice by the broker (late acknowledgement) or a stale
retry sends nothing; a delivered one is never sent again. The POST happens outside any
transaction; its outcome is recorded only if the claim is still ours. A failed attempt
schedules the next one through the outbox (an event due at the retry time, which the
relay sends), so a retry is never lost with the broker; after the last one the delivery
is dead.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workflows import sql
from workflows.models import OutboxEvent, WebhookAttempt, WebhookDelivery, WebhookFanout
from workflows.webhooks.events import deliver_event
from workflows.webhooks.services import address_problem, signing_secrets
from workflows.webhooks.signing import signature_header

EXCERPT_MAX = 1000
USER_AGENT = "Baton-Webhooks/1"


@dataclass(frozen=True)
class AttemptOutcome:
    """What one run of the delivery task did: 'skipped' (not ours to send now),
    'delivered', 'retry' (next attempt at `next_attempt_at`) or 'dead'."""

    result: str
    status_code: int | None = None
    next_attempt_at: Any = None


def retry_schedule() -> list[float]:
    """Seconds to wait after each failed attempt; one attempt more than its length in all."""
    return [float(s) for s in settings.WEBHOOK_RETRY_SCHEDULE]


# A retry's task may reach a worker whose clock is slightly behind the one that scheduled
# it; refusing it then would leave the delivery to the resume sweep, minutes later.
CLOCK_SKEW = timedelta(seconds=2)


def _claim(delivery_id: Any) -> tuple[WebhookDelivery, uuid.UUID] | None:
    now = timezone.now()
    token = uuid.uuid4()
    lease = now + timedelta(seconds=settings.WEBHOOK_TIMEOUT + 30)
    claimed = WebhookDelivery.objects.filter(
        Q(lease_until__isnull=True) | Q(lease_until__lt=now),
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lte=now + CLOCK_SKEW,
    ).update(lease_until=lease, lease_token=token)
    if not claimed:
        return None
    delivery = WebhookDelivery.objects.select_related("subscription").get(pk=delivery_id)
    return delivery, token


@dataclass(frozen=True)
class _Response:
    status: int | None
    excerpt: str
    error: str
    duration_ms: int


def _post(url: str, *, body: bytes, headers: dict[str, str]) -> _Response:
    """POST `body` to `url` (no redirects followed, never to an internal address); never
    raises for network trouble."""
    parts = urlsplit(url)
    refused = address_problem(parts.hostname or "")
    if refused:
        return _Response(None, "", refused, 0)
    connection_class = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    started = time.monotonic()
    connection = connection_class(parts.hostname or "", parts.port, timeout=settings.WEBHOOK_TIMEOUT)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        excerpt = response.read(EXCERPT_MAX).decode("utf-8", errors="replace")
        status, error = response.status, ""
    except (OSError, http.client.HTTPException) as exc:  # a network failure is an attempt's outcome
        status, excerpt, error = None, "", f"{type(exc).__name__}: {exc}"[:EXCERPT_MAX]
    finally:
        connection.close()
    return _Response(status, excerpt, error, int((time.monotonic() - started) * 1000))


def _request_of(delivery: WebhookDelivery) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(delivery.payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    timestamp = int(time.time())
    signature = signature_header(
        secrets_=signing_secrets(delivery.subscription),
        webhook_id=delivery.webhook_id,
        timestamp=timestamp,
        body=body,
    )
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": delivery.webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }
    return body, headers


def webhook_delivery_attempt(*, delivery_id: Any) -> AttemptOutcome:
    """Make one attempt of a delivery if it is pending, due and not in flight.

    Side effects: the POST; a `WebhookAttempt` row; the delivery marked delivered, dead,
    or due again with an outbox event at the retry time (one transaction). A delivery
    whose subscription was switched off meanwhile is dead without a POST.
    """
    claim = _claim(delivery_id)
    if claim is None:
        return AttemptOutcome("skipped")
    delivery, token = claim
    now = timezone.now()
    switched_off = delivery.subscription is not None and not delivery.subscription.is_active
    if switched_off:
        response = _Response(None, "", "The subscription is switched off.", 0)
    else:
        try:
            body, headers = _request_of(delivery)
        except (InvalidToken, ValueError) as exc:  # logged as a failed attempt, not a crash
            response = _Response(None, "", f"Cannot sign: {type(exc).__name__} {exc}".strip(), 0)
        else:
            response = _post(delivery.target_url, body=body, headers=headers)
    succeeded = response.status is not None and 200 <= response.status < 300
    schedule = retry_schedule()
    outcome: AttemptOutcome
    fields: dict[str, Any] = {"lease_until": None, "lease_token": None}
    retry_event: OutboxEvent | None = None
    if succeeded:
        fields.update(status=WebhookDelivery.Status.DELIVERED, delivered_at=timezone.now())
        outcome = AttemptOutcome("delivered", response.status)
    elif switched_off or delivery.failures >= len(schedule):
        fields.update(status=WebhookDelivery.Status.DEAD, failures=delivery.failures + 1)
        outcome = AttemptOutcome("dead", response.status)
    else:
        due = timezone.now() + timedelta(seconds=schedule[delivery.failures])
        fields.update(failures=delivery.failures + 1, next_attempt_at=due)
        retry_event = deliver_event(delivery.id)
        retry_event.available_at = due
        outcome = AttemptOutcome("retry", response.status, due)
    with transaction.atomic():
        # Only while the claim is ours: a lease that ran out may have let another attempt in.
        if not WebhookDelivery.objects.filter(pk=delivery.pk, lease_token=token).update(**fields):
            return AttemptOutcome("skipped", response.status)
        WebhookAttempt.objects.create(
            delivery=delivery,
            started_at=now,
            duration_ms=response.duration_ms,
            succeeded=succeeded,
            response_status=response.status,
            response_excerpt=response.excerpt,
            error=response.error,
            manual=delivery.manual,
        )
        if retry_event is not None:
            # Due later: the relay sends it when its time comes (no push now).
            retry_event.created_at = timezone.now()
            sql.rows_insert([retry_event])
    return outcome


def webhook_deliveries_resume(*, overdue: timedelta) -> int:
    """Queue again the pending deliveries overdue by more than `overdue` and not in
    flight (their task was lost, e.g. a worker died mid-attempt). Returns how many."""
    now = timezone.now()
    stuck = list(
        WebhookDelivery.objects.filter(
            Q(lease_until__isnull=True) | Q(lease_until__lt=now),
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lt=now - overdue,
        ).values_list("pk", flat=True)[:500]
    )
    if stuck:
        events = [deliver_event(pk) for pk in stuck]
        for event in events:
            event.created_at = event.available_at = now
        with transaction.atomic():
            sql.rows_insert(events)
    return len(stuck)


def webhook_deliveries_purge(*, older_than: timedelta) -> int:
    """Delete finished deliveries (delivered or dead) made more than `older_than` ago, with
    their attempts; pending ones stay whatever their age. Returns how many."""
    cutoff = timezone.now() - older_than
    finished = [WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.DEAD]
    deleted, _ = WebhookDelivery.objects.filter(status__in=finished, created_at__lt=cutoff).delete()
    # Fan-out markers only need to outlive a late redelivery of their task (hours at most).
    WebhookFanout.objects.filter(created_at__lt=cutoff).delete()
    return deleted
