"""Webhook pages of one's account: list and create subscriptions (the secret is shown once),
edit one, rotate its secret, delete it, read its delivery log and redeliver a delivery.
Only the owner ever sees a subscription: anyone else's is a 404."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from approvals.views.common import me
from approvals.webhook_forms import WebhookSubscriptionForm
from workflows import errors
from workflows.models import WebhookDelivery, WebhookSubscription
from workflows.webhooks import selectors
from workflows.webhooks.services import (
    webhook_delivery_redeliver,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_rotate,
    webhook_subscription_update,
)

# The session key holding a secret just made, until the page that shows it once is read.
SESSION_KEY_NEW_SECRET = "webhook_secret_once"  # noqa: S105  (a session key name, not a secret)


def _remember_secret(request: HttpRequest, *, subscription_id: int, secret: str) -> None:
    request.session[SESSION_KEY_NEW_SECRET] = {"subscription": subscription_id, "secret": secret}


def _secret_once(request: HttpRequest, subscription_id: int) -> str | None:
    """The secret just made for this subscription, removed from the session as it is read."""
    held = request.session.get(SESSION_KEY_NEW_SECRET)
    if not held or held.get("subscription") != subscription_id:
        return None
    del request.session[SESSION_KEY_NEW_SECRET]
    return str(held["secret"])


def _owned(request: HttpRequest, pk: int) -> WebhookSubscription:
    found = selectors.webhook_subscription_of(subscription_id=pk, owner=me(request))
    if found is None:
        raise Http404("No such webhook subscription.")
    return found


@login_required
@require_http_methods(["GET", "POST"])
def webhooks(request: HttpRequest) -> HttpResponse:
    """GET: my subscriptions and a form for a new one. POST: create it, then its page,
    which shows the new secret once (PRG)."""
    user = me(request)
    form = WebhookSubscriptionForm(request.POST or None, initial={"is_active": True})
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                made = webhook_subscription_create(
                    owner=user,
                    target_url=form.cleaned_data["target_url"],
                    event_types=form.cleaned_data["event_types"],
                    description=form.cleaned_data["description"],
                )
            except errors.WorkflowError as exc:
                form.add_service_error(exc)
                status = exc.http_status
            else:
                _remember_secret(request, subscription_id=made.subscription.pk, secret=made.secret)
                messages.success(request, "Webhook subscription created.")
                return redirect("approvals:webhook_detail", made.subscription.pk)
        else:
            status = 400
    context = {"subscriptions": selectors.webhook_subscriptions_of(user), "form": form}
    return render(request, "webhooks/list.html", context, status=status)


def _detail(
    request: HttpRequest, subscription: WebhookSubscription, form: WebhookSubscriptionForm, status: int = 200
) -> HttpResponse:
    wanted = request.GET.get("status", "")
    status_filter = wanted if wanted in WebhookDelivery.Status.values else None
    try:
        log = selectors.webhook_deliveries_of(
            subscription=subscription, status=status_filter, cursor=request.GET.get("cursor") or None
        )
    except errors.InvalidInput as exc:
        messages.error(request, f"{exc.detail} Showing the newest deliveries.")
        log = selectors.webhook_deliveries_of(subscription=subscription, status=status_filter)
        status = exc.http_status
    context: dict[str, Any] = {
        "subscription": subscription,
        "form": form,
        "secret": _secret_once(request, subscription.pk),
        "deliveries": log.rows,
        "next_cursor": log.next_cursor,
        "status_filter": status_filter or "",
        "statuses": WebhookDelivery.Status.choices,
    }
    return render(request, "webhooks/detail.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def webhook_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """GET: the subscription, its settings and its delivery log. POST: change its settings."""
    subscription = _owned(request, pk)
    if request.method != "POST":
        initial = {
            "target_url": subscription.target_url,
            "description": subscription.description,
            "event_types": subscription.event_types,
            "is_active": subscription.is_active,
        }
        return _detail(request, subscription, WebhookSubscriptionForm(initial=initial))
    form = WebhookSubscriptionForm(request.POST)
    if not form.is_valid():
        return _detail(request, subscription, form, status=400)
    try:
        webhook_subscription_update(
            subscription_id=pk,
            owner=me(request),
            target_url=form.cleaned_data["target_url"],
            description=form.cleaned_data["description"],
            event_types=form.cleaned_data["event_types"],
            is_active=form.cleaned_data["is_active"],
        )
    except errors.WorkflowError as exc:
        form.add_service_error(exc)
        return _detail(request, subscription, form, status=exc.http_status)
    messages.success(request, "Webhook subscription saved.")
    return redirect("approvals:webhook_detail", pk)


@login_required
@require_POST
def webhook_rotate(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a new secret (shown once); the old one keeps signing through the overlap."""
    try:
        made = webhook_subscription_rotate(subscription_id=pk, owner=me(request))
    except errors.NotFound:
        raise Http404("No such webhook subscription.") from None
    _remember_secret(request, subscription_id=pk, secret=made.secret)
    messages.success(
        request, "New secret made. The old one keeps signing alongside it until the overlap ends."
    )
    return redirect("approvals:webhook_detail", pk)


@login_required
@require_POST
def webhook_delete(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        webhook_subscription_delete(subscription_id=pk, owner=me(request))
    except errors.NotFound:
        raise Http404("No such webhook subscription.") from None
    messages.success(request, "Webhook subscription deleted.")
    return redirect("approvals:webhooks")


@login_required
@require_POST
def webhook_redeliver(request: HttpRequest, delivery_id: UUID) -> HttpResponse:
    """Send one delivery again (same webhook-id), then back to its subscription's log."""
    delivery = selectors.webhook_delivery_of(delivery_id=delivery_id, owner=me(request))
    if delivery is None:
        raise Http404("No such webhook delivery.")
    try:
        webhook_delivery_redeliver(delivery_id=delivery.pk, owner=me(request))
    except errors.WorkflowError as exc:
        messages.error(request, exc.detail)
    else:
        messages.success(request, "The delivery is queued to be sent again.")
    return redirect("approvals:webhook_detail", delivery.subscription_id)
