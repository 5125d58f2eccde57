"""Listening on the configured channel layer from a test, as a connected browser would.

The in-memory layer (SQLite runs) is read with `async_to_sync`, one call at a time. The
Redis pub/sub layer (PostgreSQL + Redis runs) keeps its subscriptions per event loop, and
a `receive` that is cancelled (a timeout) drops its channel for good, as a consumer that
went away. So its listeners live on one event loop in a thread of their own for the
whole test process, each read without pause into a queue of its own that the test waits
on; a listener waits until its subscriptions are live before it is handed out.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Coroutine
from typing import Any, TypeVar

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer

T = TypeVar("T")
PROBE = "listening.probe"


class _LoopThread:
    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="test-listener", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


_loop = _LoopThread()
# What each pub/sub listener received so far, filled by a reader task per channel.
_received: dict[str, asyncio.Queue[dict[str, Any]]] = {}


def _layer() -> Any:
    layer = get_channel_layer()
    assert layer is not None
    return layer


async def _awaited(coroutine: Coroutine[Any, Any, T]) -> T:
    return await coroutine


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    if isinstance(_layer(), RedisPubSubChannelLayer):
        return _loop.run(coroutine)
    return async_to_sync(_awaited)(coroutine)


def channel_listen(*groups: str) -> str:
    """A new channel on the configured layer, added to `groups`; returns its name."""
    layer = _layer()

    async def join() -> str:
        name: str = await layer.new_channel()
        for group in groups:
            await layer.group_add(group, name)
        if isinstance(layer, RedisPubSubChannelLayer):
            queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
            _received[name] = queue
            _readers.add(asyncio.ensure_future(_read(layer, name, queue)))
            await _subscribed(layer, name, groups)
        return name

    return _run(join())


_readers: set[asyncio.Future[None]] = set()


async def _read(layer: Any, name: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
    while True:
        queue.put_nowait(await layer.receive(name))


async def _next(layer: Any, channel: str, timeout: float) -> dict[str, Any]:
    """The channel's next message, within `timeout` seconds (TimeoutError otherwise)."""
    queue = _received.get(channel)
    if queue is not None:
        return await asyncio.wait_for(queue.get(), timeout)
    message: dict[str, Any] = await asyncio.wait_for(layer.receive(channel), timeout)
    return message


async def _subscribed(layer: Any, name: str, groups: tuple[str, ...]) -> None:
    """Wait until a message sent to each group reaches `name` (SUBSCRIBE is asynchronous)."""
    for group in groups:
        token = uuid.uuid4().hex
        deadline = time.monotonic() + 10
        while True:
            await layer.group_send(group, {"type": PROBE, "token": token})
            try:
                while True:
                    message = await _next(layer, name, 0.2)
                    if message.get("type") == PROBE and message.get("token") == token:
                        break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"never subscribed to {group}") from None
                continue
            break
    # Probes of earlier rounds may still be on their way: let them arrive and drop them.
    try:
        while True:
            message = await _next(layer, name, 0.1)
            assert message.get("type") == PROBE, f"a message arrived before anything was sent: {message}"
    except TimeoutError:
        return


def channel_receive(
    channel: str, *, count: int, timeout: float = 2.0, quiet: float = 0.2
) -> list[dict[str, Any]]:
    """Receive `count` messages (failing after `timeout` for any one), then check that no
    further message arrives within `quiet` seconds."""
    layer = _layer()

    async def drain() -> list[dict[str, Any]]:
        received = [await _next(layer, channel, timeout) for _ in range(count)]
        try:
            extra = await _next(layer, channel, quiet)
        except TimeoutError:
            return received
        raise AssertionError(f"an unexpected extra message arrived: {extra}")

    return _run(drain())


def channel_collect(
    channel: str, *, expected: int, timeout: float, linger: float = 0.5
) -> list[dict[str, Any]]:
    """Collect messages until `expected` arrived (or `timeout`), then `linger` seconds more,
    so that a duplicate or an extra message would show up too."""
    layer = _layer()

    async def collect() -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            wait = linger if len(messages) >= expected else remaining
            if wait <= 0:
                return messages
            try:
                messages.append(await _next(layer, channel, wait))
            except TimeoutError:
                return messages

    return _run(collect())
