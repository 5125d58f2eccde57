"""Too-large requests answered with a clear 413, never a debug page or a bare 400.

Two limits apply to a request body:
- settings.REQUEST_MAX_BYTES, on the whole body (files included), checked against the
  Content-Length header before anything is parsed;
- Django's DATA_UPLOAD_MAX_MEMORY_SIZE, on the form fields that are not files, which Django
  enforces by raising RequestDataTooBig while it parses the form.

Django turns RequestDataTooBig into a 400 (or, with DEBUG on, its technical page) wherever it
is raised, usually in the CSRF middleware. This middleware sits before the CSRF middleware and
parses form posts itself, so that the refusal is ours: a 413 page for people, an RFC 9457
problem for API clients.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.template.loader import render_to_string

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
STATUS = 413


def _wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.startswith("/api/") or ("json" in accept and "html" not in accept)


def too_large_response(request: HttpRequest, *, reason: str, limit: int, sent: int | None) -> HttpResponse:
    """The 413 answer: problem JSON for API clients, else the 413 page.

    Renders without the request's context processors: the body was never read, so nothing
    (the session included) should be touched to say so.
    """
    if _wants_json(request):
        problem = {
            "type": "about:blank",
            "title": "Request too large",
            "status": STATUS,
            "detail": f"{reason} The limit is {limit} bytes.",
            "limit": limit,
        }
        return JsonResponse(problem, status=STATUS, content_type="application/problem+json")
    html = render_to_string("413.html", {"reason": reason, "limit": limit, "sent": sent})
    return HttpResponse(html, status=STATUS)


def _declared_length(request: HttpRequest) -> int | None:
    raw = request.META.get("CONTENT_LENGTH") or ""
    return int(raw) if raw.isdigit() else None


class RequestSizeLimitMiddleware:
    """Refuses a body over REQUEST_MAX_BYTES unread, and a form whose fields (files aside)
    exceed DATA_UPLOAD_MAX_MEMORY_SIZE, with a 413. Must come before CsrfViewMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        # Read per request, so that a test (or an operator reloading settings) can change it.
        max_bytes = int(settings.REQUEST_MAX_BYTES)
        declared = _declared_length(request)
        if declared is not None and declared > max_bytes:
            return too_large_response(
                request,
                reason="The request is larger than this site accepts, files included.",
                limit=max_bytes,
                sent=declared,
            )
        if request.method == "POST" and request.content_type in FORM_TYPES:
            try:
                # Parsing here is what the CSRF middleware would do next anyway; doing it
                # first lets a too-large form be told apart from a malformed one.
                request.POST  # noqa: B018
            except RequestDataTooBig:
                limit = int(settings.DATA_UPLOAD_MAX_MEMORY_SIZE or 0)
                return too_large_response(
                    request,
                    reason="The text of the form you sent is larger than this site accepts.",
                    limit=limit,
                    sent=declared,
                )
        return self.get_response(request)
