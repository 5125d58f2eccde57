"""Session limits: idle timeout, absolute lifetime, log out everywhere, deactivation.

The clock the limits read is accounts.sessions.clock; each test sets it.
"""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from channels import DEFAULT_CHANNEL_LAYER
from channels.auth import get_user as channels_get_user
from channels.layers import InMemoryChannelLayer, channel_layers
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from accounts import sessions
from accounts.backends import RoleModelBackend
from accounts.models import User
from config.asgi import application
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

MINUTE, HOUR = 60, 3600
T0 = 1_800_000_000.0


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Clock:
    settings.SESSION_IDLE_TIMEOUT = 30 * MINUTE
    settings.SESSION_ABSOLUTE_TIMEOUT = 12 * HOUR
    fake = Clock(T0)
    monkeypatch.setattr(sessions, "clock", fake)
    return fake


def logged_in_client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def is_logged_in(client: Client) -> bool:
    """Whether a page that needs a login opens (rather than sending to the login page)."""
    response = client.get("/account/")
    return response.status_code == 200


def login_page_says(client: Client, text: str) -> bool:
    return text in client.get("/login/").content.decode()


def test_a_session_ends_after_the_idle_timeout_and_the_login_page_says_why(clock: Clock) -> None:
    # given rita, logged in
    client = logged_in_client(UserFactory.create(username="rita"))
    # when she comes back every 29 minutes for two hours
    for _ in range(4):
        clock.advance(29 * MINUTE)
        # then she is still logged in
        assert is_logged_in(client)
    # when she then leaves it alone for 30 minutes
    session_key = client.session.session_key
    clock.advance(30 * MINUTE)
    # then her next request finds her logged out, sent to the login page with the reason
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    assert login_page_says(client, "You were logged out after 30 minutes without activity.")
    # and the session is gone from the database, not only refused
    assert not Session.objects.filter(session_key=session_key).exists()


def test_a_session_ends_at_its_absolute_lifetime_however_busy(clock: Clock) -> None:
    # given rita, logged in and active every 10 minutes
    client = logged_in_client(UserFactory.create(username="rita"))
    elapsed = 0
    while elapsed + 10 * MINUTE < 12 * HOUR:
        clock.advance(10 * MINUTE)
        elapsed += 10 * MINUTE
        assert is_logged_in(client), f"logged out after {elapsed / HOUR:.2f} h"
    # when 12 hours have passed since she logged in
    clock.advance(12 * HOUR - elapsed)
    # then she is logged out, and told why
    assert not is_logged_in(client)
    assert login_page_says(client, "Your session ended 12 hours after you logged in.")


def test_the_limits_come_from_settings(clock: Clock, settings: Any) -> None:
    # given a 5-minute idle timeout and a 1-hour lifetime
    settings.SESSION_IDLE_TIMEOUT = 5 * MINUTE
    settings.SESSION_ABSOLUTE_TIMEOUT = HOUR
    idle = logged_in_client(UserFactory.create(username="rita"))
    busy = logged_in_client(UserFactory.create(username="alex"))
    # when one waits 5 minutes  /  then that one is logged out
    clock.advance(4 * MINUTE)
    assert is_logged_in(busy)
    clock.advance(MINUTE)
    assert not is_logged_in(idle)
    # when the other stays busy (every 4 minutes) for the hour  /  then it ends at the hour
    clock.advance(3 * MINUTE)
    assert is_logged_in(busy)
    for _ in range(12):
        clock.advance(4 * MINUTE)
        assert is_logged_in(busy)
    clock.advance(4 * MINUTE)  # 60 minutes since the login
    assert not is_logged_in(busy)


