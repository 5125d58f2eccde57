"""What every settings module reads first: where Baton's files are, and how a setting is
read from the environment."""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent
# Runtime files of the embedded mode (SQLite, broker folders, mail) live here, outside git.
VAR_DIR = Path(os.environ.get("BATON_VAR_DIR", BASE_DIR / "var"))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


# Redis for the channel layer and the Celery broker; empty in the embedded mode.
REDIS_URL = os.environ.get("REDIS_URL", "")
