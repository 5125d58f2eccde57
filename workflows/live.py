"""Live streams: numbered events per stream, with an epoch, and a short log to catch up from.

A stream is what one WebSocket subscription hears: a user's private stream
('inbox.user.<id>'), a group's ('inbox.group.<id>') or one instance's watchers'
('instance.<app>.<model>.<pk>'); its name is the Channels group it is delivered to.
Every event delivered on a stream gets the next number of that stream at delivery time
(after commit, from the outbox). A client keeps the last number it saw per stream, so a
missing number reveals a message channels-redis dropped (past Redis's pub/sub buffer or
while a process was cut off), and on reconnect it asks for what it missed.

Numbers are per stream rather than per user: a user's connection is subscribed to a few
streams, and a number per stream and subscription detects a gap exactly as a per-user
number would, without fanning one group event out into one write per member.

The epoch names one life of the counters. With Redis it is a key set once (SET NX); when
Redis restarts without its data the counters restart with a new epoch, and a client that
sees a different epoch re-renders (`resync`) instead of trusting its numbers. Without Redis
(the embedded mode, one process) the counters and logs live in this process.

With channels-redis's pub/sub layer one Lua script numbers, logs and PUBLISHes each event,
atomically, so numbers reach subscribers in order on each stream.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import uuid4

import msgpack
import redis
import redis.asyncio as aioredis
from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.serializers import MsgPackSerializer
from django.conf import settings

_T = TypeVar("_T")

RELAY_MESSAGE_TYPE = "relay.event"
# The control message that makes open sockets of a user re-check what they may hear.
RECHECK_MESSAGE_TYPE = "live.recheck"
STREAM_PREFIXES = ("inbox.", "instance.")


def stream_is_numbered(group: str) -> bool:
    """Whether events sent to Channels group `group` are numbered (a live stream)."""
    return group.startswith(STREAM_PREFIXES)


def control_group(user_id: int) -> str:
    """The Channels group every open socket of one user joins for control messages."""
    return f"live.control.user.{user_id}"


@dataclass(frozen=True)
class Missed:
    """One logged event of a stream, as a client that missed it is sent it."""

    stream: str
    seq: int
    event: dict[str, Any]

    def message(self, epoch: str) -> dict[str, Any]:
        return {"type": "event", "stream": self.stream, "epoch": epoch, "seq": self.seq, "event": self.event}


def pubsub_target(layer: Any) -> tuple[str, str] | None:
    """(Redis URL, channel prefix) when `layer` is the pub/sub layer on one Redis."""
    if not isinstance(layer, RedisPubSubChannelLayer):
        return None
    config = settings.CHANNEL_LAYERS.get("default", {}).get("CONFIG", {})
    hosts = config.get("hosts") or []
    if len(hosts) != 1 or not isinstance(hosts[0], str):
        return None  # sharded or configured by dict: the layer's own group_send knows how
    return hosts[0], config.get("prefix", "asgi")


def numbered_in_redis(layer: Any) -> bool:
    """Whether the Lua script can build this layer's messages: plain msgpack, no
    encryption, no random prefix (what the pub/sub layer's serializer does by default)."""
    serializer = getattr(layer, "_serializer", None)
    return (
        pubsub_target(layer) is not None
        and isinstance(serializer, MsgPackSerializer)
        and not serializer.crypter
        and serializer.random_prefix_length == 0
    )


def _log_fresh(moment: float) -> bool:
    return time.time() - moment <= settings.LIVE_LOG_SECONDS


def _catch_up(
    stream: str, after: int, head: int, entries: list[tuple[int, float, str]]
) -> list[Missed] | None:
    """The events numbered after..head from a stream's log, or None when the log no
    longer holds all of them (trimmed by length or age, or `after` is a number of an
    earlier life of the stream, whose counter expired): the client must re-render."""
    wanted = [e for e in entries if after < e[0] <= head]
    if len(wanted) != head - after or [e[0] for e in wanted] != list(range(after + 1, head + 1)):
        return None
    if any(not _log_fresh(moment) for _, moment, _ in wanted):
        return None
    return [Missed(stream=stream, seq=seq, event=json.loads(body)) for seq, _, body in wanted]


# --- in this process (embedded mode, tests) -------------------------------------------------


class MemoryStreams:
    """Counters and logs in this process; the epoch is this process's life."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.epoch = uuid4().hex
        self._heads: dict[str, int] = {}
        self._logs: dict[str, deque[tuple[int, float, str]]] = {}

    def stamp(self, stream: str, event: dict[str, Any]) -> tuple[str, int]:
        """Number `event` on `stream` and log it; returns (epoch, seq)."""
        with self._lock:
            seq = self._heads.get(stream, 0) + 1
            self._heads[stream] = seq
            log = self._logs.setdefault(stream, deque(maxlen=settings.LIVE_LOG_LENGTH))
            log.append((seq, time.time(), json.dumps(event)))
            return self.epoch, seq

    def heads(self, streams: list[str]) -> tuple[str, dict[str, int]]:
        with self._lock:
            return self.epoch, {s: self._heads.get(s, 0) for s in streams}

    def since(self, stream: str, after: int, head: int) -> list[Missed] | None:
        with self._lock:
            entries = list(self._logs.get(stream, ()))
        return _catch_up(stream, after, head, entries)

    def restart(self) -> None:
        """Forget everything, as a Redis restarted without its data would."""
        with self._lock:
            self.epoch = uuid4().hex
            self._heads.clear()
            self._logs.clear()


memory_streams = MemoryStreams()


# --- in Redis (production) ---------------------------------------------------------------------

# KEYS: epoch, counter, log. ARGV: a candidate epoch, now, the event's JSON, log length,
# log seconds, the Redis channel to publish on, the message's msgpack bytes up to the
# epoch's value, the counter's lifetime in seconds, now in milliseconds. Appends epoch,
# 'seq' and seq, completing a 5-entry map.
#
# A stream's counter expires LIVE_STREAM_SECONDS after its last event (its log sooner).
# A counter that is missing (a new stream, or one whose counter expired) starts a new life
# at the time in milliseconds: above every number of an earlier life (unless a stream
# numbered more events than milliseconds passed), so a client still holding one sees a
# gap, asks, and is told to re-render (the log holds no run from its number) instead of
# taking the new numbers for duplicates. `RedisStreams.heads` starts a life the same way,
# so a client that subscribes before a stream's first event counts from its start.
STAMP_SCRIPT = """
redis.call('SET', KEYS[1], ARGV[1], 'NX')
local epoch = redis.call('GET', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('SET', KEYS[2], ARGV[9])
end
local seq = redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[8])
redis.call('ZADD', KEYS[3], seq, seq .. ' ' .. ARGV[2] .. ' ' .. ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[4]) + 1))
redis.call('EXPIRE', KEYS[3], ARGV[5])
redis.call('PUBLISH', ARGV[6], ARGV[7] .. cmsgpack.pack(epoch) .. cmsgpack.pack('seq') .. cmsgpack.pack(seq))
return seq
"""


def redis_keys(prefix: str, stream: str) -> tuple[str, str, str]:
    """(epoch, counter, log) keys of one stream."""
    return f"{prefix}:live:epoch", f"{prefix}:live:seq:{stream}", f"{prefix}:live:log:{stream}"


def stamp_args(*, prefix: str, stream: str, event: dict[str, Any]) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV of STAMP_SCRIPT for one event: the message is packed here as the
    pub/sub layer would pack {type, event, stream, epoch, seq}, all but the last two values."""
    head = b"\x85" + b"".join(
        msgpack.packb(part)
        for part in ("type", RELAY_MESSAGE_TYPE, "event", event, "stream", stream, "epoch")
    )
    now = time.time()
    args = [
        uuid4().hex,
        repr(now),
        json.dumps(event),
        settings.LIVE_LOG_LENGTH,
        int(settings.LIVE_LOG_SECONDS),
        f"{prefix}__group__{stream}",
        head,
        int(settings.LIVE_STREAM_SECONDS),
        int(now * 1000),
    ]
    return list(redis_keys(prefix, stream)), args


