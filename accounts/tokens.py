"""API tokens: made and revoked by their owner (or, for a service account, an
administrator), shown once, stored as a SHA-256 digest, found by their public prefix.

A token reads `baton_<prefix>_<secret>`. The prefix finds the row in one indexed lookup;
the secret's digest is compared in constant time. A token is refused once it expired or
was revoked, or when its owner is no longer active.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiToken, User

logger = logging.getLogger(__name__)

TOKEN_PREFIX = "baton"  # noqa: S105 — the public scheme tag of a token, not a secret
NAME_MAX = 100
# last_used_at is a hint for the owner, not an audit record: writing it at most once a
# minute keeps a busy client's reads from turning into writes.
LAST_USED_GRANULARITY_SECONDS = 60


class TokenInputError(ValueError):
    """Bad input for a new token; `field` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class IssuedToken:
    """A token just made, with the secret its owner sees this once and never again."""

    token: ApiToken
    secret: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def api_token_create(
    *, owner: User, name: str, expires_at: datetime | None = None, read_only: bool = False
) -> IssuedToken:
    """Issue a token for `owner`. Raises TokenInputError naming the field (name, expires_at).
    The returned secret is not stored anywhere: show it once."""
    clean = (name or "").strip()
    if not clean:
        raise TokenInputError("name", "Give the token a name.")
    if len(clean) > NAME_MAX:
        raise TokenInputError("name", f"At most {NAME_MAX} characters (got {len(clean)}).")
    if expires_at is not None and expires_at <= timezone.now():
        raise TokenInputError("expires_at", "The expiry must be in the future.")
    if not owner.is_active:
        raise TokenInputError("owner", "An inactive account cannot have tokens.")
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        owner=owner,
        name=clean,
        prefix=prefix,
        secret_sha256=_digest(secret),
        read_only=read_only,
        expires_at=expires_at,
    )
    return IssuedToken(token=token, secret=f"{TOKEN_PREFIX}_{prefix}_{secret}")


def api_token_revoke(*, token_id: int, actor: User) -> ApiToken | None:
    """Revoke one of `actor`'s tokens (an administrator may revoke anyone's); it is refused
    from the next call on. None when there is no such token for `actor`. Idempotent."""
    with transaction.atomic():
        tokens = ApiToken.objects.select_for_update()
        if not actor.is_superuser:
            tokens = tokens.filter(owner=actor)
        token = tokens.filter(pk=token_id).first()
        if token is None:
            return None
        if token.revoked_at is None:
            token.revoked_at = timezone.now()
            token.save(update_fields=["revoked_at"])
    return token


def token_by_prefix(prefix: str) -> ApiToken | None:
    """The token whose public prefix is `prefix` (unique), with its owner."""
    return ApiToken.objects.select_related("owner").filter(prefix=prefix).first()


def api_token_authenticate(
    raw: str, *, find: Callable[[str], ApiToken | None] = token_by_prefix
) -> tuple[ApiToken | None, str]:
    """The token `raw` stands for, or None with the reason it is refused (said to the
    client as is: it reveals nothing a holder of the token does not know). `find` reads
    the token of a prefix with its owner (the API passes its plain-SQL read); the checks
    are the same whoever reads it."""
    scheme, _, rest = raw.partition("_")
    prefix, _, secret = rest.partition("_")
    if scheme != TOKEN_PREFIX or not prefix or not secret:
        return None, "Malformed token: expected baton_<prefix>_<secret>."
    token = find(prefix)
    if token is None or not hmac.compare_digest(token.secret_sha256, _digest(secret)):
        return None, "Unknown token."
    now = timezone.now()
    if token.revoked_at is not None:
        return None, "This token was revoked."
    if token.expires_at is not None and token.expires_at <= now:
        return None, "This token has expired."
    if not token.owner.is_active:
        return None, "The token's account is not active."
    last = token.last_used_at
    if last is None or (now - last).total_seconds() >= LAST_USED_GRANULARITY_SECONDS:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token, ""


def tokens_of(owner: User) -> list[ApiToken]:
    """`owner`'s tokens, newest first, revoked ones included (they show as revoked)."""
    return list(ApiToken.objects.filter(owner=owner).order_by("-created_at", "-id"))
