"""Marking pushed events delivered, in batches when pushes follow each other.

Once a push has delivered its events, their rows are marked delivered. A process that
pushes one transition after another (a web worker under load, a bulk import, the API)
would pay one UPDATE per push: a round trip and a commit. Instead, while pushes keep
coming, their marks gather for OUTBOX_MARK_BATCH_SECONDS and go as one UPDATE; a push
with none before it in that time marks its own at once, as with no batching at all.

Why this is safe: until their mark is written, pushed events stay under their push lease
(OUTBOX_PUSH_LEASE, a minute against a tenth of a second here), so no relay takes them.
The marks of a burst's last pushes are written by this process's marking thread soon
after the burst ends, on a connection of its own that it closes again. A process that
dies with marks unwritten loses only those marks: the relay delivers the events again
when their lease ends, at least once, as after a death between commit and push.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.utils import timezone

from workflows import sql
from workflows.models import OutboxEvent

logger = logging.getLogger(__name__)

FINISHED = (OutboxEvent.Status.DELIVERED.value, OutboxEvent.Status.DEAD.value)
# Past this many waiting marks one UPDATE goes at once, whatever the time.
MAX_WAITING = 500


def marks_write(ids: Sequence[UUID], *, at: datetime) -> int:
    """Mark the events `ids` delivered at `at` (their attempt counted), in one UPDATE by
    primary key; returns how many rows changed. Rows a relay finished meanwhile are left
    alone: "not finished" rather than "status = 'pending'", which would let PostgreSQL
    scan the partial index of every pending event (a large backlog after an outage)
    instead of going by primary key."""
    if not ids:
        return 0
    where, params = sql.in_list(OutboxEvent, "id", list(ids))
    return sql.rows_update(
        OutboxEvent,
        values={
            "status": OutboxEvent.Status.DELIVERED,
            "delivered_at": at,
            "attempts": sql.Raw("attempts + 1"),
        },
        where=f"{where} AND status NOT IN (%s, %s)",
        params=[*params, *FINISHED],
    )


class _Waiting:
    """This process's marks not written yet, and the thread that writes a burst's last."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.pid = 0
        self.ids: list[UUID] = []
        self.since = 0.0  # when the oldest waiting mark came (monotonic)
        self.last_write = float("-inf")  # when marks were last written (monotonic)
        self.thread: threading.Thread | None = None

    def here(self) -> None:
        """Start afresh in a forked child: its parent's marks and thread are not its own.
        Called with the lock held."""
        if self.pid != os.getpid():
            self.pid, self.ids, self.thread = os.getpid(), [], None
            self.last_write = float("-inf")

    def take(self, clock: float) -> list[UUID]:
        """The waiting marks, now to be written (lock held)."""
        taken, self.ids = self.ids, []
        self.last_write = clock
        return taken


_waiting = _Waiting()


def marks_add(ids: Sequence[UUID], *, at: datetime) -> int:
    """Record that the events `ids` were delivered at `at`: at once when batching is off
    or no other marks were written in the last batch time, otherwise with the marks
    gathered since (one UPDATE). Returns the rows marked now (a relay may have finished
    some first: those are left alone), or len(ids) when their marks wait. Never raises: a
    mark that cannot be written leaves its event to the relay once its lease ends (logged)."""
    batch = settings.OUTBOX_MARK_BATCH_SECONDS
    if batch <= 0:
        return _write(list(ids), at=at)
    state = _waiting
    with state.lock:
        state.here()
        clock = time.monotonic()
        alone = not state.ids and clock - state.last_write >= batch
        taken: list[UUID] = []
        if alone:
            state.last_write = clock
        else:
            first = not state.ids
            if first:
                state.since = clock
            state.ids.extend(ids)
            if clock - state.since >= batch or len(state.ids) >= MAX_WAITING:
                taken = state.take(clock)
            else:
                _thread_running(state)
                if first:  # the thread waits for marks to come, or for older ones' time
                    state.lock.notify()
    if alone:
        return _write(list(ids), at=at)
    if taken:
        # Written when the last of them was delivered: at most a batch time after the first.
        _write(taken, at=at)
    return len(ids)


def marks_flush() -> int:
    """Write every waiting mark of this process now; how many rows changed. For a clean
    exit, and for tests."""
    with _waiting.lock:
        _waiting.here()
        taken = _waiting.take(time.monotonic())
    return _write(taken, at=timezone.now())


def _write(ids: list[UUID], *, at: datetime) -> int:
    try:
        return marks_write(ids, at=at)
    except Exception:
        logger.exception(
            "%s outbox event(s) delivered but not marked; the relay delivers them again", len(ids)
        )
        return 0


def _thread_running(state: _Waiting) -> None:
    """Start this process's marking thread if it is not running (lock held)."""
    if state.thread is None or not state.thread.is_alive():
        state.thread = threading.Thread(target=_mark_bursts_ends, name="outbox-marks", daemon=True)
        state.thread.start()


def _mark_bursts_ends() -> None:
    """The marking thread: writes the waiting marks once no push has come to write them
    for twice the batch time (the burst ended). Its own database connection is closed
    after each write, so an idle process holds none for it."""
    state = _waiting
    while True:
        with state.lock:
            if state.ids:
                due = state.since + 2 * settings.OUTBOX_MARK_BATCH_SECONDS
                state.lock.wait(timeout=max(due - time.monotonic(), 0.001))
            else:
                state.lock.wait()
            # The batch time as it is now, after the wait (it is a setting).
            if not state.ids or time.monotonic() < state.since + 2 * settings.OUTBOX_MARK_BATCH_SECONDS:
                continue
            taken = state.take(time.monotonic())
        try:
            _write(taken, at=timezone.now())
        finally:
            connection.close()


atexit.register(marks_flush)
