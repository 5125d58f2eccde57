"""Action links in mail: "approve" or "reject" one request from the mail that says it waits.

A link is signed (django.core.signing, its own salt), bound to one person, one request and
one action, expires after BATON_ACTION_LINK_DAYS and acts once (its nonce is recorded when
used, approvals.models.ActionLinkUse). Opening it only shows a confirmation page — mail
scanners open links, so a GET never changes anything; the POST from that page acts,
through the same service as the request's page (approvals.services.action_link_use), as
the person logged in. A link that is reused, expired, altered or opened by someone else
explains itself and does nothing.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from approvals.actions import Action
from approvals.models import ActionLinkUse, ApprovalRequest

SALT = "baton.approvals.action-link"
# The actions a mail may offer: decisions on a request waiting for its reader.
LINK_ACTIONS = (Action.APPROVE, Action.REJECT)


class LinkProblem(Exception):
    """Why a link cannot act: `reason` is one of 'invalid', 'expired', 'used', 'other_user'."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class LinkClaim:
    """What a valid link says: who may do what on which request, and its nonce."""

    user_id: int
    request_id: int
    action: Action
    nonce: str
    made_at: datetime


def _max_age() -> timedelta:
    return timedelta(days=settings.BATON_ACTION_LINK_DAYS)


def action_link_make(
    *, user: User, request: ApprovalRequest, action: Action, now: datetime | None = None
) -> str:
    """The absolute URL of a link for `user` to take `action` on `request`, made `now`."""
    if action not in LINK_ACTIONS:
        raise ValueError(f"No mail link for {action}.")
    made = int((now or timezone.now()).timestamp())
    token = signing.dumps(
        {"u": user.pk, "r": request.pk, "a": action.value, "n": secrets.token_hex(16), "t": made},
        salt=SALT,
        compress=True,
    )
    return settings.BATON_BASE_URL.rstrip("/") + reverse("approvals:action_link", args=[token])


def action_link_read(token: str, *, user: User, now: datetime | None = None) -> LinkClaim:
    """Check a link for `user` (logged in); raises LinkProblem saying why it cannot act."""
    moment = now or timezone.now()
    try:
        data = signing.loads(token, salt=SALT)
        made_at = datetime.fromtimestamp(int(data["t"]), tz=UTC)
        claim = LinkClaim(
            user_id=int(data["u"]),
            request_id=int(data["r"]),
            action=Action(data["a"]),
            nonce=str(data["n"]),
            made_at=made_at,
        )
    except (signing.BadSignature, KeyError, ValueError, TypeError, OverflowError, OSError):
        raise LinkProblem(
            "invalid",
            "This link is not valid: it may have been cut short or altered. Open the request instead.",
        ) from None
    if moment - claim.made_at > _max_age():
        raise LinkProblem(
            "expired",
            f"This link has expired: links work for {settings.BATON_ACTION_LINK_DAYS} days. Open the request instead.",
        )
    if claim.user_id != user.pk:
        owner = User.objects.filter(pk=claim.user_id).first()
        raise LinkProblem(
            "other_user",
            f"This link was sent to {owner or 'someone else'}, not to you: it does nothing for you. "
            "If the request waits for you, open it from your inbox.",
        )
    if claim.action not in LINK_ACTIONS:
        raise LinkProblem("invalid", "This link is not valid. Open the request instead.")
    if ActionLinkUse.objects.filter(nonce=claim.nonce).exists():
        raise LinkProblem(
            "used", "This link was used already: each link acts once. Open the request to see where it is."
        )
    return claim
