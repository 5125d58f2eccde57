"""Webhook subscriptions and their secrets: the writes an owner makes (web pages and the
REST API call these). Delivering is `workflows.webhooks.sending`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from workflows import errors
from workflows.models import WebhookDelivery, WebhookEventType, WebhookSecret, WebhookSubscription
from workflows.outbox import outbox_write
from workflows.webhooks.events import deliver_event
from workflows.webhooks.signing import SECRET_PREFIX, secret_generate

if TYPE_CHECKING:
    from accounts.models import User

URL_MAX = 500
SEAL_CONTEXT = b"baton-webhook-secret-seal"
DESCRIPTION_MAX = 200


def url_problem(url: str, *, required_hosts: list[str] | None = None) -> str | None:
    """Why `url` may not receive webhooks, or None.

    HTTPS only, except to the hosts in WEBHOOK_ALLOWED_HOSTS (plain HTTP allowed, e.g. a
    receiver on 127.0.0.1); no credentials in the URL; with `required_hosts`, the host
    must be one of them.
    """
    if not url:
        return "A URL is required."
    if len(url) > URL_MAX:
        return f"At most {URL_MAX} characters (got {len(url)})."
    try:
        URLValidator(schemes=["http", "https"])(url)
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
    except (ValidationError, ValueError):
        return "Enter a valid http(s) URL."
    if parts.username or parts.password:
        return "A URL must not carry a user name or password."
    plain_ok = [h.lower() for h in settings.WEBHOOK_ALLOWED_HOSTS]
    if parts.scheme != "https" and host not in plain_ok:
        return "Use https:// (plain http is allowed only to the hosts the administrator configured)."
    if host not in plain_ok and _internal_ip(host):
        return f"{host} is an internal address; webhooks go only to public hosts."
    if required_hosts is not None and host not in [h.lower() for h in required_hosts]:
        allowed = ", ".join(required_hosts) or "none are configured"
        return f"The host {host} is not allowed for callbacks (allowed: {allowed})."
    return None


def _internal_ip(address: str) -> bool:
    """Whether `address` is an IP literal of this machine or a private network."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return False
    return not ip.is_global


def address_problem(host: str) -> str | None:
    """Why a delivery must not connect to `host` now, or None: a name that resolves to an
    internal address (a private network, this machine, link-local cloud metadata) unless
    the administrator allowed the host. Checked at each attempt, as DNS answers change."""
    if host.lower() in [h.lower() for h in settings.WEBHOOK_ALLOWED_HOSTS]:
        return None
    try:
        found = {info[4][0] for info in socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)}
    except OSError as exc:
        return f"{host} does not resolve: {exc}"
    internal = sorted(a for a in found if _internal_ip(str(a)))
    if internal:
        return f"{host} resolves to an internal address ({', '.join(map(str, internal))}); not sent."
    return None


def callback_url_clean(url: str) -> str:
    """A request's own callback URL, checked against WEBHOOK_CALLBACK_HOSTS ('' for none).

    Raises InvalidInput naming `callback_url`.
    """
    url = (url or "").strip()
    if not url:
        return ""
    problem = url_problem(url, required_hosts=list(settings.WEBHOOK_CALLBACK_HOSTS))
    if problem:
        raise errors.InvalidInput(
            "The callback URL is not allowed.", field_errors={"callback_url": [problem]}
        )
    return url


def _clean(
    *, target_url: str | None, event_types: list[str] | None, description: str | None
) -> dict[str, Any]:
    """The given fields, checked; raises InvalidInput naming every bad one."""
    field_errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if target_url is not None:
        url = target_url.strip()
        problem = url_problem(url)
        if problem:
            field_errors["target_url"] = [problem]
        values["target_url"] = url
    if event_types is not None:
        unknown = [t for t in event_types if t not in WebhookEventType.values]
        if not event_types:
            field_errors["event_types"] = ["Choose at least one event type."]
        elif unknown:
            known = ", ".join(WebhookEventType.values)
            field_errors["event_types"] = [f"Unknown event type(s): {', '.join(unknown)} (known: {known})."]
        values["event_types"] = [t for t in WebhookEventType.values if t in event_types]
    if description is not None:
        if len(description) > DESCRIPTION_MAX:
            field_errors["description"] = [f"At most {DESCRIPTION_MAX} characters (got {len(description)})."]
        values["description"] = description.strip()
    if field_errors:
        raise errors.InvalidInput("The webhook subscription is not valid.", field_errors=field_errors)
    return values


@dataclass(frozen=True)
class SubscriptionWithSecret:
    """A subscription and the signing secret just made for it (shown to its owner once)."""

    subscription: WebhookSubscription
    secret: str


def subscription_owned(*, subscription_id: Any, owner: User, lock: bool = False) -> WebhookSubscription:
    """The owner's subscription; raises NotFound for anyone else's (never says it exists)."""
    query = WebhookSubscription.objects.filter(owner=owner)
    if lock:
        query = query.select_for_update()
    try:
        return query.get(pk=int(subscription_id))
    except (WebhookSubscription.DoesNotExist, ValueError, TypeError):
        raise errors.NotFound(f"Webhook subscription {subscription_id} does not exist.") from None


def webhook_subscription_create(
    *, owner: User, target_url: str, event_types: list[str], description: str = ""
) -> SubscriptionWithSecret:
    """Subscribe `owner`'s endpoint to `event_types` (active at once) with a new secret.

    Raises InvalidInput naming each bad field, Forbidden for an inactive owner.
    """
    if not owner.is_active:
        raise errors.Forbidden("An inactive account cannot subscribe to webhooks.")
    values = _clean(target_url=target_url, event_types=event_types, description=description)
    secret = secret_generate()
    with transaction.atomic():
        subscription = WebhookSubscription.objects.create(owner=owner, **values)
        WebhookSecret.objects.create(subscription=subscription, sealed=secret_seal(secret))
    return SubscriptionWithSecret(subscription=subscription, secret=secret)


