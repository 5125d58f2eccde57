"""Fixtures for the integration tests: real PostgreSQL, real Redis, real subprocesses.

Every test here is marked `integration`; the root conftest skips them (with the reason)
unless DATABASE_URL points at PostgreSQL and REDIS_URL at a Redis. Subprocesses (Redis
servers, a Celery worker, an ASGI server) are always stopped in teardown, also when a
test fails, and ports are found free at run time.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from django.conf import settings
from django.db import connection, connections

from config.celery import app as celery_app
from tests.listening import channel_collect, channel_listen

REPO = Path(settings.BASE_DIR)
VENV_BIN = REPO / ".venv" / "bin"
# One Celery worker process, one task at a time, logging what it runs (the integration
# tests read its log to know it is ready and what it did).
CELERY_WORKER = [
    str(VENV_BIN / "celery"),
    "-A",
    "config",
    "worker",
    "--pool=solo",
    "--concurrency=1",
    "--without-gossip",
    "--without-mingle",
    "--without-heartbeat",
    "-Q",
    "celery",
    "--loglevel=INFO",
]
REDIS_SERVER = "redis-server"


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, interval: float = 0.05) -> None:
    """Poll `check` until it is true; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def redis_layer_config(url: str, *, prefix: str) -> dict[str, Any]:
    """CHANNEL_LAYERS pointing at the Redis at `url`, as production configures them."""
    return {
        "default": {
            "BACKEND": "workflows.channel_layer.LeanPubSubChannelLayer",
            "CONFIG": {"hosts": [url], "prefix": prefix},
        }
    }


# --- threads that really collide ------------------------------------------------------


@dataclass
class ThreadOutcome:
    index: int
    value: Any = None
    error: BaseException | None = None


def run_concurrently(count: int, work: Callable[[int], Any], *, timeout: float = 120) -> list[ThreadOutcome]:
    """Run `work(i)` in `count` threads that start together, each on its own DB connection.

    Each thread opens its connection before the barrier (so connecting does not spread
    them out) and closes it at the end, so no connection outlives the test.
    """
    barrier = threading.Barrier(count)
    outcomes = [ThreadOutcome(index=i) for i in range(count)]

    def run(i: int) -> None:
        try:
            connection.ensure_connection()
            barrier.wait(timeout=timeout)
            outcomes[i].value = work(i)
        except BaseException as exc:  # reported to the test, which asserts on it
            outcomes[i].error = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,), name=f"actor-{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(t.is_alive() for t in threads), "a concurrent actor did not finish in time"
    return outcomes


# --- Redis ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def redis_test_db() -> Iterator[redis.Redis]:
    """The Redis database named by REDIS_URL, emptied before each test.

    Every after-commit push of every test lands there (channel messages, Celery tasks
    nobody consumes); a worker started later must not run another test's tasks.
    """
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    yield client
    client.close()


class RedisServer:
    """A redis-server of our own on a fixed port, to stop and start again."""

    def __init__(self, *, port: int, workdir: Path) -> None:
        self.port = port
        self.workdir = workdir
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=0.2)

        def answers() -> bool:
            assert self.process is not None
            assert self.process.poll() is None, f"redis-server on port {self.port} exited"
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        try:
            wait_until(answers, timeout=10, what=f"redis-server on port {self.port}")
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None
        wait_until(lambda: not port_open(self.port), timeout=5, what=f"port {self.port} to close")

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A private redis-server, started; stopped at teardown whatever happened."""
    server = RedisServer(port=free_port(), workdir=tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- Celery's broker --------------------------------------------------------------------


def _celery_drop_connections() -> None:
    # What Celery itself does after a fork: forget the broker connection and producer
    # pools, so the next send connects to whatever `broker_url` says now. (Private
    # attributes, hence Any.)
    app: Any = celery_app
    if app._pool is not None:
        app._pool.force_close_all()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def celery_broker() -> Iterator[Callable[[str], None]]:
    """Point the Celery app's broker at another URL for one test.

    The Celery app reads Django's settings once, so overriding CELERY_BROKER_URL with
    the `settings` fixture would not reach it; this changes the app's own config.
    """
    original = celery_app.conf.broker_url

    def point_at(url: str) -> None:
        _celery_drop_connections()
        celery_app.conf["broker_url"] = url

    try:
        yield point_at
    finally:
        _celery_drop_connections()
        celery_app.conf["broker_url"] = original


def celery_queue_task_ids(client: redis.Redis, queue: str = "celery") -> list[str]:
    """The task ids waiting in a Redis-broker queue, oldest first."""
    raw = client.lrange(queue, 0, -1)
    return [json.loads(item)["headers"]["id"] for item in reversed(raw)]


# --- a receiver on the channel layer ------------------------------------------------------


@dataclass
class ChannelReceiver:
    """A channel on the current channel layer that joins groups and collects messages, as
    a connected browser's would (see tests/listening.py)."""

    name: str = ""

    def join(self, groups: list[str]) -> None:
        self.name = channel_listen(*groups)

    def receive(self, *, expected: int, timeout: float, linger: float = 0.5) -> list[dict[str, Any]]:
        """Collect messages until `expected` arrived (or `timeout`), then wait `linger`
        seconds more, so that a duplicate or an extra message would show up too."""
        return channel_collect(self.name, expected=expected, timeout=timeout, linger=linger)


@pytest.fixture
def channel_receiver() -> ChannelReceiver:
    return ChannelReceiver()


# --- subprocesses that use the test database ------------------------------------------------


def database_url_of_this_test() -> str:
    """The URL of the database this test runs on (test_<name>), for a subprocess."""
    db = connection.settings_dict
    user = quote(db.get("USER") or "")
    password = quote(db.get("PASSWORD") or "")
    auth = f"{user}:{password}@" if password else f"{user}@"
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{auth}{host}:{port}/{db['NAME']}"


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a Baton process that shares this test's database and Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        DATABASE_URL=database_url_of_this_test(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.REDIS_URL,
        # Idle connections of a subprocess would make the test database's teardown wait.
        CONN_MAX_AGE="0",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(REPO),
    )
    env.update(extra)
    return env


@dataclass
class Service:
    """A subprocess whose output goes to a log file that tests can read."""

    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


class Services:
    """Starts subprocesses and stops every one of them (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[Service] = []

    def start(self, name: str, argv: list[str], *, env: dict[str, str]) -> Service:
        log_path = self.workdir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        service = Service(process=process, log_path=log_path)
        self.started.append(service)
        return service

    def stop_all(self) -> None:
        for service in reversed(self.started):
            if service.process.poll() is not None:
                continue
            # Its own session: the signal also reaches any child it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(service.process.pid, signal.SIGTERM)
            try:
                service.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(service.process.pid, signal.SIGKILL)
                service.process.wait(timeout=10)


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    started = Services(tmp_path)
    try:
        yield started
    finally:
        started.stop_all()
