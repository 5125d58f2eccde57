"""bench/fuzz: the fuzz targets of tests/fuzz/ for minutes at a time.

    .venv/bin/python -m bench.fuzz                      # 3 minutes, shared among the targets
    .venv/bin/python -m bench.fuzz --minutes 10 --target policy_parse --target conditions

Each target runs in turn, in rounds of --chunk freshly drawn examples, until
its share of the time is used. An example that raises anything but the module's own error
is a failure: Hypothesis shrinks it and it is printed with its traceback. An example that
runs longer than --hang seconds is stopped (a timer signal) and reported as a hang.

Printed per target: examples tried, rounds, the slowest example's time, and failures.
Exit status 1 when any target failed.
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")

import django

django.setup()

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402

from tests.fuzz.targets import TARGETS, Target  # noqa: E402


class Hang(Exception):
    """An example ran past the --hang limit."""


@contextmanager
def hang_limit(seconds: float) -> Iterator[None]:
    def stop(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Tally:
    examples: int = 0
    rounds: int = 0
    slowest: float = 0.0
    failures: list[str] = field(default_factory=list)


def run_round(target: Target, tally: Tally, *, examples: int, hang: float) -> None:
    """One round of new examples (no example database: each round draws afresh)."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=False,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
    )
    @given(target.strategy)
    def run(example: Any) -> None:
        started = time.perf_counter()
        with hang_limit(hang):
            target.check(example)
        tally.examples += 1
        tally.slowest = max(tally.slowest, time.perf_counter() - started)

    run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=3.0, help="total time, shared among the targets")
    parser.add_argument("--target", action="append", choices=[t.name for t in TARGETS], help="only these")
    parser.add_argument("--chunk", type=int, default=500, help="examples per round")
    parser.add_argument("--hang", type=float, default=10.0, help="seconds after which an example is a hang")
    args = parser.parse_args(argv)

    chosen = [t for t in TARGETS if not args.target or t.name in args.target]
    share = args.minutes * 60 / len(chosen)
    print(f"fuzzing {len(chosen)} target(s) for {args.minutes:g} min ({share:.0f} s each)", flush=True)
    tallies: dict[str, Tally] = {}
    for target in chosen:
        tally = tallies.setdefault(target.name, Tally())
        deadline = time.monotonic() + share
        while time.monotonic() < deadline and not tally.failures:
            tally.rounds += 1
            # A round that never ends (a hang outside the examples' own timer, in generating
            # or shrinking) prints every thread's stack and stops the run instead of waiting.
            faulthandler.dump_traceback_later(max(args.hang * 20, share * 2), exit=True)
            try:
                run_round(target, tally, examples=args.chunk, hang=args.hang)
            except Exception as exc:  # a failure of the module, shrunk by Hypothesis
                tally.failures.append("".join(traceback.format_exception(exc)))
            finally:
                faulthandler.cancel_dump_traceback_later()
        print(
            f"  {target.name:<18} {tally.examples:>8} examples  {tally.rounds:>4} rounds  "
            f"slowest {tally.slowest * 1000:8.1f} ms  {'FAILED' if tally.failures else 'ok'}",
            flush=True,
        )
    failed = {name: t for name, t in tallies.items() if t.failures}
    for name, tally in failed.items():
        print(f"\n=== {name}: failure ===\n{tally.failures[0]}", file=sys.stderr)
    total = sum(t.examples for t in tallies.values())
    print(f"{total} examples, {len(failed)} target(s) failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