def webhook_subscription_update(
    *,
    subscription_id: Any,
    owner: User,
    target_url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    is_active: bool | None = None,
) -> WebhookSubscription:
    """Change the given fields of the owner's subscription (None: unchanged).

    Raises NotFound (not theirs), InvalidInput naming each bad field. Deliveries already
    written keep the URL they were made for.
    """
    values = _clean(target_url=target_url, event_types=event_types, description=description)
    if is_active is not None:
        values["is_active"] = is_active
    with transaction.atomic():
        subscription = subscription_owned(subscription_id=subscription_id, owner=owner, lock=True)
        for name, value in values.items():
            setattr(subscription, name, value)
        subscription.save()
    return subscription


def webhook_subscription_rotate(
    *, subscription_id: Any, owner: User, overlap: timedelta | None = None
) -> SubscriptionWithSecret:
    """Add a new signing secret; the current ones keep signing for `overlap` (default
    WEBHOOK_SECRET_OVERLAP seconds), then retire: no moment without a valid signature.

    Raises NotFound (not theirs). Side effect: secrets already past retirement are deleted.
    """
    window = overlap if overlap is not None else timedelta(seconds=settings.WEBHOOK_SECRET_OVERLAP)
    now = timezone.now()
    secret = secret_generate()
    with transaction.atomic():
        subscription = subscription_owned(subscription_id=subscription_id, owner=owner, lock=True)
        subscription.secrets.filter(retires_at__lte=now).delete()
        subscription.secrets.filter(retires_at__isnull=True).update(retires_at=now + window)
        WebhookSecret.objects.create(subscription=subscription, sealed=secret_seal(secret), created_at=now)
    return SubscriptionWithSecret(subscription=subscription, secret=secret)


def webhook_subscription_delete(*, subscription_id: Any, owner: User) -> None:
    """Delete the owner's subscription with its secrets and delivery log. Raises NotFound."""
    with transaction.atomic():
        subscription_owned(subscription_id=subscription_id, owner=owner, lock=True).delete()


def _sealer() -> MultiFernet:
    """Fernet keys derived from SECRET_KEY (to seal) and SECRET_KEY_FALLBACKS (to open
    secrets sealed before a rotation of SECRET_KEY)."""
    keys = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return MultiFernet(
        [
            Fernet(base64.urlsafe_b64encode(hmac.new(str(k).encode(), SEAL_CONTEXT, hashlib.sha256).digest()))
            for k in keys
        ]
    )


def secret_seal(secret: str) -> str:
    """`secret` encrypted for storage."""
    return _sealer().encrypt(secret.encode("utf-8")).decode("ascii")


def secret_open(sealed: str) -> str:
    """A stored secret in the clear. Raises InvalidToken when no SECRET_KEY (current or
    fallback) sealed it."""
    return _sealer().decrypt(sealed.encode("ascii")).decode("utf-8")


def callback_secret() -> str:
    """The deployment's secret for requests' own callbacks: WEBHOOK_CALLBACK_SECRET, or one
    derived from SECRET_KEY (so each deployment has its own without configuring it)."""
    if settings.WEBHOOK_CALLBACK_SECRET:
        return str(settings.WEBHOOK_CALLBACK_SECRET)
    key = hmac.new(settings.SECRET_KEY.encode(), b"baton-webhook-callback", hashlib.sha256).digest()
    return SECRET_PREFIX + base64.b64encode(key).decode("ascii")


def signing_secrets(subscription: WebhookSubscription | None) -> list[str]:
    """The secrets that sign now: the subscription's current and retiring ones, newest
    first; for a request's own callback, the deployment's WEBHOOK_CALLBACK_SECRET."""
    if subscription is None:
        return [callback_secret()]
    now = timezone.now()
    sealed = (
        subscription.secrets.filter(Q(retires_at__isnull=True) | Q(retires_at__gt=now))
        .order_by("-created_at", "-id")
        .values_list("sealed", flat=True)
    )
    return [secret_open(s) for s in sealed]


def webhook_delivery_redeliver(*, delivery_id: Any, owner: User) -> WebhookDelivery:
    """Send one of the owner's deliveries again, whatever its status, with the same
    `webhook-id`: it goes back to pending with a fresh retry schedule.

    Raises NotFound (not theirs), TransitionNotAllowed while an attempt is in flight.
    Side effect after commit: the delivery task is queued through the outbox.
    """
    now = timezone.now()
    with transaction.atomic():
        try:
            delivery = (
                WebhookDelivery.objects.select_for_update()
                .filter(subscription__owner=owner)
                .get(pk=delivery_id)
            )
        except (WebhookDelivery.DoesNotExist, ValueError, ValidationError):
            raise errors.NotFound(f"Webhook delivery {delivery_id} does not exist.") from None
        if delivery.lease_until is not None and delivery.lease_until > now:
            raise errors.TransitionNotAllowed("This delivery is being sent right now; try again shortly.")
        delivery.status = WebhookDelivery.Status.PENDING
        delivery.failures = 0
        delivery.next_attempt_at = now
        delivery.lease_until = None
        delivery.lease_token = None
        delivery.manual = True
        delivery.save(
            update_fields=["status", "failures", "next_attempt_at", "lease_until", "lease_token", "manual"]
        )
        outbox_write([deliver_event(delivery.id)])
    return delivery