def stamp_script(client: redis.Redis) -> Any:
    return client.register_script(STAMP_SCRIPT)


class RedisStreams:
    """Reads the counters and logs the stamp script writes (in the ASGI processes)."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url, self.prefix = url, prefix
        self._clients: dict[int, aioredis.Redis] = {}

    def _client(self) -> aioredis.Redis:
        # A client's connections belong to the event loop that opened them.
        loop = id(asyncio.get_running_loop())
        if loop not in self._clients:
            self._clients[loop] = aioredis.Redis.from_url(self.url, socket_timeout=5)
        return self._clients[loop]

    async def _twice(self, operation: Callable[[aioredis.Redis], Awaitable[_T]]) -> _T:
        # A connection Redis dropped (a restart) fails once; the pool then connects afresh.
        try:
            return await operation(self._client())
        except (redis.ConnectionError, redis.TimeoutError):
            return await operation(self._client())

    async def heads(self, streams: list[str]) -> tuple[str, dict[str, int]]:
        epoch_key = f"{self.prefix}:live:epoch"

        async def read(client: aioredis.Redis) -> list[Any]:
            pipe = client.pipeline(transaction=False)
            pipe.set(epoch_key, uuid4().hex, nx=True)
            pipe.get(epoch_key)
            counters = [redis_keys(self.prefix, s)[1] for s in streams]
            for counter in counters:
                # A stream without a counter starts its life now, as the stamp script would.
                pipe.set(counter, int(time.time() * 1000), nx=True, ex=int(settings.LIVE_STREAM_SECONDS))
            if streams:
                pipe.mget(counters)
            replies: list[Any] = await pipe.execute()
            return replies

        replies = await self._twice(read)
        counts = replies[-1] if streams else []
        return replies[1].decode(), {s: int(c or 0) for s, c in zip(streams, counts, strict=True)}

    async def since(self, stream: str, after: int, head: int) -> list[Missed] | None:
        key = redis_keys(self.prefix, stream)[2]
        rows = await self._twice(lambda client: client.zrangebyscore(key, after + 1, head))
        entries = []
        for row in rows:
            text = row.decode() if isinstance(row, bytes) else str(row)
            seq, moment, body = text.split(" ", 2)
            entries.append((int(seq), float(moment), body))
        return _catch_up(stream, after, head, entries)


class _MemoryReader:
    """The in-process streams behind the same async interface as RedisStreams."""

    async def heads(self, streams: list[str]) -> tuple[str, dict[str, int]]:
        return memory_streams.heads(streams)

    async def since(self, stream: str, after: int, head: int) -> list[Missed] | None:
        return memory_streams.since(stream, after, head)


_redis_readers: dict[tuple[str, str], RedisStreams] = {}


def streams_reader() -> RedisStreams | _MemoryReader:
    """Where this process reads stream heads and logs: Redis under the pub/sub layer,
    else this process."""
    layer = get_channel_layer()
    if layer is not None and numbered_in_redis(layer):
        target = pubsub_target(layer)
        assert target is not None  # numbered_in_redis checked it
        if target not in _redis_readers:
            _redis_readers[target] = RedisStreams(*target)
        return _redis_readers[target]
    return _MemoryReader()
