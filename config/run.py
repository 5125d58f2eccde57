"""`python -m config.run`: the whole of Baton on one machine, on the embedded default.

Migrates, loads the demo data (idempotent), then starts and watches:
- the ASGI server (uvicorn): pages, API, WebSockets on the in-memory channel layer, and
  the outbox relay for that layer (config.asgi runs it through the lifespan protocol);
- a Celery worker with beat embedded, on kombu's filesystem broker in var/.

Prints the URL and the demo logins once the server answers. Ctrl-C (or SIGTERM) stops
every process it started; if one of them dies, the others are stopped too and the exit
status says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STOP_GRACE_SECONDS = 10.0


def _manage(*args: str, env: dict[str, str]) -> str:
    """Run a management command to completion; its output is returned, failures abort."""
    done = subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), *args],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(f"manage.py {' '.join(args)} failed (exit {done.returncode})")
    return done.stdout


def _wait_for_port(host: str, port: int, *, timeout: float, watched: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in watched):
            raise SystemExit("a process stopped while Baton was starting; see its output above")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer on {host}:{port} within {timeout:.0f} s")


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM everything still running, wait, then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        remaining = max(0.1, deadline - time.monotonic())
        try:
            process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default=os.environ.get("BATON_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("BATON_PORT", "8000")))
    args = parser.parse_args(argv)

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.embedded")
    env.setdefault("BATON_BASE_URL", f"http://{args.host}:{args.port}")

    print("Baton: migrating and loading demo data…", flush=True)
    _manage("migrate", "--noinput", env=env)
    _manage("collectstatic", "--noinput", env=env)
    logins = _manage("demo_load", env=env)

    processes: list[subprocess.Popen[bytes]] = []
    stopping = False

    def request_stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        processes.append(
            subprocess.Popen(
                [
                    str(BIN / "uvicorn"),
                    "config.asgi:application",
                    "--host",
                    args.host,
                    "--port",
                    str(args.port),
                    "--lifespan",
                    "on",
                    "--no-access-log",
                ],
                cwd=BASE_DIR,
                env=env,
            )
        )
        # gossip, mingle and heartbeats need broadcast, which the filesystem broker lacks.
        processes.append(
            subprocess.Popen(
                [
                    str(BIN / "celery"),
                    "-A",
                    "config",
                    "--quiet",
                    "worker",
                    "--beat",
                    "--loglevel",
                    "WARNING",
                    "--concurrency",
                    "2",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                ],
                cwd=BASE_DIR,
                env=env,
            )
        )
        _wait_for_port(args.host, args.port, timeout=60, watched=processes)
        url = f"http://{args.host}:{args.port}/"
        print(f"\nBaton is running at {url}\n{logins}\nPress Ctrl-C to stop.\n", flush=True)
        while not stopping:
            dead = [p for p in processes if p.poll() is not None]
            if dead:
                print(f"{dead[0].args!r} exited with status {dead[0].returncode}; stopping.", file=sys.stderr)
                return 1
            time.sleep(0.5)
        return 0
    finally:
        print("Baton: stopping…", flush=True)
        _stop(processes)


if __name__ == "__main__":
    sys.exit(main())
