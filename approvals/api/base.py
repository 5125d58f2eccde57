"""What every API view shares: who may call, the throttle, problem details, the
Idempotency-Key of POSTs, and the version preconditions (ETag / If-Match)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from accounts.models import User
from approvals.api.auth import (
    BearerTokenAuthentication,
    CallerRateThrottle,
    ReadOnlyTokenPermission,
)
from approvals.api.errors import PreconditionFailed, ProblemException
from approvals.api.idempotency import HEADER, idempotency_begin, idempotency_finish
from approvals.models import IdempotentRequest
from workflows.tracing import credential_set

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponseBase
    from rest_framework.request import Request
    from rest_framework.response import Response

    from approvals.models import ApprovalRequest


def etag_of(request: ApprovalRequest) -> str:
    return f'"{request.pk}-v{request.version}"'


def version_of_etag(value: str) -> int | None:
    """The version an ETag (ours, quoted or weak) names, or None."""
    text = value.strip().removeprefix("W/").strip('"')
    _, _, version = text.rpartition("-v")
    return int(version) if version.isdigit() else None


def if_match_check(*, http_request: Request, request: ApprovalRequest) -> int | None:
    """The version the client's If-Match names (None without one); PreconditionFailed (412)
    when it is not the current one."""
    header = http_request.headers.get("If-Match")
    if not header or header.strip() == "*":
        return None
    wanted = [version_of_etag(v) for v in header.split(",")]
    if request.version not in wanted:
        raise PreconditionFailed(
            f"{request.reference} is at version {request.version}; If-Match names another. Read it again.",
            version=request.version,
        )
    return request.version


class ApiMixin:
    """Mixed into every API view (DRF's APIView and generic views)."""

    # A token, or the browser's session (DRF checks CSRF on its unsafe methods).
    authentication_classes = [BearerTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated, ReadOnlyTokenPermission]
    throttle_classes = [CallerRateThrottle]
    _idempotency_row: IdempotentRequest | None = None

    def caller(self, request: Request) -> User:
        user = request.user
        assert isinstance(user, User), "IsAuthenticated ran before"
        return user

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)  # type: ignore[misc]
        key = request.headers.get(HEADER)
        if request.method == "POST" and key is not None:
            row, answer = idempotency_begin(request=request, caller=self.caller(request), key=key)
            if answer is not None:
                raise ProblemException(answer)
            self._idempotency_row = row

    def finalize_response(self, request: Request, response: Response, *args: Any, **kwargs: Any) -> Response:
        response = super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]
        row, self._idempotency_row = self._idempotency_row, None
        if row is not None:
            idempotency_finish(row=row, response=response)
        return response

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
        finally:
            credential_set(None)
            row, self._idempotency_row = self._idempotency_row, None
            if row is not None:  # an unhandled error: no answer to keep, the client may retry
                IdempotentRequest.objects.filter(pk=row.pk).delete()


class ApiView(ApiMixin, APIView):  # type: ignore[misc]
    pass
