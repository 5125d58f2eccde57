"""workflows.outbox_marks: a push's "delivered" marks, written at once after a pause and
shared by the pushes of a burst; the burst's last written by the marking thread. Real
transactions (their pushes run on commit) and the marking thread's own connection."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID

import pytest
from django.db import transaction

from workflows import outbox_marks
from workflows.models import OutboxEvent
from workflows.outbox import RelayResult, channel_event, outbox_relay_once, outbox_write

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def nothing_left_waiting() -> Iterator[None]:
    yield
    outbox_marks.marks_flush()  # no mark of this test is written into the next one's data


@pytest.fixture
def mark_writes(monkeypatch: pytest.MonkeyPatch) -> list[list[UUID]]:
    """The ids of each UPDATE that marks events delivered (the real one runs)."""
    writes: list[list[UUID]] = []
    real = outbox_marks.marks_write

    def counted(ids: Any, *, at: Any) -> int:
        writes.append(list(ids))
        return real(ids, at=at)

    monkeypatch.setattr(outbox_marks, "marks_write", counted)
    return writes


def committed_event(n: int) -> UUID:
    """One transaction writing one channel event; its push runs when it commits."""
    with transaction.atomic():
        (event_id,) = outbox_write([channel_event(group="marks.test", topic="t", payload={"n": n})])
    return event_id


def statuses(ids: list[UUID]) -> dict[UUID, tuple[str, int]]:
    return {e.id: (e.status, e.attempts) for e in OutboxEvent.objects.filter(id__in=ids)}


def wait_until_delivered(ids: list[UUID], *, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if set(statuses(ids).values()) == {("delivered", 1)}:
            return
        time.sleep(0.05)
    raise AssertionError(f"not all marked delivered within {within}s: {statuses(ids)}")


def test_a_push_after_a_pause_marks_its_events_at_once(settings: Any, mark_writes: list[list[UUID]]):
    # given marks batched per 0.2 s
    settings.OUTBOX_MARK_BATCH_SECONDS = 0.2
    time.sleep(0.25)  # longer than a batch since any earlier mark
    # when one transaction commits, and another one after a pause
    first = committed_event(1)
    time.sleep(0.25)
    second = committed_event(2)
    # then each push marked its own event delivered before the transaction's caller went on
    assert mark_writes == [[first], [second]]
    assert statuses([first, second]) == {first: ("delivered", 1), second: ("delivered", 1)}


def test_the_pushes_of_a_burst_share_their_marks_and_the_last_are_written_after_it(
    settings: Any, mark_writes: list[list[UUID]]
):
    # given marks batched per second, after a pause
    settings.OUTBOX_MARK_BATCH_SECONDS = 1.0
    time.sleep(1.05)
    # when ten transactions commit one right after another
    started = time.monotonic()
    ids = [committed_event(n) for n in range(10)]
    burst = time.monotonic() - started
    assert burst < 1.0, f"the burst took {burst:.2f}s, longer than the batch: the test cannot tell"
    # then the first push marked its event at once, and the others' marks wait
    assert mark_writes == [[ids[0]]]
    assert set(statuses(ids[1:]).values()) == {("pending", 0)}
    # and their lease keeps the relay off them meanwhile
    assert outbox_relay_once() == RelayResult()
    # and soon after the burst the marking thread writes the rest, in one UPDATE, each once
    wait_until_delivered(ids, within=5.0)
    assert mark_writes == [[ids[0]], ids[1:]]


def test_a_push_into_a_batch_that_is_due_writes_every_waiting_mark(
    settings: Any, mark_writes: list[list[UUID]]
):
    # given marks batched per 0.3 s, a push after a pause, and a second one whose mark waits
    settings.OUTBOX_MARK_BATCH_SECONDS = 0.3
    time.sleep(0.35)
    first, second = committed_event(1), committed_event(2)
    assert mark_writes == [[first]]
    # when a third push comes once the waiting mark is a batch old (before the thread's turn)
    time.sleep(0.32)
    third = committed_event(3)
    # then that push wrote both waiting marks in one UPDATE
    assert mark_writes == [[first], [second, third]]
    assert set(statuses([first, second, third]).values()) == {("delivered", 1)}


def test_a_clean_exit_writes_the_waiting_marks(settings: Any, mark_writes: list[list[UUID]]):
    # given marks batched per 10 s, marks written a moment ago, and two pushes since
    settings.OUTBOX_MARK_BATCH_SECONDS = 10.0
    outbox_marks.marks_flush()
    ids = [committed_event(1), committed_event(2)]
    # then both marks wait (pushes follow each other)
    assert set(statuses(ids).values()) == {("pending", 0)}
    # when the process flushes its marks, as it does on exit
    written = outbox_marks.marks_flush()
    # then the waiting marks are written at once, in one UPDATE
    assert written == 2
    assert mark_writes[-1] == ids
    assert set(statuses(ids).values()) == {("delivered", 1)}
