"""ASGI entry point: HTTP and WebSockets in one process (the embedded mode), or the
WebSocket tier in production.

In the embedded mode the channel layer lives in this process, so the outbox relay runs
here too, started and stopped with the server through the ASGI lifespan protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.embedded")
django_asgi_app = get_asgi_application()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.auth import AuthMiddleware  # noqa: E402
from channels.routing import URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from channels.sessions import CookieMiddleware, SessionMiddleware  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import close_old_connections  # noqa: E402

from accounts.sessions import WebSocketSessionLimits  # noqa: E402
from approvals.api.wait import TokenWaitRoute  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from workflows.outbox import channel_layer_hosted, outbox_relay_drain  # noqa: E402

logger = logging.getLogger("baton.relay")


def _relay_pass() -> None:
    close_old_connections()
    try:
        outbox_relay_drain()
    finally:
        close_old_connections()


async def _relay_forever() -> None:
    # thread_sensitive=False: a pass must not queue behind request handlers; channel
    # sends made in that thread are still run on this event loop by asgiref.
    relay = sync_to_async(_relay_pass, thread_sensitive=False)
    while True:
        try:
            await relay()
        except Exception:
            logger.exception("outbox relay pass failed; retrying")
        await asyncio.sleep(settings.OUTBOX_RELAY_INTERVAL)


class LifespanWithRelay:
    """Runs the outbox relay beside the app for the lifetime of the server, and hands
    every other scope to the app for its type."""

    def __init__(self, apps: dict[str, Any]) -> None:
        self.apps = apps

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        # The type router too (Channels' ProtocolTypeRouter would be one more frame kept
        # alive under each open socket). A coroutine, so servers take it for ASGI 3.
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] not in self.apps:
            raise ValueError(f"No application configured for scope type {scope['type']!r}")
        return await self.apps[scope["type"]](scope, receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        task: asyncio.Task[None] | None = None
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                channel_layer_hosted()
                if settings.OUTBOX_RELAY_IN_ASGI:
                    task = asyncio.create_task(_relay_forever())
                    logger.info("outbox relay running in this process")
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await send({"type": "lifespan.shutdown.complete"})
                return


class _HandedOn(tuple[Any, Any, Any]):
    """(scope, receive, send) as a middleware passed them to its inner application."""


async def _hand_on(scope: dict[str, Any], receive: Any, send: Any) -> _HandedOn:
    return _HandedOn((scope, receive, send))


class MiddlewareInTurn:
    """Channels middleware run one after another instead of nested.

    Nested, each layer's coroutine awaits the next for as long as the socket is open,
    keeping its frame and its copy of the scope: about 0.5 KB per layer per idle socket.
    Here each layer is built around a stand-in inner application that returns what it
    was handed; the layer's coroutine then ends, and the next layer (finally the app) is
    called with that. Only for layers that call their inner application last and return
    its result (Channels' origin, cookie, session and auth middleware and ours): a layer
    that answers by itself (a refused origin) returns something else, which ends here.
    """

    def __init__(self, *layers: Callable[[Any], Any], app: Any) -> None:
        self.layers = [layer(_hand_on) for layer in layers]
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        for layer in self.layers:
            handed = await layer(scope, receive, send)
            if not isinstance(handed, _HandedOn):
                return handed
            scope, receive, send = handed
        return await self.app(scope, receive, send)


application = LifespanWithRelay(
    {
        # API waiters with a token are served without a thread (approvals.api.wait).
        "http": TokenWaitRoute(django_asgi_app),
        # AllowedHostsOriginValidator(AuthMiddlewareStack(WebSocketSessionLimits(router))),
        # in turn rather than nested.
        "websocket": MiddlewareInTurn(
            AllowedHostsOriginValidator,
            CookieMiddleware,
            SessionMiddleware,
            AuthMiddleware,
            WebSocketSessionLimits,
            app=URLRouter(websocket_urlpatterns),
        ),
    }
)
