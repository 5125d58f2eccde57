"""What a timer scan did: counted by outcome, for the log and for tests and benchmarks."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class ScanReport:
    """How many timers fired as what, in how many batches, and how many were skipped."""

    fired: Counter[str] = field(default_factory=Counter)
    batches: int = 0
    skipped: int = 0  # due, but their request was locked by someone acting on it

    @property
    def total(self) -> int:
        return sum(self.fired.values())