def test_the_stored_session_expires_when_the_limits_would_end_it(clock: Clock) -> None:
    # given rita, logged in 11 h 50 min ago and active all along
    client = logged_in_client(UserFactory.create(username="rita"))
    for _ in range(71):
        clock.advance(10 * MINUTE)
        assert is_logged_in(client)
    # when her session is read back from the database
    stored = SessionStore(session_key=client.session.session_key)
    # then its expiry (cookie and row) is no later than the end of its lifetime, and never
    # much later than the idle timeout
    assert stored.get_expiry_age() <= 10 * MINUTE
    clock.advance(-71 * 10 * MINUTE)  # back to the login
    fresh = logged_in_client(UserFactory.create(username="alex"))
    assert is_logged_in(fresh)
    age = SessionStore(session_key=fresh.session.session_key).get_expiry_age()
    assert 30 * MINUTE <= age <= 31 * MINUTE


def test_activity_is_written_at_most_once_a_minute(clock: Clock) -> None:
    # given rita, logged in and having just opened a page
    client = logged_in_client(UserFactory.create(username="rita"))
    assert is_logged_in(client)
    seen = client.session[sessions.SEEN_AT]
    # when she opens pages for another 50 seconds
    for _ in range(5):
        clock.advance(10)
        assert is_logged_in(client)
    # then her activity was not written again (no session write per request)
    assert client.session[sessions.SEEN_AT] == seen
    # when a minute has passed  /  then it is
    clock.advance(10)
    assert is_logged_in(client)
    assert client.session[sessions.SEEN_AT] == seen + 60


# --- log out everywhere ---------------------------------------------------------------------


def test_log_out_everywhere_ends_every_session_of_that_person_only() -> None:
    # given rita logged in on a laptop and a phone, and alex logged in too
    rita = UserFactory.create(username="rita")
    laptop, phone = logged_in_client(rita), logged_in_client(rita)
    alex = logged_in_client(UserFactory.create(username="alex"))
    phone_key = phone.session.session_key
    # when she presses "Log out everywhere" on her account page (on the laptop)
    page = laptop.get("/account/")
    assert 'data-testid="log-out-everywhere"' in page.content.decode()
    response = laptop.post("/account/log-out-everywhere/")
    # then the laptop is sent to the login page, which says what happened
    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert login_page_says(laptop, "You were logged out everywhere")
    # and the phone is logged out at its next request, its session deleted
    assert not is_logged_in(laptop)
    assert not is_logged_in(phone)
    assert not Session.objects.filter(session_key=phone_key).exists()
    # and alex is not affected
    assert is_logged_in(alex)
    # and she can log in again afterwards (a login reads her anew)
    assert is_logged_in(logged_in_client(User.objects.get(pk=rita.pk)))


def test_log_out_everywhere_needs_a_post() -> None:
    # given rita logged in
    client = logged_in_client(UserFactory.create(username="rita"))
    # when something tries it with a GET (a link, an image)  /  then nothing ends
    assert client.get("/account/log-out-everywhere/").status_code == 405
    assert is_logged_in(client)


def test_an_administrator_logs_a_person_out_everywhere_from_the_admin() -> None:
    # given rita logged in, and an administrator
    rita = UserFactory.create(username="rita")
    client = logged_in_client(rita)
    admin = logged_in_client(UserFactory.create(username="root", is_staff=True, is_superuser=True))
    # when the administrator runs "Log the selected people out everywhere" on her
    response = admin.post("/admin/accounts/user/", {"action": "end_sessions", "_selected_action": [rita.pk]})
    assert response.status_code == 302
    # then her session ends, and the administrator's does not
    assert not is_logged_in(client)
    assert admin.get("/admin/").status_code == 200


# Channels reads the session in database_sync_to_async, which closes the calling thread's
# connection when it sits in a test's open transaction (PostgreSQL): such tests commit.
@pytest.mark.django_db(transaction=True)
def test_a_websocket_cannot_connect_with_a_session_ended_everywhere() -> None:
    # given rita's session, as a WebSocket would present it
    rita = UserFactory.create(username="rita")
    client = logged_in_client(rita)
    key = client.session.session_key
    assert async_to_sync(channels_get_user)({"session": SessionStore(session_key=key)}) == rita
    # when she logs out everywhere
    sessions.sessions_end_everywhere(rita)
    # then Channels refuses the session too
    user = async_to_sync(channels_get_user)({"session": SessionStore(session_key=key)})
    assert not user.is_authenticated


