"""The system check that keeps the broker's visibility timeout longer than any task's retries."""

from __future__ import annotations

from types import SimpleNamespace

from workflows.checks import broker_visibility_outlasts_retries, retry_window


def test_a_visibility_timeout_shorter_than_a_retry_window_fails_the_check(settings):
    # given Redis as the broker, redelivering after 100 seconds
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/7"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 100}
    problems = broker_visibility_outlasts_retries()
    # then the notification task (5 retries, 30 s apart) is named
    named = {p.msg.split()[1] for p in problems}
    assert "approvals.notify_transition" in named
    assert {p.id for p in problems} == {"workflows.E002"}


def test_a_long_enough_visibility_timeout_passes(settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/7"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
    assert broker_visibility_outlasts_retries() == []


def test_a_broker_without_a_visibility_timeout_is_not_checked(settings):
    settings.CELERY_BROKER_URL = "memory://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 1}
    assert broker_visibility_outlasts_retries() == []


def test_the_retry_window_counts_backoff_and_the_time_limit():
    plain = SimpleNamespace(max_retries=5, default_retry_delay=30, time_limit=None)
    backing_off = SimpleNamespace(
        max_retries=4, default_retry_delay=0, retry_backoff=10, retry_backoff_max=50, time_limit=20
    )
    assert retry_window(plain) == 150
    assert retry_window(backing_off) == 10 + 20 + 40 + 50 + 20
