"""Policy files (YAML or JSON, kept in git): reading, checking and loading them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from accounts.models import User
from approvals.models import PolicyVersion, RequestType
from approvals.models.types import document_checksum
from approvals.publishing.drafts import CheckResult, document_problems, policy_draft_create, policy_publish
from approvals.routing import PolicyError, policy_parse
from approvals.routing.limits import POLICY_BOUNDS, DocumentTextError, document_text_load
from approvals.schemas import schema_problems
from workflows import errors


@dataclass
class LoadResult:
    path: str
    request_type: RequestType | None = None
    version: PolicyVersion | None = None
    created_type: bool = False
    new_version: bool = False
    published: bool = False
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.problems:
            return f"{self.path}: " + "; ".join(self.problems)
        assert self.version is not None
        what = "new draft" if self.new_version else "unchanged"
        if self.published:
            what = "published" if self.new_version else "already published"
        return f"{self.path}: {self.version} {what}"


def policy_file_read(path: Path) -> dict[str, Any]:
    """A policy file (YAML or JSON) as a mapping; raises PolicyError saying what is wrong.

    Read within POLICY_BOUNDS (size, nesting, values; YAML's safe loader only, limited to
    what JSON holds), so no file can exhaust memory or the stack.
    """
    try:
        size = path.stat().st_size
        if size > POLICY_BOUNDS.max_bytes:
            raise DocumentTextError(f"it is too large: {size:,} bytes, at most {POLICY_BOUNDS.max_bytes:,}")
        with path.open("rb") as handle:
            raw = handle.read(POLICY_BOUNDS.max_bytes + 1)
        text = raw.decode("utf-8")
        loaded = document_text_load(text, bounds=POLICY_BOUNDS, json_only=path.suffix == ".json")
    except DocumentTextError as exc:
        raise PolicyError([f"cannot read it: {exc}"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError([f"cannot read it: {exc}"]) from None
    if not isinstance(loaded, dict):
        raise PolicyError(["a policy file is a mapping with request_type and stages"])
    return loaded


def split_policy_file(loaded: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the request type part, the policy document) of a policy file."""
    raw_type = loaded.get("request_type")
    shape = "request_type must be a slug or a mapping of slug, name, description, payload_schema"
    if not isinstance(raw_type, str | dict):
        raise PolicyError([shape])
    type_part: dict[str, Any] = {"slug": raw_type} if isinstance(raw_type, str) else dict(raw_type)
    unknown = set(type_part) - TYPE_KEYS
    if not type_part.get("slug") or not isinstance(type_part["slug"], str) or unknown:
        raise PolicyError(
            [shape]
            + ([f"request_type: unknown key(s) {', '.join(sorted(map(str, unknown)))}"] if unknown else [])
        )
    document = {k: v for k, v in loaded.items() if k not in {"request_type", "name", "description"}}
    return type_part, document


def policy_file_load(*, path: Path, publish: bool, actor: User | None = None) -> LoadResult:
    """Load one policy file: create or update its request type, add a draft version when
    the policy differs from the type's latest version, and publish it if asked.

    Idempotent: loading the same file again adds nothing. Problems are returned, not
    raised, so a batch of files reports every broken one; nothing of a broken file is kept.
    """
    result = LoadResult(path=str(path))
    try:
        type_part, document = split_policy_file(policy_file_read(path))
        policy_parse(document)
    except PolicyError as exc:
        result.problems = exc.problems
        return result
    try:
        with transaction.atomic():
            _load(result, type_part=type_part, document=document, publish=publish, actor=actor)
    except errors.InvalidInput as exc:
        result.problems = [p for ps in exc.field_errors.values() for p in ps] or [exc.detail]
        result.version, result.new_version, result.published = None, False, False
    return result


def _load(
    result: LoadResult,
    *,
    type_part: dict[str, Any],
    document: dict[str, Any],
    publish: bool,
    actor: User | None,
) -> None:
    defaults: dict[str, Any] = {
        k: type_part[k] for k in ("name", "description", "payload_schema") if k in type_part
    }
    problems = schema_problems(defaults["payload_schema"]) if "payload_schema" in defaults else []
    if problems:
        raise errors.InvalidInput("bad payload schema", field_errors={"payload_schema": problems})
    request_type, result.created_type = RequestType.objects.get_or_create(
        slug=type_part["slug"],
        defaults={"name": type_part["slug"].replace("-", " ").capitalize(), **defaults},
    )
    if not result.created_type and defaults:
        for key, value in defaults.items():
            setattr(request_type, key, value)
        request_type.save()
    result.request_type = request_type
    latest = request_type.policy_versions.order_by("-number").first()
    if latest is not None and latest.checksum == document_checksum(document):
        result.version = latest
    else:
        result.version = policy_draft_create(
            request_type=request_type, document=document, actor=actor, source=result.path
        )
        result.new_version = True
    if publish:
        if not result.version.is_published:
            result.version = policy_publish(version=result.version, actor=actor)
        elif request_type.current_policy_id != result.version.pk:
            request_type.current_policy = result.version
            request_type.save(update_fields=["current_policy"])
        result.published = True


POLICY_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def policy_file_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """The policy files `paths` name, directories expanded to their *.yaml, *.yml and *.json
    (sorted); and one problem line per path that names no policy file."""
    found: list[Path] = []
    problems: list[str] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            inside = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in POLICY_FILE_SUFFIXES)
            if not inside:
                problems.append(f"{path}: no *.yaml, *.yml or *.json files in this directory")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            problems.append(f"{path}: no such file or directory")
    return found, problems


def policy_file_check(*, path: Path) -> CheckResult:
    """The publish-time problems of a policy file, without loading it: checked against the
    payload schema in the file or, when the file has none, the existing type's schema."""
    result = CheckResult(where=str(path))
    try:
        type_part, document = split_policy_file(policy_file_read(path))
    except PolicyError as exc:
        result.problems = exc.problems
        return result
    result.slug = str(type_part["slug"])
    schema = type_part.get("payload_schema")
    if schema is None:
        existing = RequestType.objects.filter(slug=result.slug).first()
        schema = existing.payload_schema if existing is not None else {}
    result.problems = document_problems(document=document, schema=schema)
    return result


TYPE_KEYS = {"slug", "name", "description", "payload_schema"}
