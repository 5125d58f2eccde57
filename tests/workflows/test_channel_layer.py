"""The pub/sub layer's lighter per-channel inbox behaves as the asyncio.Queue it replaces."""

from __future__ import annotations

import asyncio

from workflows.channel_layer import ChannelInbox


def test_messages_come_out_in_order_and_an_emptied_inbox_keeps_no_deque():
    async def scenario() -> tuple[list[str], bool]:
        inbox = ChannelInbox()
        # when three messages arrive before anyone waits
        for message in ("a", "b", "c"):
            inbox.put_nowait(message)
        taken = [await inbox.get() for _ in range(3)]
        return taken, inbox.empty() and inbox._messages is None

    # then they come out in order, and nothing is kept once it is empty
    assert asyncio.run(scenario()) == (["a", "b", "c"], True)


def test_a_waiting_consumer_is_woken_by_the_next_message():
    async def scenario() -> str:
        inbox = ChannelInbox()
        # given a consumer waiting on an empty inbox
        waiting = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        assert not waiting.done()
        # when a message arrives
        inbox.put_nowait("hello")
        return await asyncio.wait_for(waiting, timeout=1)

    # then the consumer gets it
    assert asyncio.run(scenario()) == "hello"


def test_a_cancelled_waiter_hands_its_message_to_the_next_one():
    async def scenario() -> tuple[str, int]:
        inbox = ChannelInbox()
        # given two waiters
        first = asyncio.ensure_future(inbox.get())
        second = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        # when a message wakes the first, which is cancelled before it runs
        inbox.put_nowait("only")
        first.cancel()
        got = await asyncio.wait_for(second, timeout=1)
        # then the second gets the message, and nothing is left waiting
        return got, len(inbox._waiters or [])

    assert asyncio.run(scenario()) == ("only", 0)


def test_a_consumer_cancelled_while_waiting_leaves_nothing_behind():
    async def scenario() -> tuple[bool, str]:
        inbox = ChannelInbox()
        waiting = asyncio.ensure_future(inbox.get())
        await asyncio.sleep(0)
        # when the consumer leaves (Channels cancels its receive on disconnect)
        waiting.cancel()
        await asyncio.sleep(0)
        left_clean = inbox._waiters is None
        # then a later message still reaches a later consumer
        inbox.put_nowait("later")
        return left_clean, await inbox.get()

    assert asyncio.run(scenario()) == (True, "later")
