"""`make run` (python -m config.run): the whole embedded system starts, serves, and stops."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
ROLES = ("requester", "approver", "manager", "auditor", "admin")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_with_var_dir(var_dir: Path) -> list[int]:
    """Pids of live processes started with BATON_VAR_DIR=var_dir (the run's children)."""
    marker = f"BATON_VAR_DIR={var_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if marker in environ.split(b"\0") and "State:\tZ" not in status:
            found.append(int(entry.name))
    return found


def _start(var_dir: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"}
    }
    env["BATON_VAR_DIR"] = str(var_dir)
    process = subprocess.Popen(
        [sys.executable, "-m", "config.run", "--port", str(port)],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    output = ""
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while "Press Ctrl-C to stop." not in output:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            pytest.fail(f"config.run exited early ({process.returncode}):\n{output}")
        output += line
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"config.run did not start in time:\n{output}")
    return process, output


def _ctrl_c(process: subprocess.Popen[str]) -> int:
    # A terminal's Ctrl-C signals the whole foreground process group.
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=60)


def test_run_starts_everything_prints_logins_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    # given a fresh var folder and a free port
    var_dir, port = tmp_path / "var", _free_port()

    # when the run command starts
    process, output = _start(var_dir, port)
    try:
        # then it prints the URL and one demo login per role, and the server answers
        assert f"http://127.0.0.1:{port}/" in output
        for role in ROLES:
            assert re.search(rf"^\s+{role}\s+\S+\s+\S+$", output, re.MULTILINE), (
                f"no {role} login in:\n{output}"
            )
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login/", timeout=10) as response:
            assert response.status == 200
            assert b"Log in" in response.read()
        # DEBUG is off by default: a missing page is the styled 404, not Django's URL list
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/no-such-page/", timeout=10)
        assert missing.value.code == 404
        page = missing.value.read()
        assert b"Not found" in page
        assert b"Using the URLconf" not in page
        # the server and the Celery worker (with beat) run beside it
        children = _processes_with_var_dir(var_dir)
        assert len(children) >= 2
    finally:
        # when Ctrl-C is pressed
        status = _ctrl_c(process)

    # then every process it started is gone and it exits cleanly
    assert status == 0
    deadline = time.monotonic() + 15
    while _processes_with_var_dir(var_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _processes_with_var_dir(var_dir) == []


def test_running_twice_duplicates_no_demo_data(tmp_path: Path) -> None:
    # given a system that was started and stopped once
    var_dir = tmp_path / "var"
    process, _ = _start(var_dir, _free_port())
    _ctrl_c(process)
    counts_after_first = _demo_counts(var_dir)

    # when it runs again on the same data
    process, _ = _start(var_dir, _free_port())
    _ctrl_c(process)

    # then the demo data is the same, nothing was created twice
    assert _demo_counts(var_dir) == counts_after_first
    assert counts_after_first["users"] >= len(ROLES)
    assert counts_after_first["requests"] >= 1


def _demo_counts(var_dir: Path) -> dict[str, int]:
    with sqlite3.connect(var_dir / "baton.sqlite3") as db:
        return {
            "users": db.execute("SELECT count(*) FROM accounts_user").fetchone()[0],
            "requests": db.execute("SELECT count(*) FROM approvals_approvalrequest").fetchone()[0],
            "request_types": db.execute("SELECT count(*) FROM approvals_requesttype").fetchone()[0],
            "audit_entries": db.execute("SELECT count(*) FROM workflows_auditentry").fetchone()[0],
            "teams": db.execute("SELECT count(*) FROM accounts_team").fetchone()[0],
        }
