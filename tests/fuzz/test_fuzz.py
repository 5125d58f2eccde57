"""Short fuzz runs of every target in the normal suite (bench/fuzz.py runs them for minutes).

Each target gets FUZZ_EXAMPLES generated inputs (200 by default; the FUZZ_EXAMPLES
environment variable changes it) and a deadline per input: an input that takes longer
fails the test as a hang would.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.targets import TARGETS, Target

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))
# Generous for a shared two-core machine under a full suite (3 s was exceeded there at
# times); what the bounds allow takes milliseconds, a hang takes forever.
DEADLINE = timedelta(seconds=10)


def fuzz(target: Target, *, examples: int = EXAMPLES, deadline: timedelta | None = DEADLINE) -> None:
    @settings(
        max_examples=examples,
        deadline=deadline,
        database=None,
        # The suite's short run is the same every time (a red CI is a real finding, never
        # a roll of the dice); bench/fuzz.py explores with fresh randomness for minutes.
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(target.strategy)
    def run(example: object) -> None:
        target.check(example)

    run()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_every_input_gets_an_answer_or_the_module_s_own_error(target: Target) -> None:
    # given any input the target's strategy makes (plausible, hostile, or neither)
    # when the module reads it
    # then it answers with a result or its own clear error, within the deadline
    fuzz(target)
