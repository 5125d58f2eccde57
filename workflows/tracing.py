"""A trace id per request or task, recorded on every audit entry it causes."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

_trace_id: ContextVar[str | None] = ContextVar("baton_trace_id", default=None)
# The API credential (token) the current request authenticated with, if any: every audit
# entry the request causes names it (workflows.audit.audit_entry_build).
_credential: ContextVar[dict[str, object] | None] = ContextVar("baton_credential", default=None)
_VALID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")


def trace_id_current() -> str:
    """The trace id of the current request or task, or a fresh one."""
    return _trace_id.get() or uuid.uuid4().hex


def credential_current() -> dict[str, object] | None:
    """The API token of the current request (id, name, service account or not), or None."""
    return _credential.get()


def credential_set(value: dict[str, object] | None) -> None:
    """Set by the API's token authentication for the rest of the request; cleared with None."""
    _credential.set(value)


def trace_id_set(value: str | None) -> None:
    _trace_id.set(value if value and _VALID.match(value) else None)


class TraceIdMiddleware:
    """Takes X-Request-ID from the proxy when it is well-formed, else makes one."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        incoming = request.headers.get("X-Request-ID", "")
        value = incoming if _VALID.match(incoming) else uuid.uuid4().hex
        token = _trace_id.set(value)
        try:
            response = self.get_response(request)
        finally:
            _trace_id.reset(token)
        response["X-Request-ID"] = value
        return response
