"""Who calls the API: a browser session (with CSRF) or a Bearer API token; what a
read-only token may do; how often a token may call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import exceptions, permissions, throttling
from rest_framework.authentication import BaseAuthentication, get_authorization_header

from accounts.models import ApiToken
from accounts.tokens import api_token_authenticate
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
        token, reason = api_token_authenticate(raw)
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
    when to come back (Retry-After)."""

    scope = "api"

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        token = request.auth
        if isinstance(token, ApiToken):
            ident: Any = f"token-{token.pk}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            ident = f"anon-{self.get_ident(request)}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


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
