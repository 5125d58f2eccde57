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
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.embedded")
django_asgi_app = get_asgi_application()

from asgiref.sync import sync_to_async  # noqa: E402
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
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
    """Runs the outbox relay beside the app for the lifetime of the server."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
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


application = LifespanWithRelay(
    ProtocolTypeRouter(
        {
            # API waiters with a token are served without a thread (approvals.api.wait).
            "http": TokenWaitRoute(django_asgi_app),
            "websocket": AllowedHostsOriginValidator(
                AuthMiddlewareStack(WebSocketSessionLimits(URLRouter(websocket_urlpatterns)))
            ),
        }
    )
)
