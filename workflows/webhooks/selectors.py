"""Reads for the webhook pages and API: an owner's subscriptions and delivery log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from django.db.models import Count, Prefetch, Q, QuerySet

from workflows import errors
from workflows.models import WebhookAttempt, WebhookDelivery, WebhookSubscription

if TYPE_CHECKING:
    from accounts.models import User

LOG_PAGE = 50


def webhook_subscriptions_of(owner: User) -> QuerySet[WebhookSubscription]:
    """The owner's subscriptions, newest first, with their counts of pending and dead
    deliveries (one query)."""
    return (
        WebhookSubscription.objects.filter(owner=owner)
        .annotate(
            pending_count=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.PENDING)),
            dead_count=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.DEAD)),
        )
        .order_by("-created_at", "-id")
    )


def webhook_subscription_of(*, subscription_id: Any, owner: User) -> WebhookSubscription | None:
    """The owner's subscription, or None (also for anyone else's)."""
    try:
        return WebhookSubscription.objects.filter(owner=owner).get(pk=int(subscription_id))
    except (WebhookSubscription.DoesNotExist, ValueError, TypeError):
        return None


@dataclass(frozen=True)
class DeliveryPage:
    """One page of a delivery log, newest first; `next_cursor` reads the older ones."""

    rows: list[WebhookDelivery]
    next_cursor: str | None


def _cursor_of(delivery: WebhookDelivery) -> str:
    return f"{delivery.created_at.isoformat()}~{delivery.pk}"


def _cursor_parse(cursor: str) -> tuple[datetime, UUID]:
    """(created_at, id) of a cursor; raises InvalidInput naming `cursor`."""
    try:
        moment, _, pk = cursor.partition("~")
        parsed = datetime.fromisoformat(moment)
        if parsed.tzinfo is None:
            raise ValueError("no time zone")
        return parsed, UUID(pk)
    except ValueError:
        raise errors.InvalidInput(
            "The page cursor is not valid.", field_errors={"cursor": ["Not a cursor this log gave out."]}
        ) from None


def webhook_deliveries_of(
    *,
    subscription: WebhookSubscription,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = LOG_PAGE,
) -> DeliveryPage:
    """A page of the subscription's deliveries, newest first, each with its attempts:
    two queries whatever the page (keyset on the log's index, not OFFSET). Raises
    InvalidInput naming `cursor` for a malformed one."""
    query = subscription.deliveries.all()
    if status:
        query = query.filter(status=status)
    if cursor:
        moment, pk = _cursor_parse(cursor)
        query = query.filter(Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk))
    rows = list(
        query.order_by("-created_at", "-id").prefetch_related(
            Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("started_at", "id"))
        )[: limit + 1]
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return DeliveryPage(rows=rows, next_cursor=_cursor_of(rows[-1]) if more else None)


def webhook_delivery_of(*, delivery_id: Any, owner: User) -> WebhookDelivery | None:
    """One of the owner's subscriptions' deliveries, or None (also for anyone else's)."""
    return WebhookDelivery.objects.filter(pk=delivery_id, subscription__owner=owner).first()
