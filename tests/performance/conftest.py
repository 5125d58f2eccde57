"""Fixtures of the performance tests: a broker that keeps task messages in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from config.celery import app as celery_app


def _broker_use(url: str) -> None:
    celery_app.conf.update(broker_url=url, broker_transport_options={})
    # Celery caches its connection pools per app and has no public way to drop them.
    setattr(celery_app, "_pool", None)  # noqa: B010
    setattr(celery_app.amqp, "_producer_pool", None)  # noqa: B010


@pytest.fixture
def memory_broker() -> Iterator[None]:
    """Task events of after-commit pushes go to kombu's in-memory transport, never to the
    shared filesystem broker in var/ (nor to a Redis another test reads)."""
    original = (celery_app.conf.broker_url, dict(celery_app.conf.broker_transport_options or {}))
    _broker_use("memory://")
    yield
    celery_app.conf.update(broker_url=original[0], broker_transport_options=original[1])
    setattr(celery_app, "_pool", None)  # noqa: B010
    setattr(celery_app.amqp, "_producer_pool", None)  # noqa: B010
