"""Webhook subscriptions over the REST API: the caller's own subscriptions (list, create
with the signing secret shown once, read, change, delete, rotate the secret), their
delivery logs with every attempt, and a redelivery by hand. Owner-only: anyone else's
subscription or delivery is a 404, admins included. Thin: workflows.webhooks does the work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers as drf
from rest_framework import status
from rest_framework.response import Response

from approvals.api.base import ApiView
from approvals.api.views import problems
from workflows import errors
from workflows.models import WebhookAttempt, WebhookDelivery, WebhookEventType, WebhookSubscription
from workflows.webhooks.selectors import (
    LOG_PAGE,
    webhook_deliveries_of,
    webhook_subscription_of,
    webhook_subscriptions_of,
)
from workflows.webhooks.services import (
    webhook_delivery_redeliver,
    webhook_subscription_create,
    webhook_subscription_delete,
    webhook_subscription_rotate,
    webhook_subscription_update,
)

if TYPE_CHECKING:
    from rest_framework.request import Request

    from accounts.models import User

# --- serializers: input ---------------------------------------------------------------------------


def _event_types_field(**kwargs: Any) -> drf.ListField:
    # Checked by the service (so the API and the web form give the same message), not here.
    return drf.ListField(
        child=drf.CharField(max_length=40),
        help_text=f"Any of: {', '.join(WebhookEventType.values)}.",
        **kwargs,
    )


class WebhookCreateSerializer(drf.Serializer[Any]):
    target_url = drf.CharField(max_length=1000, help_text="https:// (plain http only to allowed hosts).")
    event_types = _event_types_field()
    description = drf.CharField(required=False, allow_blank=True, default="", max_length=1000)


class WebhookUpdateSerializer(drf.Serializer[Any]):
    target_url = drf.CharField(required=False, max_length=1000)
    event_types = _event_types_field(required=False)
    description = drf.CharField(required=False, allow_blank=True, max_length=1000)
    is_active = drf.BooleanField(required=False)


class DeliveryQuerySerializer(drf.Serializer[Any]):
    status = drf.ChoiceField(choices=WebhookDelivery.Status.choices, required=False, default="")
    cursor = drf.CharField(required=False, default="", max_length=200)
    page_size = drf.IntegerField(required=False, default=LOG_PAGE, min_value=1, max_value=200)


# --- serializers: output (documentation of the answers) --------------------------------------------


class WebhookSerializer(drf.Serializer[Any]):
    id = drf.IntegerField()
    target_url = drf.CharField()
    description = drf.CharField()
    event_types = drf.ListField(child=drf.CharField())
    is_active = drf.BooleanField()
    created_at = drf.DateTimeField()
    updated_at = drf.DateTimeField()


class WebhookWithSecretSerializer(WebhookSerializer):
    secret = drf.CharField(
        allow_null=True,
        help_text="The signing secret, shown this once (null in an idempotent replay: rotate to get another).",
    )


class AttemptSerializer(drf.Serializer[Any]):
    started_at = drf.DateTimeField()
    duration_ms = drf.IntegerField()
    succeeded = drf.BooleanField()
    response_status = drf.IntegerField(allow_null=True)
    response_excerpt = drf.CharField()
    error = drf.CharField()
    manual = drf.BooleanField()


class DeliverySerializer(drf.Serializer[Any]):
    id = drf.UUIDField()
    webhook_id = drf.CharField(help_text="The `webhook-id` header, the same on every attempt.")
    event_type = drf.CharField()
    target_url = drf.CharField()
    instance_ref = drf.CharField()
    status = drf.CharField()
    failures = drf.IntegerField()
    next_attempt_at = drf.DateTimeField()
    created_at = drf.DateTimeField()
    delivered_at = drf.DateTimeField(allow_null=True)
    payload = drf.DictField()
    attempts = AttemptSerializer(many=True)


class DeliveryPageSerializer(drf.Serializer[Any]):
    results = DeliverySerializer(many=True)
    next_cursor = drf.CharField(allow_null=True)


# --- representations -------------------------------------------------------------------------------


def subscription_json(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "id": subscription.pk,
        "target_url": subscription.target_url,
        "description": subscription.description,
        "event_types": list(subscription.event_types),
        "is_active": subscription.is_active,
        "created_at": subscription.created_at,
        "updated_at": subscription.updated_at,
    }


def _attempt_json(attempt: WebhookAttempt) -> dict[str, Any]:
    return {
        "started_at": attempt.started_at,
        "duration_ms": attempt.duration_ms,
        "succeeded": attempt.succeeded,
        "response_status": attempt.response_status,
        "response_excerpt": attempt.response_excerpt,
        "error": attempt.error,
        "manual": attempt.manual,
    }


def delivery_json(delivery: WebhookDelivery, *, attempts: list[WebhookAttempt]) -> dict[str, Any]:
    return {
        "id": delivery.pk,
        "webhook_id": delivery.webhook_id,
        "event_type": delivery.event_type,
        "target_url": delivery.target_url,
        "instance_ref": delivery.instance_ref,
        "status": delivery.status,
        "failures": delivery.failures,
        "next_attempt_at": delivery.next_attempt_at,
        "created_at": delivery.created_at,
        "delivered_at": delivery.delivered_at,
        "payload": delivery.payload,
        "attempts": [_attempt_json(a) for a in attempts],
    }


def _own_subscription(*, subscription_id: int, owner: User) -> WebhookSubscription:
    subscription = webhook_subscription_of(subscription_id=subscription_id, owner=owner)
    if subscription is None:
        raise errors.NotFound(f"Webhook subscription {subscription_id} does not exist.")
    return subscription


# --- views -----------------------------------------------------------------------------------------


class _ShowsSecretOnce(ApiView):
    """A view whose answer carries a new signing secret: the secret goes to the caller
    only. The copy kept for an idempotent replay has `secret: null`, so the secret is never
    stored in the clear (it is kept only sealed)."""

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        data = getattr(response, "data", None)
        secret = data.get("secret") if isinstance(data, dict) else None
        if isinstance(data, dict) and secret is not None:
            data["secret"] = None
        response = super().finalize_response(request, response, *args, **kwargs)
        if isinstance(data, dict) and secret is not None:
            data["secret"] = secret
        return response


class WebhookList(_ShowsSecretOnce):
    @extend_schema(responses={200: WebhookSerializer(many=True)})
    def get(self, request: Request) -> Response:
        """Your webhook subscriptions, newest first."""
        owner = self.caller(request)
        return Response([subscription_json(s) for s in webhook_subscriptions_of(owner)])

    @extend_schema(
        request=WebhookCreateSerializer,
        responses={201: WebhookWithSecretSerializer, **problems(400, 403, 409, 422)},
    )
    def post(self, request: Request) -> Response:
        """Subscribe an endpoint to event types; the answer shows its signing secret once."""
        body = WebhookCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        made = webhook_subscription_create(owner=self.caller(request), **body.validated_data)
        response = Response(
            {**subscription_json(made.subscription), "secret": made.secret}, status=status.HTTP_201_CREATED
        )
        response["Location"] = f"/api/v1/webhooks/{made.subscription.pk}/"
        return response


class WebhookDetail(ApiView):
    @extend_schema(responses={200: WebhookSerializer, **problems(404)})
    def get(self, request: Request, pk: int) -> Response:
        """One of your subscriptions (never its secret)."""
        return Response(subscription_json(_own_subscription(subscription_id=pk, owner=self.caller(request))))

    @extend_schema(
        request=WebhookUpdateSerializer, responses={200: WebhookSerializer, **problems(400, 403, 404)}
    )
    def patch(self, request: Request, pk: int) -> Response:
        """Change the given fields (`is_active: false` switches it off; its pending
        deliveries then die unsent)."""
        body = WebhookUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        updated = webhook_subscription_update(
            subscription_id=pk, owner=self.caller(request), **body.validated_data
        )
        return Response(subscription_json(updated))

    @extend_schema(request=None, responses={204: None, **problems(403, 404)})
    def delete(self, request: Request, pk: int) -> Response:
        """Delete the subscription with its secrets and its delivery log."""
        webhook_subscription_delete(subscription_id=pk, owner=self.caller(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookRotate(_ShowsSecretOnce):
    @extend_schema(request=None, responses={200: WebhookWithSecretSerializer, **problems(403, 404, 409, 422)})
    def post(self, request: Request, pk: int) -> Response:
        """A new signing secret, shown once. The current one keeps signing beside it for
        WEBHOOK_SECRET_OVERLAP (each delivery carries both signatures), then retires."""
        rotated = webhook_subscription_rotate(subscription_id=pk, owner=self.caller(request))
        return Response({**subscription_json(rotated.subscription), "secret": rotated.secret})


class WebhookDeliveries(ApiView):
    @extend_schema(
        parameters=[DeliveryQuerySerializer], responses={200: DeliveryPageSerializer, **problems(400, 404)}
    )
    def get(self, request: Request, pk: int) -> Response:
        """The subscription's deliveries, newest first, each with its attempts; `status`
        filters, `next_cursor` reads the older ones."""
        subscription = _own_subscription(subscription_id=pk, owner=self.caller(request))
        query = DeliveryQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        page = webhook_deliveries_of(
            subscription=subscription,
            status=query.validated_data["status"] or None,
            cursor=query.validated_data["cursor"] or None,
            limit=query.validated_data["page_size"],
        )
        return Response(
            {
                "results": [delivery_json(d, attempts=list(d.attempts.all())) for d in page.rows],
                "next_cursor": page.next_cursor,
            }
        )


class DeliveryRedeliver(ApiView):
    @extend_schema(request=None, responses={202: DeliverySerializer, **problems(403, 404, 409, 422)})
    def post(self, request: Request, pk: Any) -> Response:
        """Send one of your deliveries again, whatever its status, with the same
        `webhook-id` (409 while an attempt is in flight). Queued: 202."""
        delivery = webhook_delivery_redeliver(delivery_id=pk, owner=self.caller(request))
        return Response(
            delivery_json(delivery, attempts=list(delivery.attempts.order_by("started_at", "id"))),
            status=status.HTTP_202_ACCEPTED,
        )


# Included under /api/v1/webhooks/ (approvals.api.urls), inside the API's namespace.
urlpatterns = [
    path("", WebhookList.as_view(), name="webhooks"),
    path("<int:pk>/", WebhookDetail.as_view(), name="webhook"),
    path("<int:pk>/rotate/", WebhookRotate.as_view(), name="webhook_rotate"),
    path("<int:pk>/deliveries/", WebhookDeliveries.as_view(), name="webhook_deliveries"),
    path("deliveries/<uuid:pk>/redeliver/", DeliveryRedeliver.as_view(), name="webhook_redeliver"),
]
