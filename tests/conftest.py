"""Shared fixtures. The suite runs on SQLite by default and on PostgreSQL + Redis when
DATABASE_URL / REDIS_URL are set (integration tests need both)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest
from django.db.backends.postgresql.operations import DatabaseOperations

from accounts.models import User
from accounts.roles import AUDITORS, MANAGERS
from approvals.models import RequestType
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, make_approver, make_requester

CHROMIUM = "/usr/bin/chromium"
ON_POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
HAS_REDIS = bool(os.environ.get("REDIS_URL"))


def pytest_report_header(config: Any) -> list[str]:
    """Say once, at the top, what this run can reach and what it will skip."""
    database = "PostgreSQL" if ON_POSTGRES else "SQLite"
    lines = [f"baton: database {database}, Redis {'yes' if HAS_REDIS else 'no'}"]
    if not (ON_POSTGRES and HAS_REDIS):
        lines.append(
            "baton: integration tests SKIPPED: they need DATABASE_URL=postgres://… and REDIS_URL=redis://…"
        )
    if not shutil.which(CHROMIUM):
        lines.append(f"baton: browser tests SKIPPED: no Chromium at {CHROMIUM} (apt-get install chromium)")
    return lines


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    skip_integration = pytest.mark.skip(
        reason="integration tests need PostgreSQL and Redis: set DATABASE_URL=postgres://… and REDIS_URL=redis://…"
    )
    skip_browser = pytest.mark.skip(
        reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)"
    )
    for item in items:
        if "integration" in item.keywords and not (ON_POSTGRES and HAS_REDIS):
            item.add_marker(skip_integration)
        if "browser" in item.keywords and not shutil.which(CHROMIUM):
            item.add_marker(skip_browser)


# Transactional tests end with a flush (TRUNCATE on PostgreSQL), which the audit trail's
# append-only trigger rightly refuses. Test teardown, and only it, flushes with ordinary
# triggers off for that one transaction (a superuser-only PostgreSQL switch).
_original_sql_flush = DatabaseOperations.sql_flush


def _sql_flush_with_triggers_off(self: DatabaseOperations, *args: Any, **kwargs: Any) -> list[str]:
    statements = _original_sql_flush(self, *args, **kwargs)
    if not statements:
        return statements
    return ["SET LOCAL session_replication_role = replica", *statements]


DatabaseOperations.sql_flush = _sql_flush_with_triggers_off  # type: ignore[method-assign,assignment]


@pytest.fixture
def approver_group() -> Any:
    return GroupFactory.create(name="reviewers")


@pytest.fixture
def request_type(approver_group: Any) -> RequestType:
    return RequestTypeFactory.create(slug="general", name="General", approver_group=approver_group)


@pytest.fixture
def requester() -> User:
    return make_requester(username="rita")


@pytest.fixture
def approver(approver_group: Any) -> User:
    return make_approver(approver_group, username="alex")


@pytest.fixture
def second_approver(approver_group: Any) -> User:
    return make_approver(approver_group, username="bea")


@pytest.fixture
def manager() -> User:
    return UserFactory.create(username="maria", roles=[MANAGERS])


@pytest.fixture
def auditor() -> User:
    return UserFactory.create(username="audrey", roles=[AUDITORS])


@pytest.fixture
def outsider() -> User:
    """Logged in, but no role and no relation to anything."""
    return UserFactory.create(username="olaf")


@pytest.fixture(autouse=True)
def _attachments_in_a_temporary_folder(tmp_path_factory: pytest.TempPathFactory, settings: Any) -> None:
    """Files added in a test land in a folder of the test run, never in var/attachments."""
    folder = tmp_path_factory.mktemp("attachments")
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": folder, "base_url": None},
        },
    }
