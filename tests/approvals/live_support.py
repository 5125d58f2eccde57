"""Talking to the real ASGI application's WebSockets from a test, as a browser would.

The sockets go through the whole stack of config.asgi (origin check, session auth, the
session limits, the router), signed in with a real session cookie. The consumers read the
database from worker threads, so tests using this are transactional; changes made while
a socket is open run through `changed` (a worker thread too), which lets their after-
commit pushes reach the sockets on the test's event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from config.asgi import application

T = TypeVar("T")
ORIGIN = b"http://localhost"


def session_cookie(user: User) -> str:
    """A signed-in session of `user`, as the Cookie header a browser sends."""
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def socket(path: str, *, cookie: str | None = None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    headers = [(b"origin", origin), (b"host", b"localhost")]
    if cookie is not None:
        headers.append((b"cookie", cookie.encode()))
    return WebsocketCommunicator(application, path, headers=headers)


async def changed(change: Callable[[], T]) -> T:
    """Run a database change (and its after-commit pushes) in a worker thread."""
    return await database_sync_to_async(change)()


async def next_message(ws: WebsocketCommunicator, *, timeout: float = 5) -> dict[str, Any]:
    message: dict[str, Any] = await ws.receive_json_from(timeout=timeout)
    return message


async def next_of(ws: WebsocketCommunicator, kind: str, *, timeout: float = 5) -> dict[str, Any]:
    """The next message of type `kind`, skipping others (fails after `timeout`)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        message = await next_message(ws, timeout=max(left, 0.01))
        if message["type"] == kind:
            return message


async def events_until_quiet(ws: WebsocketCommunicator, *, quiet: float = 0.5) -> list[dict[str, Any]]:
    """Every message that arrives until none has for `quiet` seconds."""
    found = []
    while not await ws.receive_nothing(timeout=quiet):
        found.append(await next_message(ws))
    return found


async def closed_with(ws: WebsocketCommunicator, *, timeout: float = 6) -> int | None:
    """The close code the server ends an accepted socket with (skipping other messages)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = max(deadline - asyncio.get_running_loop().time(), 0.01)
        output = await ws.receive_output(timeout=left)
        if output["type"] == "websocket.close":
            code: int | None = output.get("code")
            return code
