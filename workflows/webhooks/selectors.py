"""Reads for the webhook pages and API: an owner's subscriptions and delivery log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.models import Count, Prefetch, Q, QuerySet

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


def webhook_deliveries_of(
    *, subscription: WebhookSubscription, status: str | None = None, limit: int = LOG_PAGE
) -> list[WebhookDelivery]:
    """The subscription's latest deliveries, each with its attempts (two queries)."""
    query = subscription.deliveries.all()
    if status:
        query = query.filter(status=status)
    return list(
        query.order_by("-created_at", "-id").prefetch_related(
            Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("started_at", "id"))
        )[:limit]
    )


def webhook_delivery_of(*, delivery_id: Any, owner: User) -> WebhookDelivery | None:
    """One of the owner's subscriptions' deliveries, or None (also for anyone else's)."""
    return WebhookDelivery.objects.filter(pk=delivery_id, subscription__owner=owner).first()
