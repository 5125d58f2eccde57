"""A real ASGI server in a thread of the test process, and a real Chromium driving it.

The server runs `config.asgi.application` under uvicorn, so it shares the test database
(tests here are transactional) and the channel layer with the test itself.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import channel_layers
from django.conf import settings
from django.db import connection
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import CHROMIUM

ARTIFACTS = Path(settings.BASE_DIR) / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Remember each phase's outcome on the test, so fixtures can screenshot a failure.
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="module")
def _async_unsafe_allowed() -> Iterator[None]:
    # Playwright's sync API runs an event loop in the main thread, where the test also
    # uses the ORM; Django would refuse that as "async-unsafe" without this switch.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    yield
    if previous is None:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    else:
        os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed: None) -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def _celery_to_memory() -> Iterator[None]:
    """Tasks the pages cause (mail notifications) go to an in-memory broker.

    The filesystem broker of the embedded mode lives in var/, shared with a developer's
    running instance, whose worker would pick these tasks up against another database.
    """
    from config.celery import app as celery_app  # noqa: PLC0415  (the app this fixture reconfigures)

    app: Any = celery_app  # the pools below are private attributes, absent from the stubs
    saved = {"broker_url": app.conf.broker_url, "broker_transport_options": app.conf.broker_transport_options}

    def reset_pools() -> None:
        # What Celery itself does after a fork: the next send builds pools from the config.
        app._pool = None
        if "amqp" in app.__dict__:  # made on first use
            app.__dict__["amqp"]._producer_pool = None

    app.conf.update(broker_url="memory://", broker_transport_options={})
    reset_pools()
    yield
    app.conf.update(saved)
    reset_pools()


@pytest.fixture
def live_server_url(
    transactional_db: None, settings: Any, _async_unsafe_allowed: None, _celery_to_memory: None
) -> Iterator[str]:
    """Serve config.asgi.application on a free port from a thread; stop it afterwards."""
    # Imported once the test database exists: the ASGI module sets Django up on import.
    import config.asgi  # noqa: PLC0415

    # Serve static files from the source folders (the collected copy in var/ may be stale).
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    # Each server thread's connection closes after its request, so none outlives the test
    # (PostgreSQL must be able to drop the test database at the end of the session).
    saved_max_age = connection.settings_dict.get("CONN_MAX_AGE", 0)
    connection.settings_dict["CONN_MAX_AGE"] = 0
    # A fresh channel layer (of the configured kind) for this server: no group members
    # left over from other tests, no state tied to another test's event loop.
    previous_layer = channel_layers.set(
        DEFAULT_CHANNEL_LAYER, channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
    )
    server = uvicorn.Server(
        uvicorn.Config(
            config.asgi.application,
            host="127.0.0.1",
            port=_free_port(),
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    try:
        config.asgi.django_asgi_app.load_middleware(is_async=True)
        thread.start()
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ASGI server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        if thread.is_alive():
            thread.join(15)
        if previous_layer is not None:
            channel_layers.set(DEFAULT_CHANNEL_LAYER, previous_layer)
        else:
            channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
        connection.settings_dict["CONN_MAX_AGE"] = saved_max_age
        settings.WHITENOISE_USE_FINDERS = False
        settings.WHITENOISE_AUTOREFRESH = False
        config.asgi.django_asgi_app.load_middleware(is_async=True)


# Every document reports each Content-Security-Policy violation it sees to the test.
_REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__batonCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} at ${event.documentURI}` +
    (event.sample ? ` (${event.sample})` : "")
  );
});
"""


def _is_csp_message(text: str) -> bool:
    return "Content Security Policy" in text or "Content-Security-Policy" in text


@pytest.fixture
def csp_violations() -> list[str]:
    """What the pages of this test reported against the Content-Security-Policy.

    The test fails at its end when this is not empty; a test that provokes a violation on
    purpose reads it and clears it.
    """
    return []


@pytest.fixture
def new_page(
    browser: Browser, request: pytest.FixtureRequest, live_server_url: str, csp_violations: list[str]
) -> Iterator[Callable[[], Page]]:
    """Open pages, each in its own browser context (its own cookies: one person each).

    The site's Content-Security-Policy is on, as in production: any violation a page
    reports (a `securitypolicyviolation` event, or Chromium's console message about one)
    fails the test. When the test fails, every open page is saved to test-artifacts/ as
    a screenshot.
    """
    contexts: list[BrowserContext] = []
    pages: list[Page] = []

    def open_page() -> Page:
        context = browser.new_context(base_url=live_server_url)
        context.set_default_timeout(10_000)
        context.expose_function("__batonCspViolation", lambda text: csp_violations.append(str(text)))
        context.add_init_script(_REPORT_CSP_VIOLATIONS)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                csp_violations.append(f"console: {message.text}") if _is_csp_message(message.text) else None
            ),
        )
        pages.append(page)
        return page

    yield open_page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for index, page in enumerate(pages):
            path = ARTIFACTS / f"{request.node.name}-{index}.png"
            try:
                page.screenshot(path=str(path), full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"could not save {path}: {exc}")
    for context in contexts:
        context.close()
    if csp_violations:
        pytest.fail(
            "Content-Security-Policy violations on the pages of this test:\n  " + "\n  ".join(csp_violations)
        )
