"""Session limits: an idle timeout, an absolute lifetime, log out everywhere, deactivation.

- Idle: a session with no request for SESSION_IDLE_TIMEOUT seconds ends at the next one.
- Absolute: a session ends SESSION_ABSOLUTE_TIMEOUT seconds after its login, busy or not.
- Everywhere: `sessions_end_everywhere(user)` raises the user's session generation; each
  session carries a hash of it from its login (see User.get_session_auth_hash), so every
  session of that person, on any device and any session backend, is refused and flushed by
  Django at its next request (Channels does the same when a WebSocket connects).
- Deactivated: Django's ModelBackend refuses an inactive user when it loads the session's
  user; this middleware then flushes what is left of that session.

A session that ends here is logged out (Django's `logout`, so its signal fires and the
session row is deleted) and the login page says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY, logout, user_logged_in
from django.contrib.auth.models import AnonymousUser
from django.db.models import F
from django.dispatch import Signal, receiver
from django.http import HttpRequest, HttpResponseBase

from accounts.models import User

logger = logging.getLogger("baton.security")

LOGGED_IN_AT = "baton_logged_in_at"
SEEN_AT = "baton_seen_at"
# Activity is written to the session at most this often (a write per request would cost
# a database write on every page with the database session backend).
SEEN_RESOLUTION = 60


def clock() -> float:
    """Seconds since the epoch; the one place the session limits read the time."""
    return time.time()


def session_end_reason(session: Any, now: float) -> str | None:
    """Why this session must end now, in words for the person; None while it may go on."""
    logged_in_at = session.get(LOGGED_IN_AT)
    seen_at = session.get(SEEN_AT)
    absolute, idle = settings.SESSION_ABSOLUTE_TIMEOUT, settings.SESSION_IDLE_TIMEOUT
    if isinstance(logged_in_at, int | float) and now - logged_in_at >= absolute:
        return f"Your session ended {_duration(absolute)} after you logged in. Please log in again."
    if isinstance(seen_at, int | float) and now - seen_at >= idle:
        return f"You were logged out after {_duration(idle)} without activity. Please log in again."
    return None


def _duration(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    minutes = max(int(seconds // 60), 1)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def session_stamp(session: Any, now: float) -> None:
    """Note activity, and make the stored session expire when the limits would end it anyway."""
    logged_in_at = session.get(LOGGED_IN_AT)
    if not isinstance(logged_in_at, int | float):
        # A session from before the limits existed: its lifetime counts from now.
        session[LOGGED_IN_AT] = logged_in_at = now
    seen_at = session.get(SEEN_AT)
    if isinstance(seen_at, int | float) and now - seen_at < SEEN_RESOLUTION:
        return
    session[SEEN_AT] = now
    left = min(
        settings.SESSION_IDLE_TIMEOUT + SEEN_RESOLUTION,
        settings.SESSION_ABSOLUTE_TIMEOUT - (now - logged_in_at),
    )
    session.set_expiry(max(int(left), 1))


@receiver(user_logged_in, dispatch_uid="accounts.sessions.stamp_login")
def _login_stamped(sender: Any, request: HttpRequest | None = None, **_: Any) -> None:
    session = getattr(request, "session", None)
    if session is None:
        return
    now = clock()
    session[LOGGED_IN_AT] = now
    session.pop(SEEN_AT, None)
    session_stamp(session, now)


# Sent with `user` when all their sessions ended (an update, so no post_save): open
# WebSockets listen for it through workflows.subscriptions and close.
sessions_ended = Signal()


def sessions_end_everywhere(user: User) -> None:
    """End every session of `user` (each is refused at its next request).

    Side effect: sends `sessions_ended`."""
    User.objects.filter(pk=user.pk).update(session_generation=F("session_generation") + 1)
    user.refresh_from_db(fields=["session_generation"])
    sessions_ended.send(sender=User, user=user)
    logger.info("all sessions ended for user %s (id %s)", user.username, user.pk)


class SessionLimitsMiddleware:
    """Ends sessions past their idle or absolute limit, and leftovers of refused users."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            now = clock()
            reason = session_end_reason(request.session, now)
            if reason is not None:
                logger.info("session ended for user %s: %s", user.get_username(), reason)
                logout(request)
                messages.info(request, reason)
            else:
                session_stamp(request.session, now)
        elif user is not None and SESSION_KEY in request.session:
            # A session naming a user Django refused to load (deactivated, deleted, or
            # ended everywhere): nothing of it may outlive the refusal.
            request.session.flush()
        return self.get_response(request)


class WebSocketSessionLimits:
    """Channels middleware, inside AuthMiddlewareStack: a WebSocket whose session is past
    its idle or absolute limit connects as nobody (the consumers then refuse it, 4401).

    Deactivated users and sessions ended everywhere are already refused by Channels' own
    session check. A socket that is already open is not cut; it ends at its next reconnect.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if (
            scope.get("session") is not None
            and scope.get("user") is not None
            and await database_sync_to_async(_session_over)(scope)
        ):
            scope = {**scope, "user": AnonymousUser()}
        return await self.inner(scope, receive, send)


def _session_over(scope: dict[str, Any]) -> bool:
    user = scope["user"]
    return bool(user.is_authenticated) and session_end_reason(scope["session"], clock()) is not None
