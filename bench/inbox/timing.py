"""Timing for bench/inbox: every side warmed, then run in turn, round after round, so that
a burst of load from the shared machine falls on all sides alike rather than on whichever
side happened to be running then."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def alternating(repeat: int, sides: dict[str, Callable[[], Any]]) -> dict[str, list[float]]:
    """Milliseconds of `repeat` runs of each side, after a warm-up of each (caches, plans,
    connections); each round starts with the next side, so no side always runs first."""
    names = list(sides)
    for name in names:
        for _ in range(max(3, repeat // 10)):
            sides[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeat):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            started = time.perf_counter()
            sides[name]()
            times[name].append((time.perf_counter() - started) * 1000)
    return times


def percentile(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def statements_of(client: Any, url: str) -> list[str]:
    """The SQL statements one GET of `url` runs (savepoints left out: not work asked for)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    return [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]


def statements_at(client: Any, url: str, *, module: Any, size: int) -> int:
    """The statements of `url` with the view module's PAGE_SIZE set to `size`."""
    saved = module.PAGE_SIZE
    module.PAGE_SIZE = size
    try:
        return len(statements_of(client, url))
    finally:
        module.PAGE_SIZE = saved


@dataclass
class Figures:
    """What one measured page printed: rows, statements, the times of each side."""

    title: str
    rows: int
    same_rows: bool
    statements: dict[str, int]
    times: dict[str, list[float]]
    notes: list[str]

    def ratio(self, side: str = "page") -> float:
        return percentile(self.times[side], 0.95) / percentile(self.times["raw"], 0.95)

    @property
    def same_statements(self) -> bool:
        return len(set(self.statements.values())) == 1

    def ok(self, target: float) -> bool:
        return self.ratio() <= target and self.same_statements and self.same_rows

    def print(self, *, repeat: int, target: float) -> None:
        print(f"\n== {self.title}")
        for note in self.notes:
            print(note)
        print(f"first page {self.rows} rows; SQL statements per page: {self.statements}")
        print(f"hand-written SQL returns the same rows, counts and order: {self.same_rows}")
        print(f"{'':10} {'p50 ms':>8} {'p95 ms':>8}   ({repeat} runs each, alternating)")
        for side, times in self.times.items():
            print(f"{side:10} {statistics.median(times):8.2f} {percentile(times, 0.95):8.2f}")
        print(
            f"ratio page p95 / raw p95: {self.ratio():.2f} (target <= {target}); "
            f"selector p95 / raw p95: {self.ratio('selector'):.2f}"
        )
        print(f"statements the same for every page size: {self.same_statements}")
        print("targets met" if self.ok(target) else "TARGET MISSED")
