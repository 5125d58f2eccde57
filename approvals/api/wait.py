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
import hashlib
import io
import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Hashable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, TypeVar, cast

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
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
    # A waiter must not hold a database connection while it waits: these reads run in
    # asgiref's one thread-sensitive thread, so the process keeps at most that thread's
    # one connection, reused as CONN_MAX_AGE allows (closing it after every read made each
    # wake pay a new PostgreSQL connection, seconds of lag once hundreds wake together).
    # Inside a test's transaction the connection is the test's own: it stays.
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


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


Read = tuple[dict[str, Any], str, int] | None
T = TypeVar("T")
# Work in flight in this process, by what it asks: many waiters of one caller (a
# pipeline's retries, a fan-out) arriving or woken together share one token check and one
# read instead of queueing hundreds on the database. Touched only from the event loop.
_in_flight: dict[Hashable, asyncio.Future[Any]] = {}
_FAILED = object()


async def _joined(key: Hashable, work: Callable[[], Awaitable[T]], *, fresh: Callable[[T], bool]) -> T:
    """`work()`'s result, or that of the same work already in flight when `fresh(result)`
    says it is recent enough."""
    running = _in_flight.get(key)
    if running is not None:
        result = await asyncio.shield(running)
        if result is not _FAILED and fresh(result):
            return cast("T", result)
    future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
    _in_flight[key] = future
    try:
        result = await work()
    except BaseException:
        future.set_result(_FAILED)  # the others do the work themselves
        raise
    else:
        future.set_result(result)
    finally:
        if _in_flight.get(key) is future:
            del _in_flight[key]
    return result


async def _shared_read(request_id: int, user: User, *, at_least: int = 0) -> Read:
    """The request as `user` sees it, at version `at_least` or later."""
    return await _joined(
        ("read", request_id, user.pk),
        lambda: sync_to_async(_read)(request_id, user),
        fresh=lambda result: result is None or result[2] >= at_least,
    )


async def _shared_token(header: str) -> tuple[ApiToken | None, str]:
    """The token of an Authorization header, checked once for all its concurrent waiters."""
    key = ("token", hashlib.sha256(header.encode("utf-8", "replace")).hexdigest())
    return await _joined(key, lambda: sync_to_async(_token)(header), fresh=lambda _: True)


_discarding: set[asyncio.Task[Any]] = set()


def _background(work: Any) -> None:
    task = asyncio.ensure_future(work)
    _discarding.add(task)  # a reference, so the task is not collected before it ran
    task.add_done_callback(_discarding.discard)


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
        token, reason = await _shared_token(header)
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
        first = await _shared_read(pk, caller)
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
                announced = message.get("event", {}).get("version")
                if announced == version:
                    continue  # a holder changed (a claim): the request itself did not
                latest = await _shared_read(
                    pk, caller, at_least=announced if isinstance(announced, int) else 0
                )
                if latest is None:
                    return _problem(404, "not_found", "Not found", f"Request {pk} is no longer yours to see.")
                representation, etag, current = latest
                if current != version:
                    return _answer(representation, etag)
    finally:
        # Unsubscribing is the layer's bookkeeping, not the client's business: it must not
        # hold the answer back (hundreds of waiters end together when a decision comes).
        _background(layer.group_discard(group, channel))
    if if_none_match:
        response = HttpResponse(status=304)
        response["ETag"] = etag
        return response
    return _answer(representation, etag)


# --- straight from the ASGI server ---------------------------------------------------------------

WAIT_ROUTE = re.compile(r"^/api/v1/requests/(\d+)/wait/$")


class TokenWaitRoute:
    """ASGI: a GET of the wait path with an Authorization header goes straight to
    `request_wait`, past Django's middleware stack; everything else goes to `app`.

    Some of that stack is sync-only (WhiteNoise, the session limits, the trace id): under
    it, Django runs an async view through a thread that is blocked for the whole wait, so
    a thousand waiters would be a thousand threads. Token callers need none of that stack
    (no session, no static files); a browser's session wait still takes the full path.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        match = WAIT_ROUTE.match(scope.get("path", "")) if scope["type"] == "http" else None
        has_token = any(name == b"authorization" for name, _ in scope.get("headers", []))
        if match is None or scope.get("method") != "GET" or not has_token:
            await self.app(scope, receive, send)
            return
        request = ASGIRequest(scope, io.BytesIO())
        try:
            request.get_host()  # ALLOWED_HOSTS, as Django's CommonMiddleware would check it
        except DisallowedHost:
            await _send(send, _problem(400, "invalid_input", "Invalid input", "Host not allowed."))
            return
        waiting = asyncio.ensure_future(request_wait(request, int(match.group(1))))
        disconnected = asyncio.ensure_future(_disconnect(receive))
        done, _ = await asyncio.wait({waiting, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        if waiting not in done:  # the client left: stop waiting for it
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            return
        disconnected.cancel()
        response = waiting.result()
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "no-store"
        await _send(send, response)


async def _disconnect(receive: Any) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _send(send: Any, response: HttpResponse) -> None:
    headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})
