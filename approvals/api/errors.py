"""Every API error as RFC 9457 problem details (`application/problem+json`).

Domain errors (workflows.errors) keep their meaning: not found and not allowed to see
are the same 404, forbidden to act 403 with the reason, wrong state 409 with the current
state, a stale version 412 (the client's If-Match or `expected_version`), bad input 400
with `errors: [{field, message}]`.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from workflows import errors

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
TYPE_BASE = "https://baton.invalid/problems/"


def problem(
    *,
    status_code: int,
    code: str,
    title: str,
    detail: str,
    field_errors: list[dict[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    """One problem answer. `code` names the problem's type (and is given as `code` too)."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status_code,
        "detail": detail,
        "code": code,
    }
    if field_errors:
        body["errors"] = field_errors
    body.update(extra)
    return Response(body, status=status_code, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


class StateConflict(errors.TransitionNotAllowed):
    """A wrong-state refusal that knows the item's current state (said in the 409)."""

    def __init__(self, detail: str, *, state: str) -> None:
        super().__init__(detail)
        self.state = state


class PreconditionFailed(errors.StaleVersion):
    """The client's If-Match names another version than the current one."""

    def __init__(self, detail: str, *, version: int) -> None:
        super().__init__(detail)
        self.version = version


class ProblemException(exceptions.APIException):
    """An answer made in advance (an idempotent replay, a 409 for a key still running):
    the handler returns it as it is."""

    def __init__(self, response: Response) -> None:
        super().__init__(detail="")
        self.response = response


def flatten_field_errors(detail: Any, prefix: str = "") -> list[dict[str, str]]:
    """DRF's nested error detail as a flat list of {field, message}; dotted field paths."""
    found: list[dict[str, str]] = []
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = "" if key == "non_field_errors" else str(key)
            found += flatten_field_errors(value, f"{prefix}.{name}" if prefix and name else prefix or name)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, dict):
                found += flatten_field_errors(value, f"{prefix}.{index}" if prefix else str(index))
            elif isinstance(value, list):
                found += flatten_field_errors(value, prefix)
            else:
                found.append({"field": prefix, "message": str(value)})
    else:
        found.append({"field": prefix, "message": str(detail)})
    return found


def domain_field_errors(field_errors: dict[str, list[str]]) -> list[dict[str, str]]:
    return [{"field": name, "message": m} for name, messages in field_errors.items() for m in messages]


def _domain_problem(exc: errors.WorkflowError) -> Response:
    if isinstance(exc, PreconditionFailed):
        return problem(
            status_code=status.HTTP_412_PRECONDITION_FAILED,
            code="stale_version",
            title="The request changed since you read it",
            detail=exc.detail,
            version=exc.version,
        )
    if isinstance(exc, errors.StaleVersion):
        return problem(
            status_code=status.HTTP_412_PRECONDITION_FAILED,
            code="stale_version",
            title="The request changed since you read it",
            detail=exc.detail,
        )
    if isinstance(exc, errors.InvalidInput):
        return problem(
            status_code=status.HTTP_400_BAD_REQUEST,
            code=exc.code,
            title=exc.title,
            detail=exc.detail,
            field_errors=domain_field_errors(exc.field_errors),
        )
    extra: dict[str, Any] = {}
    if isinstance(exc, StateConflict):
        extra["state"] = exc.state
    return problem(status_code=exc.http_status, code=exc.code, title=exc.title, detail=exc.detail, **extra)


_DRF_CODES: dict[type[exceptions.APIException], tuple[str, str]] = {
    exceptions.NotAuthenticated: ("not_authenticated", "Authentication required"),
    exceptions.AuthenticationFailed: ("authentication_failed", "Authentication failed"),
    exceptions.PermissionDenied: ("forbidden", "Forbidden"),
    exceptions.NotFound: ("not_found", "Not found"),
    exceptions.MethodNotAllowed: ("method_not_allowed", "Method not allowed"),
    exceptions.NotAcceptable: ("not_acceptable", "Not acceptable"),
    exceptions.UnsupportedMediaType: ("unsupported_media_type", "Unsupported media type"),
    exceptions.ParseError: ("malformed_request", "Malformed request"),
    exceptions.Throttled: ("throttled", "Too many requests"),
}


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's EXCEPTION_HANDLER: every error as problem details; a half-done change rolls back."""
    if isinstance(exc, ProblemException):
        return exc.response
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, errors.WorkflowError):
        set_rollback()
        return _domain_problem(exc)
    if not isinstance(exc, exceptions.APIException):
        return None  # a real bug: Django's 500 handling (and its logging) applies
    set_rollback()
    headers: dict[str, str] = {}
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        request = context.get("request")
        authenticate_header = context["view"].get_authenticate_header(request) if request else None
        if authenticate_header:
            headers["WWW-Authenticate"] = authenticate_header
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        headers["Retry-After"] = str(math.ceil(wait))
    if isinstance(exc, exceptions.ValidationError):
        return problem(
            status_code=status.HTTP_400_BAD_REQUEST,
            code="invalid_input",
            title="Invalid input",
            detail="Some fields are not valid; see errors.",
            field_errors=flatten_field_errors(exc.detail),
        )
    code, title = next((v for k, v in _DRF_CODES.items() if isinstance(exc, k)), ("error", "Error"))
    return problem(
        status_code=exc.status_code, code=code, title=title, detail=str(exc.detail), headers=headers
    )


@csrf_exempt  # it changes nothing; a CSRF 403 would hide the 404
def api_not_found(request: object, *args: object, **kwargs: object) -> HttpResponse:
    """Any path under /api/v1/ that names no endpoint (or a malformed id): a 404 problem,
    not the web's HTML page."""
    body = {
        "type": TYPE_BASE + "not_found",
        "title": "Not found",
        "status": 404,
        "detail": "No such endpoint or item.",
        "code": "not_found",
    }
    return HttpResponse(json.dumps(body), status=404, content_type=PROBLEM_CONTENT_TYPE)
