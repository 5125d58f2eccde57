"""`GET /api/v1/requests/{id}/wait/?seconds=30`: hold the answer until the request
changes (or the wait ends), for clients that must stop and ask a person.

An async view on a path of its own, so production can route it to the ASGI processes.
It reads the database only before and after waiting, each time through `sync_to_async`,
and gives its connection back before it waits: a waiter holds an open socket and a
channel subscription, no database connection and no thread. It is woken by the request's
live events (workflows.services.instance_channel_group; the outbox pushes them right
after commit) and then reads again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.http import HttpRequest, HttpResponse

from accounts.models import ApiToken, User
from accounts.tokens import api_token_authenticate
from approvals.api.auth import CallerRateThrottle
from approvals.api.base import etag_of
from approvals.api.errors import PROBLEM_CONTENT_TYPE, TYPE_BASE
from approvals.api.representations import request_representation
from approvals.models import ApprovalRequest
from approvals.selectors.api import request_detail
from workflows.services import instance_channel_group

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

WAIT_DEFAULT = 30
WAIT_MAX = 60


def _problem(status: int, code: str, title: str, detail: str, **extra: Any) -> HttpResponse:
    body = {
        "type": TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }
    response = HttpResponse(json.dumps(body), status=status, content_type=PROBLEM_CONTENT_TYPE)
    if status == 401:
        response["WWW-Authenticate"] = 'Bearer realm="api"'
    return response


def _release_connection() -> None:
    # A waiter must not hold a database connection while it waits. Inside a test's
    # transaction the connection is the test's own: it stays.
    if not connection.in_atomic_block:
        connection.close()


def _token(header: str) -> tuple[ApiToken | None, str]:
    try:
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            return None, "Send 'Authorization: Bearer <token>'."
        return api_token_authenticate(raw.strip())
    finally:
        _release_connection()


def _throttle_wait(request: HttpRequest, *, user: User, token: ApiToken | None) -> float | None:
    """Seconds to come back after, when the caller's budget (the API's throttle, the same
    per-token count) is spent; None when the call may go on."""
    throttle = CallerRateThrottle()
    caller = SimpleNamespace(auth=token, user=user, META=request.META)
    if throttle.allow_request(caller, None):  # type: ignore[arg-type]
        return None
    return throttle.wait() or 1.0


def _read(request_id: int, user: User) -> tuple[dict[str, Any], str, int] | None:
    """The representation, its ETag and version, or None (404); the connection is released."""
    try:
        detail = request_detail(request_id=request_id, user=user)
        if detail is None:
            return None
        return request_representation(detail), etag_of(detail.request), detail.request.version
    finally:
        _release_connection()


def _answer(representation: dict[str, Any], etag: str) -> HttpResponse:
    response = HttpResponse(
        json.dumps(representation, cls=DjangoJSONEncoder), content_type="application/json"
    )
    response["ETag"] = etag
    return response


async def _caller(request: HttpRequest) -> User | HttpResponse:
    """The caller (a token's owner, or the session's person), or the problem to answer:
    401 without valid credentials, 429 (with Retry-After) past the throttle."""
    header = request.headers.get("Authorization", "")
    token: ApiToken | None = None
    if header:
        token, reason = await sync_to_async(_token)(header)
        if token is None:
            return _problem(401, "authentication_failed", "Authentication failed", reason)
        user: User = token.owner
    else:
        session_user: User | AnonymousUser = await request.auser()
        await sync_to_async(_release_connection)()
        if not (isinstance(session_user, User) and session_user.is_active):
            return _problem(
                401, "not_authenticated", "Authentication required", "Sign in or send a Bearer token."
            )
        user = session_user
    retry_after = await sync_to_async(_throttle_wait)(request, user=user, token=token)
    if retry_after is not None:
        response = _problem(429, "throttled", "Too many requests", "Slow down; see Retry-After.")
        response["Retry-After"] = str(math.ceil(retry_after))
        return response
    return user


async def request_wait(request: HttpRequest, pk: int) -> HttpResponse:
    """Answer at once when the client's If-None-Match is not the current version;
    otherwise wait up to `seconds` (at most 60) for the request to change: 200 with the
    new representation, or, if nothing changed, 304 (If-None-Match given) or 200 with the
    unchanged one."""
    if request.method != "GET":
        return _problem(405, "method_not_allowed", "Method not allowed", "Only GET waits.")
    raw_seconds = request.GET.get("seconds", str(WAIT_DEFAULT))
    if not raw_seconds.isdigit() or not 0 <= int(raw_seconds) <= WAIT_MAX:
        return _problem(
            400,
            "invalid_input",
            "Invalid input",
            f"seconds must be a whole number from 0 to {WAIT_MAX}.",
            errors=[{"field": "seconds", "message": f"A whole number from 0 to {WAIT_MAX}."}],
        )
    seconds = int(raw_seconds)
    caller = await _caller(request)
    if isinstance(caller, HttpResponse):
        return caller
    if_none_match = [v.strip() for v in request.headers.get("If-None-Match", "").split(",") if v.strip()]

    layer = get_channel_layer()
    channel = await layer.new_channel()
    group = instance_channel_group(ApprovalRequest(pk=pk))
    # Subscribe before reading: a change between the read and the wait still wakes us.
    await layer.group_add(group, channel)
    try:
        first = await sync_to_async(_read)(pk, caller)
        if first is None:
            return _problem(
                404, "not_found", "Not found", f"Request {pk} does not exist, or is not yours to see."
            )
        representation, etag, version = first
        if if_none_match and etag not in if_none_match:
            return _answer(representation, etag)
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                message = await asyncio.wait_for(layer.receive(channel), timeout=left)
                if message.get("event", {}).get("version") == version:
                    continue  # a holder changed (a claim): the request itself did not
                latest = await sync_to_async(_read)(pk, caller)
                if latest is None:
                    return _problem(404, "not_found", "Not found", f"Request {pk} is no longer yours to see.")
                representation, etag, current = latest
                if current != version:
                    return _answer(representation, etag)
    finally:
        await layer.group_discard(group, channel)
    if if_none_match:
        response = HttpResponse(status=304)
        response["ETag"] = etag
        return response
    return _answer(representation, etag)
