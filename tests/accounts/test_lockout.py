"""Login throttling and lockout: real login POSTs through Django's test client.

A user name is locked after LOGIN_FAILURE_LIMIT failures and an address after
LOGIN_FAILURE_LIMIT_PER_ADDRESS; while locked the right password is refused too, the login
page says so, the lockout is logged and recorded, and an administrator can unlock.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.core.management import call_command
from django.test import Client, RequestFactory
from django.utils import timezone

from accounts.lockout import LOCKOUT_STATUS, client_address
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

RIGHT = "pw"  # the factories' password


@pytest.fixture(autouse=True)
def _limits(settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = settings.AXES_FAILURE_LIMIT = 5
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 20
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.TRUSTED_PROXY_COUNT = 0


def browser(address: str = "198.51.100.7", **extra: Any) -> Client:
    return Client(REMOTE_ADDR=address, **extra)


def log_in(client: Client, username: str, password: str) -> Any:
    return client.post("/login/", {"username": username, "password": password, "next": "/inbox/"})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_the_fifth_wrong_password_locks_the_user_name_even_for_the_right_password(caplog: Any) -> None:
    # given a person, and someone guessing their password
    rita = UserFactory.create(username="rita")
    guesser = browser()
    # when four guesses fail
    for _ in range(4):
        response = log_in(guesser, "rita", "wrong")
        # then each is refused as a wrong password, not yet as a lockout
        assert response.status_code == 200
        assert b"Please enter a correct username and password" in response.content
        assert b'data-testid="lockout"' not in response.content
    # when the fifth fails
    with caplog.at_level(logging.WARNING, logger="baton.security"):
        fifth = log_in(guesser, "rita", "wrong")
    # then the login page answers 429 and says the user name is locked, and for how long
    assert fifth.status_code == LOCKOUT_STATUS
    text = fifth.content.decode()
    assert 'data-testid="lockout"' in text
    assert "Too many failed logins" in text
    assert "for 15 minutes, or until an administrator unlocks it" in text
    # and the lockout is one clear log line naming the user name and the address
    lines = [r.getMessage() for r in caplog.records if r.name == "baton.security"]
    assert any("login locked out: user name 'rita', address 198.51.100.7" in line for line in lines), lines
    # and it is recorded for an administrator: the count, and every failure
    assert AccessAttempt.objects.get(username="rita").failures_since_start == 5
    assert AccessFailureLog.objects.filter(username="rita").count() == 5
    assert AccessFailureLog.objects.filter(username="rita", locked_out=True).exists()

    # when the person themself then types the right password, from another address
    owner = browser("203.0.113.50")
    response = log_in(owner, "rita", RIGHT)
    # then they are refused too, with the same clear message, and are not logged in
    assert response.status_code == LOCKOUT_STATUS
    assert "Too many failed logins" in response.content.decode()
    assert not logged_in(owner)
    assert rita.is_active


def test_an_address_is_locked_after_its_own_higher_limit_across_user_names() -> None:
    # given people, and one address trying one wrong password each against many user names
    UserFactory.create(username="rita")
    for n in range(20):
        UserFactory.create(username=f"person{n}")
    sprayer = browser("192.0.2.66")
    # when 19 guesses fail, each on another user name (under every user name's own limit)
    for n in range(19):
        assert log_in(sprayer, f"person{n}", "wrong").status_code == 200
    # then that address may still log in
    # when the 20th fails
    assert log_in(sprayer, "person19", "wrong").status_code == LOCKOUT_STATUS
    # then from that address even rita, with her right password, is refused
    assert log_in(sprayer, "rita", RIGHT).status_code == LOCKOUT_STATUS
    # and from another address she logs in: her user name was never guessed at
    elsewhere = browser("203.0.113.50")
    response = log_in(elsewhere, "rita", RIGHT)
    assert response.status_code == 302
    assert logged_in(elsewhere)


def test_an_administrator_unlocks_a_user_name_with_the_command() -> None:
    # given a locked user name
    UserFactory.create(username="rita")
    for _ in range(5):
        log_in(browser(), "rita", "wrong")
    assert log_in(browser(), "rita", RIGHT).status_code == LOCKOUT_STATUS
    # when an administrator runs the unlock command for it
    call_command("axes_reset_username", "rita", stdout=_Sink())
    # then the right password logs her in again
    client = browser()
    assert log_in(client, "rita", RIGHT).status_code == 302
    assert logged_in(client)


def test_an_administrator_unlocks_an_address_with_the_command() -> None:
    # given an address locked by guesses across user names
    UserFactory.create(username="rita")
    for n in range(20):
        log_in(browser("192.0.2.66"), f"nobody{n}", "wrong")
    assert log_in(browser("192.0.2.66"), "rita", RIGHT).status_code == LOCKOUT_STATUS
    # when an administrator unlocks the address
    call_command("axes_reset_ip", "192.0.2.66", stdout=_Sink())
    # then logins from it work again
    assert log_in(browser("192.0.2.66"), "rita", RIGHT).status_code == 302


def test_an_administrator_unlocks_in_the_admin_by_deleting_the_attempts() -> None:
    # given a locked user name, and an administrator
    UserFactory.create(username="rita")
    for _ in range(5):
        log_in(browser(), "rita", "wrong")
    admin_user = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    admin = Client()
    admin.force_login(admin_user)
    # when the administrator sees the access attempts in the admin
    listing = admin.get("/admin/axes/accessattempt/")
    assert listing.status_code == 200
    assert "rita" in listing.content.decode()
    # and deletes rita's attempts with the admin action
    attempts = AccessAttempt.objects.filter(username="rita")
    response = admin.post(
        "/admin/axes/accessattempt/",
        {"action": "delete_selected", "_selected_action": [a.pk for a in attempts], "post": "yes"},
    )
    assert response.status_code == 302
    # then she logs in with the right password
    client = browser()
    assert log_in(client, "rita", RIGHT).status_code == 302
    # and the failures stay on record for the administrator
    assert AccessFailureLog.objects.filter(username="rita").count() == 5
    assert admin.get("/admin/axes/accessfailurelog/").status_code == 200


def test_the_lockout_ends_by_itself_after_the_cool_off() -> None:
    # given a user name locked 16 minutes ago (the cool-off is 15)
    UserFactory.create(username="rita")
    for _ in range(5):
        log_in(browser(), "rita", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    # when she logs in with the right password
    client = browser()
    # then she is in
    assert log_in(client, "rita", RIGHT).status_code == 302


def test_without_a_cool_off_only_an_administrator_unlocks(settings: Any) -> None:
    # given lockouts that never end by themselves (LOGIN_LOCKOUT_MINUTES=0)
    settings.AXES_COOLOFF_TIME = None
    UserFactory.create(username="rita")
    for _ in range(5):
        log_in(browser(), "rita", "wrong")
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(days=30))
    # when she tries a month later  /  then she is still refused, told to ask an administrator
    response = log_in(browser(), "rita", RIGHT)
    assert response.status_code == LOCKOUT_STATUS
    assert "locked until an administrator unlocks it" in response.content.decode()


def test_a_successful_login_does_not_wipe_the_failures_of_its_address() -> None:
    # given someone with an account of their own, guessing another person's password
    UserFactory.create(username="rita")
    UserFactory.create(username="mallory")
    attacker = browser("192.0.2.13")
    for _ in range(4):
        log_in(attacker, "rita", "wrong")
    # when they log in to their own account in between
    assert log_in(Client(REMOTE_ADDR="192.0.2.13"), "mallory", RIGHT).status_code == 302
    # then their next guess still locks rita's user name (the count did not start again)
    assert log_in(attacker, "rita", "wrong").status_code == LOCKOUT_STATUS


# --- the client's address behind proxies -------------------------------------------------


@pytest.mark.parametrize(
    ("proxies", "remote", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "", "198.51.100.7"),
        # no proxy configured: a header the client wrote is ignored
        (0, "198.51.100.7", "203.0.113.9", "198.51.100.7"),
        # one proxy: the address it saw is the last entry; what the client wrote before it is not trusted
        (1, "10.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),
        (2, "10.0.0.3", "6.6.6.6, 203.0.113.9, 10.0.0.2", "203.0.113.9"),
        # the header is shorter than the proxies: the request did not come through them
        (2, "10.0.0.3", "203.0.113.9", "10.0.0.3"),
        (1, "10.0.0.2", "", "10.0.0.2"),
        # not an address
        (1, "10.0.0.2", "not-an-address", "10.0.0.2"),
        (1, "10.0.0.2", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_the_client_address_is_read_through_the_trusted_proxies_only(
    settings: Any, proxies: int, remote: str, forwarded: str, expected: str
) -> None:
    # given a number of trusted proxies and a request as it arrives
    settings.TRUSTED_PROXY_COUNT = proxies
    meta: dict[str, Any] = {"REMOTE_ADDR": remote}
    if forwarded:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    request = RequestFactory().get("/login/", **meta)
    # when the client's address is read  /  then it is the one the outermost proxy saw
    assert client_address(request) == expected


def test_behind_a_proxy_one_client_s_failures_do_not_lock_another(settings: Any) -> None:
    # given one trusted proxy, through which every request arrives from 10.0.0.2
    settings.TRUSTED_PROXY_COUNT = 1
    settings.LOGIN_FAILURE_LIMIT_PER_ADDRESS = 5
    UserFactory.create(username="rita")
    guesser = browser("10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.66")
    # when one client fails five times on user names that do not exist
    for n in range(5):
        log_in(guesser, f"nobody{n}", "wrong")
    assert log_in(guesser, "rita", RIGHT).status_code == LOCKOUT_STATUS
    # then another client behind the same proxy still logs in
    client = browser("10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.50")
    assert log_in(client, "rita", RIGHT).status_code == 302
    # and the recorded address is the client's, not the proxy's
    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {"192.0.2.66"}


class _Sink:
    def write(self, text: str) -> None:
        pass

    def flush(self) -> None:
        pass