def test_a_password_change_still_ends_other_sessions_after_log_out_everywhere() -> None:
    # given rita, who once logged out everywhere, logged in again on two devices
    rita = UserFactory.create(username="rita")
    sessions.sessions_end_everywhere(rita)
    one, other = logged_in_client(rita), logged_in_client(rita)
    assert is_logged_in(one)
    assert is_logged_in(other)
    # when her password changes
    rita.set_password("a-new-password-1234")
    rita.save()
    # then the sessions made with the old one end (as Django does without the generation)
    assert not is_logged_in(one)
    assert not is_logged_in(other)


# --- deactivation -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_deactivated_person_is_logged_out_at_their_next_request() -> None:
    # given rita, logged in
    rita = UserFactory.create(username="rita")
    client = logged_in_client(rita)
    key = client.session.session_key
    assert is_logged_in(client)
    # when an administrator deactivates her
    User.objects.filter(pk=rita.pk).update(is_active=False)
    # then her very next request is anonymous, sent to the login page
    response = client.get("/account/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")
    # and her session is flushed, not kept for a reactivation
    assert not Session.objects.filter(session_key=key).exists()
    # and her WebSocket cannot connect with it either
    user = async_to_sync(channels_get_user)({"session": SessionStore(session_key=key)})
    assert not user.is_authenticated


def test_django_s_model_backend_refuses_an_inactive_user_when_loading_a_session() -> None:
    # given an inactive person
    rita = UserFactory.create(username="rita", is_active=False)
    # when a backend loads the user a session names  /  then there is none
    assert ModelBackend().get_user(rita.pk) is None
    assert RoleModelBackend().get_user(rita.pk) is None


# --- WebSockets --------------------------------------------------------------------------------


async def _connects(client: Client) -> tuple[bool, Any]:
    """Open /ws/inbox/ with the client's session cookie: (accepted, close code)."""
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    scope = {
        "type": "websocket",
        "path": "/ws/inbox/",
        "query_string": b"",
        "headers": [(b"cookie", cookie.encode()), (b"origin", b"http://localhost"), (b"host", b"localhost")],
        "subprotocols": [],
        "client": ["127.0.0.1", 40000],
        "server": ["127.0.0.1", 8000],
    }
    socket = ApplicationCommunicator(application, scope)
    await socket.send_input({"type": "websocket.connect"})
    answer = await socket.receive_output(timeout=10)
    # The browser's side of the closing handshake, either way.
    await socket.send_input({"type": "websocket.disconnect", "code": 1000})
    await socket.wait(timeout=10)
    if answer["type"] == "websocket.accept":
        return True, None
    return False, answer.get("code")


@pytest.fixture
def _fresh_channel_layer() -> Any:
    """An in-memory channel layer for these sockets: each test call runs its own event loop,
    and a Redis layer's connections belong to the loop that made them."""
    previous = channel_layers.set(DEFAULT_CHANNEL_LAYER, InMemoryChannelLayer())
    yield
    if previous is not None:
        channel_layers.set(DEFAULT_CHANNEL_LAYER, previous)
    else:
        channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
def test_a_websocket_of_an_idle_session_is_refused(clock: Clock) -> None:
    # given rita, logged in, whose live inbox connects
    client = logged_in_client(UserFactory.create(username="rita"))
    assert async_to_sync(_connects)(client)[0] is True
    # when her session has been idle past the limit
    clock.advance(30 * MINUTE)
    # then her WebSocket is refused as for nobody logged in
    assert async_to_sync(_connects)(client) == (False, 4401)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("_fresh_channel_layer")
def test_a_websocket_past_the_absolute_lifetime_is_refused(clock: Clock) -> None:
    client = logged_in_client(UserFactory.create(username="rita"))
    for _ in range(12 * 6 - 1):
        clock.advance(10 * MINUTE)
        assert is_logged_in(client)
    assert async_to_sync(_connects)(client)[0] is True
    clock.advance(10 * MINUTE)
    assert async_to_sync(_connects)(client) == (False, 4401)
