"""schemathesis against the live OpenAPI schema: every operation, generated inputs, as a
requester with a token; no answer is a 5xx and every answer conforms to the schema
(status documented, body shape, content type)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi import checks as openapi_checks

from approvals.api.auth import CallerRateThrottle
from tests.approvals.api.conftest import ApiWorld

pytestmark = pytest.mark.django_db

# Examples per operation; CI's schemathesis step asks for more (API_FUZZ_EXAMPLES).
EXAMPLES = int(os.environ.get("API_FUZZ_EXAMPLES", "12"))
CHECKS = [
    schemathesis.checks.not_a_server_error,
    openapi_checks.status_code_conformance,
    openapi_checks.content_type_conformance,
    openapi_checks.response_schema_conformance,
]


@pytest.fixture
def connection_kept() -> Iterator[None]:
    """As Django's test client does: the WSGI handler must not close the test's
    connection (and its transaction) at the end of each request."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.mark.usefixtures("connection_kept")
def test_api_answers_conform_and_never_5xx(api: ApiWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    # The throttle is tested on its own; here it would answer most calls with a 429.
    monkeypatch.setattr(CallerRateThrottle, "THROTTLE_RATES", {"api": "100000/min"})
    # given the live schema, a request to find, act on and wait for, and a requester's token
    api.new_request()
    secret = api.token_for("requester")
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", WSGIHandler())
    # A broken operation in the schema fails here (an Err has no ok()).
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 13

    # when each operation is called with generated inputs; then every answer passes the checks
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            if case.path.endswith("/wait/"):
                case.query = {**(case.query or {}), "seconds": "0"}  # the long-poll is tested on its own
            case.call_and_validate(headers={"Authorization": f"Bearer {secret}"}, checks=CHECKS)

        call()
