"""WebSocket consumers. They only relay what the service decided and committed.

Protocol (JSON frames):
- server `ready` {epoch, streams: {name: last seq}} once subscribed;
- server `event` {stream, epoch, seq, event}: one numbered event of a stream (the event
  carries the outbox event id; delivery is at least once, clients drop duplicates);
- server `skip` {stream, epoch, seq}: that number of the stream carried an event this
  user may not hear (an item outside the delegation they hear the stream through): the
  client advances its cursor and shows nothing;
- server `resync` {epoch, streams, reason}: re-render and start counting from `streams`
  (the client was too far behind, the epoch changed, or what it may hear changed);
- client `sync` {epoch, cursors: {name: last seq seen}}: send me what I missed;
- client `ping`, server `pong`.
Close codes: 4401 not signed in (or no longer), 4403 not allowed, 4404 no such endpoint.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer, AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone

from workflows.live import RELAY_MESSAGE_TYPE, Missed, control_group, streams_reader
from workflows.subscriptions import (
    Reach,
    SignedIn,
    Subscription,
    event_allowed,
    inbox_subscription,
    user_still_signed_in,
)

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
CLOSE_TRY_AGAIN = 1013
# Where the stream numbers live cannot be reached (Redis down or restarting).
LIVE_STATE_DOWN = (redis.RedisError, OSError)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Base: subscribes to the streams `subscription_for` allows, keeps that true while
    the socket is open, and catches a reconnecting client up."""

    scope: dict[str, Any]
    streams: list[str]
    user_id: int
    signed_in: SignedIn
    # Streams heard only through delegations, and what those let through (shared empty
    # default, replaced and never mutated: most sockets hear only their own streams).
    reaches: dict[str, tuple[Reach, ...]] = {}
    # A timer, not a sleeping task per socket: a task and its frame cost each idle socket
    # a few KB, a timer handle about a hundred bytes.
    _recheck_timer: asyncio.TimerHandle | None = None
    _recheck_running: asyncio.Task[None] | None = None

    def subscription_for(self, user: Any) -> Subscription | None:
        """The streams `user` may hear on this socket, or None to refuse it (the default:
        a consumer serves no one until it says whom). Runs in a worker thread (ORM)."""
        return None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        signed_in = SignedIn.of(user_id=user.pk, session=self.scope.get("session"))
        if signed_in is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        subscription = await database_sync_to_async(self.subscription_for)(user)
        if subscription is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user_id, self.streams, self.signed_in = user.pk, [], signed_in
        self.reaches = subscription.reaches
        # The re-checks read the user and the session afresh, never from the scope.
        # Removed in place: a trimmed copy would cost a dict more per socket, since the
        # router's frame keeps the scope it was given anyway.
        for key in ("user", "session", "cookies"):
            self.scope.pop(key, None)
        await self.channel_layer.group_add(control_group(self.user_id), self.channel_name)
        await self._follow(subscription.streams)
        await self.accept()
        try:
            epoch, heads = await streams_reader().heads(self.streams)
        except LIVE_STATE_DOWN:
            # Redis is unreachable: the client reconnects later, with its cursors.
            await self.close(code=CLOSE_TRY_AGAIN)
            return
        await self.send_json({"type": "ready", "epoch": epoch, "streams": heads})
        self._recheck_schedule(subscription)

    async def disconnect(self, code: int) -> None:
        for pending in (self._recheck_timer, self._recheck_running):
            if pending is not None:
                pending.cancel()
        if not hasattr(self, "user_id"):
            return
        await self.channel_layer.group_discard(control_group(self.user_id), self.channel_name)
        await self._follow([])

    async def _follow(self, streams: list[str]) -> None:
        """Join the streams in `streams` not yet joined and leave the others."""
        for stream in [s for s in self.streams if s not in streams]:
            await self.channel_layer.group_discard(stream, self.channel_name)
        for stream in [s for s in streams if s not in self.streams]:
            await self.channel_layer.group_add(stream, self.channel_name)
        self.streams = list(streams)

    # --- from the client -------------------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        try:
            content = json.loads(text_data or (bytes_data or b"").decode("utf-8", "replace"))
        except ValueError:
            await self.send_json({"type": "error", "field": "message", "detail": "Expected a JSON object."})
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":  # keeps proxies from closing an idle socket
            await self.send_json({"type": "pong"})
        elif kind == "sync":
            try:
                await self._catch_up(content)
            except LIVE_STATE_DOWN:
                await self.send_json(
                    {"type": "error", "field": None, "detail": "Live state unavailable; sync again."}
                )
        else:
            await self.send_json({"type": "error", "field": "type", "detail": "Expected 'sync' or 'ping'."})

    async def _catch_up(self, content: dict[str, Any]) -> None:
        """Send what the client missed since its cursors, or `resync` when that is gone."""
        cursors = content.get("cursors")
        if not isinstance(cursors, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0
            for k, v in cursors.items()
        ):
            await self.send_json(
                {
                    "type": "error",
                    "field": "cursors",
                    "detail": "Expected an object of stream names to numbers.",
                }
            )
            return
        reader = streams_reader()
        epoch, heads = await reader.heads(self.streams)
        if content.get("epoch") != epoch:
            await self._resync(epoch, heads, reason="epoch")
            return
        missed: list[Missed] = []
        for stream, head in heads.items():
            after = cursors.get(stream, head)  # a stream the client did not know: from now on
            if after > head:
                await self._resync(epoch, heads, reason="behind")
                return
            if after == head:
                continue
            found = await reader.since(stream, after, head)
            if found is None:
                await self._resync(epoch, heads, reason="behind")
                return
            missed += found
        for item in missed:
            await self.send_json(self._told(item.message(epoch)))

    async def _resync(self, epoch: str, heads: dict[str, int], *, reason: str) -> None:
        await self.send_json({"type": "resync", "epoch": epoch, "streams": heads, "reason": reason})

    # --- from the channel layer --------------------------------------------------------

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") == RELAY_MESSAGE_TYPE:
            # Relaying touches no database, so it skips Channels' per-message
            # close_old_connections: a hop to the one sync thread per message, which with
            # 1,000 sockets hearing one event queued every delivery behind that thread.
            await self.relay_event(message)
            return
        await super().dispatch(message)

    async def relay_event(self, message: dict[str, Any]) -> None:
        stream = message.get("stream")
        if stream is not None and stream not in self.streams:
            return  # left that stream while the message was on its way
        await self.send_json(
            self._told(
                {
                    "type": "event",
                    "stream": stream,
                    "epoch": message.get("epoch"),
                    "seq": message.get("seq"),
                    "event": message["event"],
                }
            )
        )

    def _told(self, frame: dict[str, Any]) -> dict[str, Any]:
        """`frame` as this user may be told it: an event of a stream heard only through a
        delegation that does not reach it becomes a `skip` of its number, so the client's
        cursor moves on (no gap, no endless re-sync) and learns nothing of the item."""
        stream = frame.get("stream")
        if not isinstance(stream, str) or event_allowed(self.reaches.get(stream), frame["event"]):
            return frame
        return {"type": "skip", "stream": stream, "epoch": frame.get("epoch"), "seq": frame.get("seq")}

    async def live_recheck(self, message: dict[str, Any]) -> None:
        subscription = await self._recheck()
        if subscription is not None:
            self._recheck_schedule(subscription)

    async def _recheck(self) -> Subscription | None:
        """Re-read who this is and what they may hear; close or re-subscribe accordingly."""
        user = await database_sync_to_async(user_still_signed_in)(self.signed_in)
        if user is None:
            await self._follow([])
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return None
        subscription = await database_sync_to_async(self.subscription_for)(user)
        if subscription is None:
            await self._follow([])
            await self.close(code=CLOSE_FORBIDDEN)
            return None
        if set(subscription.streams) != set(self.streams) or subscription.reaches != self.reaches:
            # A delegation's scope changed too: the page re-renders what it may show now.
            self.reaches = subscription.reaches
            await self._follow(subscription.streams)
            epoch, heads = await streams_reader().heads(self.streams)
            await self._resync(epoch, heads, reason="subscriptions")
        return subscription

    def _recheck_schedule(self, subscription: Subscription) -> None:
        """Re-check after LIVE_RECHECK_SECONDS, or just after the next delegation edge."""
        if self._recheck_timer is not None:
            self._recheck_timer.cancel()
        wait = settings.LIVE_RECHECK_SECONDS
        if subscription.next_edge is not None:
            wait = min(wait, (subscription.next_edge - timezone.now()).total_seconds() + 0.05)
        self._recheck_timer = asyncio.get_running_loop().call_later(
            max(wait, 0.05), self._recheck_due, subscription
        )

    def _recheck_due(self, previous: Subscription) -> None:
        self._recheck_timer = None
        self._recheck_running = asyncio.ensure_future(self._recheck_then_schedule(previous))

    async def _recheck_then_schedule(self, previous: Subscription) -> None:
        try:
            subscription = await self._recheck()
        except Exception:  # a failed re-check (the database away) is tried again later
            logger.warning("re-checking a live socket failed; trying again later", exc_info=True)
            subscription = previous
        if subscription is not None:
            self._recheck_schedule(subscription)


class InboxConsumer(LiveConsumer):
    """/ws/inbox/: everything that changes the connected user's inbox."""

    def subscription_for(self, user: Any) -> Subscription | None:
        return inbox_subscription(user)


class NotFoundConsumer(AsyncWebsocketConsumer):
    """Any other /ws/ path: closed with 4404 instead of an error in the router."""

    async def connect(self) -> None:
        await self.close(code=CLOSE_NOT_FOUND)
