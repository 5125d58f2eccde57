"""channels-redis's pub/sub layer with a lighter inbox per consumer channel.

The pub/sub layer keeps one `asyncio.Queue` per consumer channel, that is per open
WebSocket: four deques and an Event, about 3.3 KB each (measured with tracemalloc on an
idle socket), to hold what is nearly always nothing. `ChannelInbox` holds the same
messages in a deque made only while there are some, and one future while the consumer
waits: about a hundred bytes when idle. Everything else is the layer's own code.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer
from channels_redis.utils import _wrap_close


class ChannelInbox:
    """The messages waiting for one consumer channel, unbounded like the layer's Queue
    (the pub/sub layer has no capacity: Redis's output buffer limit is the bound).

    The two calls the layer makes: `put_nowait` from its receiving task, `get` from the
    consumer (one per channel in Channels; several are served in turn, as by a Queue)."""

    __slots__ = ("_messages", "_waiters")

    def __init__(self) -> None:
        self._messages: deque[Any] | None = None
        self._waiters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, message: Any) -> None:
        if self._messages is None:
            self._messages = deque()
        self._messages.append(message)
        self._wake_one()

    async def get(self) -> Any:
        while not self._messages:
            waiter = asyncio.get_running_loop().create_future()
            if self._waiters is None:
                self._waiters = []
            self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled() and self._messages:
                    # Woken for a message, then cancelled: hand it to the next waiter.
                    self._wake_one()
                raise
            finally:
                if not self._waiters:
                    self._waiters = None
        message = self._messages.popleft()
        if not self._messages:
            self._messages = None  # an empty deque alone is 600 bytes
        return message

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def qsize(self) -> int:
        return len(self._messages or ())

    def empty(self) -> bool:
        return not self._messages


class LeanPubSubLoopLayer(RedisPubSubLoopLayer):
    async def _subscribe_to_channel(self, channel: str) -> None:
        self.channels[channel] = ChannelInbox()
        await self._get_shard(channel).subscribe(channel)


class LeanPubSubChannelLayer(RedisPubSubChannelLayer):
    """RedisPubSubChannelLayer whose per-event-loop layers keep a ChannelInbox per channel."""

    def _get_layer(self) -> LeanPubSubLoopLayer:
        # As the parent's, with the subclass: it names its loop layer's class inline.
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = LeanPubSubLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer
