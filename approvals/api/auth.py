"""Who calls the API: a browser session (with CSRF) or a Bearer API token; what a
read-only token may do; how often a token may call."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import redis
from django.conf import settings
from django.core.cache import cache
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.models import ApiToken
from accounts.tokens import api_token_authenticate
from approvals.selectors.api_rows import token_row
from workflows.tracing import credential_set

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

    from accounts.models import User


def token_credential(token: ApiToken) -> dict[str, object]:
    """What the audit trail records of the token an action came with."""
    return {
        "token_id": token.pk,
        "token_name": token.name,
        "service_account": bool(token.owner.is_service_account),
    }


class BearerTokenAuthentication(BaseAuthentication):
    """`Authorization: Bearer baton_<prefix>_<secret>`. An expired, revoked, unknown or
    malformed token is a 401 (never a fall-back to anonymous)."""

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiToken] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Send one token: 'Authorization: Bearer <token>'.")
        try:
            raw = header[1].decode("ascii")
        except UnicodeError:
            raise exceptions.AuthenticationFailed("The token is not ASCII.") from None
        # The token's row read in plain SQL: every API call pays for this read.
        token, reason = api_token_authenticate(raw, find=token_row)
        if token is None:
            raise exceptions.AuthenticationFailed(reason)
        # Every audit entry this request causes names the token (workflows.audit).
        credential_set(token_credential(token))
        return token.owner, token

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class ReadOnlyTokenPermission(permissions.BasePermission):
    """A read-only token may use safe methods only (403 otherwise)."""

    message = "This token is read-only: it may only read (GET, HEAD, OPTIONS)."

    def has_permission(self, request: Request, view: APIView) -> bool:
        token = request.auth
        if isinstance(token, ApiToken) and token.read_only:
            return request.method in permissions.SAFE_METHODS
        return True


class CallerRateThrottle(throttling.SimpleRateThrottle):
    """Calls per token (each token its own budget), else per signed-in person; a 429 says
    when to come back (Retry-After).

    A fixed window counted in the shared cache: one counter per caller and window, so a
    call costs one round trip to Redis (INCR and EXPIRE pipelined) instead of DRF's read
    and rewrite of the list of every call's time in the window."""

    scope = "api"
    # Set from the rate by DRF's SimpleRateThrottle.__init__ (parse_rate).
    num_requests: int
    duration: int
    wait_seconds: float = 1.0

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = request.auth
        if isinstance(token, ApiToken):
            ident: Any = f"token-{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"anon-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request: Request, view: APIView) -> bool:
        if self.rate is None:
            return True
        key = self.get_cache_key(request, view)
        if key is None:
            return True
        now = self.timer()
        window = int(now // self.duration)
        count = window_count(key=f"{key}:{window}", seconds=self.duration)
        self.wait_seconds = (window + 1) * self.duration - now
        return count <= self.num_requests

    def wait(self) -> float | None:
        return max(self.wait_seconds, 1.0)


@functools.cache
def _redis_of(location: str) -> redis.Redis:
    """One client (and its connection pool) per process for the cache's Redis."""
    return redis.Redis.from_url(location)


def window_count(*, key: str, seconds: int) -> int:
    """Count one more call under `key` (a window's counter, kept as long as the window) and
    return the count: one pipelined round trip when the cache is Redis, else the cache's
    own add and incr."""
    backend = settings.CACHES["default"]
    if backend["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        location = backend["LOCATION"]
        pipe = _redis_of(location if isinstance(location, str) else location[0]).pipeline(transaction=False)
        pipe.incr(cache.make_key(key))
        pipe.expire(cache.make_key(key), seconds + 1)
        count, _ = pipe.execute()
        return int(count)
    cache.add(key, 0, timeout=seconds + 1)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr: a new window's first call
        cache.add(key, 1, timeout=seconds + 1)
        return 1


class BearerTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI document's name and description of the Bearer token scheme."""

    target_class = BearerTokenAuthentication
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal or service account API token: baton_<prefix>_<secret>.",
        }
