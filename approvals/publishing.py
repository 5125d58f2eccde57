"""Administering approval policies: drafting, checking, publishing, loading from files,
simulating, and moving in-flight requests to a new version.

Used by the Django admin and the `policy_load`, `policy_check`, `policy_move` and
`policy_simulate` commands. Published versions never change; each request keeps the
version it was submitted under until an explicit, audited move.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from accounts.models import User
from approvals.models import ApprovalRequest, PolicyVersion, RequestType, State
from approvals.models.requests import STATES
from approvals.routing import Person, Policy, PolicyError, Route, policy_parse, policy_problems
from approvals.routing.limits import POLICY_BOUNDS, DocumentTextError, document_text_load
from approvals.schemas import schema_problems
from approvals.stages import plan_move, route_simulate, users_who_may_decide
from workflows import errors
from workflows.models import Handoff
from workflows.services import SYSTEM, SystemActor, transition

if TYPE_CHECKING:
    from collections.abc import Iterable

IN_FLIGHT = (State.IN_REVIEW, State.CHANGES_REQUESTED)
TYPE_KEYS = {"slug", "name", "description", "payload_schema"}


class DatabaseDirectory:
    """The policy checker's view of this installation's people and groups."""

    def user(self, name: str) -> Person | None:
        found = User.objects.filter(username=name, is_active=True).first()
        if found is None:
            return None
        return Person(id=found.pk, name=found.username, may_decide=bool(users_who_may_decide([found.pk])))

    def group_members(self, name: str) -> list[Person] | None:
        group = Group.objects.filter(name=name).first()
        if group is None:
            return None
        members = list(User.objects.filter(groups=group, is_active=True).order_by("username"))
        deciders = users_who_may_decide(m.pk for m in members)
        return [Person(id=m.pk, name=m.username, may_decide=m.pk in deciders) for m in members]


def document_problems(*, document: Any, schema: Any) -> list[str]:
    """Every reason not to publish `document` as a policy for a type with `schema`."""
    problems = [f"payload schema: {p}" for p in schema_problems(schema)]
    try:
        policy = policy_parse(document)
    except PolicyError as exc:
        return problems + exc.problems
    return problems + policy_problems(policy, schema=schema or {}, directory=DatabaseDirectory())


def version_problems(version: PolicyVersion) -> list[str]:
    return document_problems(document=version.document, schema=version.request_type.payload_schema)


# --- drafting and publishing ---------------------------------------------------------------


def policy_draft_create(
    *, request_type: RequestType, document: Any, actor: User | None, source: str = "admin"
) -> PolicyVersion:
    """A new draft version numbered after the type's last one. The document must at least
    read as a policy (PolicyError otherwise); whether it may be published is checked then."""
    policy_parse(document)
    with transaction.atomic():
        # Lock the type so two drafts made at once get different numbers.
        RequestType.objects.select_for_update().get(pk=request_type.pk)
        last = request_type.policy_versions.aggregate(n=Max("number"))["n"] or 0
        return PolicyVersion.objects.create(
            request_type=request_type, number=last + 1, document=document, source=source, created_by=actor
        )


def policy_publish(*, version: PolicyVersion, actor: User | None) -> PolicyVersion:
    """Publish a draft: it becomes the version new submissions of its type follow.

    Raises InvalidInput listing every problem (nothing changes then). Published versions
    never change afterwards; requests already submitted keep their version.
    """
    with transaction.atomic():
        request_type = RequestType.objects.select_for_update().get(pk=version.request_type_id)
        version = PolicyVersion.objects.select_related("request_type").get(pk=version.pk)
        if version.is_published:
            raise errors.TransitionNotAllowed(f"{version} is already published.")
        problems = version_problems(version)
        if problems:
            raise errors.InvalidInput(
                f"{version} cannot be published: {len(problems)} problem(s).",
                field_errors={"document": problems},
            )
        # update(), not save(): the model refuses saves of published versions.
        PolicyVersion.objects.filter(pk=version.pk).update(
            status=PolicyVersion.Status.PUBLISHED, published_at=timezone.now(), published_by=actor
        )
        request_type.current_policy_id = version.pk
        request_type.save(update_fields=["current_policy"])
        version.refresh_from_db()
        return version


# --- files ---------------------------------------------------------------------------------


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
    from approvals.models.types import document_checksum

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


# --- simulation ----------------------------------------------------------------------------


def policy_simulate(*, policy: Policy, payload: dict[str, Any], requester: User) -> Route:
    """The route a request would take; see approvals.stages.route_simulate."""
    return route_simulate(policy=policy, payload=payload, requester=requester)


# --- moving in-flight requests -----------------------------------------------------------


@dataclass
class MoveRow:
    """What moving one request would do (the dry run), or did."""

    request: ApprovalRequest
    from_version: int | None
    from_stage: str
    to_stage: str
    closing: list[str] = field(default_factory=list)
    opening: list[str] = field(default_factory=list)
    problem: str = ""
    moved: bool = False

    def describe(self) -> str:
        head = f"{self.request.reference} ({self.request.get_state_display()}): v{self.from_version} {self.from_stage} → {self.to_stage}"
        if self.problem:
            return f"{head}: cannot move: {self.problem}"
        parts = [head]
        if self.closing:
            parts.append("closes " + ", ".join(self.closing))
        if self.opening:
            parts.append("opens " + ", ".join(self.opening))
        return "; ".join(parts)


def _holder(handoff: Handoff) -> str:
    return handoff.holder_label()


def _requests_to_move(request_type: RequestType, to_version: PolicyVersion) -> Iterable[ApprovalRequest]:
    return (
        ApprovalRequest.objects.filter(request_type=request_type, state__in=IN_FLIGHT)
        .exclude(policy_version=to_version)
        .select_related("requester", "policy_version", "request_type")
        .order_by("pk")
    )


def _stage_label(request: ApprovalRequest) -> str:
    stage = request.current_stage
    if request.state == State.CHANGES_REQUESTED:
        return "waiting for changes"
    return f"stage '{stage.name}'" if stage is not None else "no stage"


def policy_move_plan(*, request_type: RequestType, to_version: PolicyVersion) -> list[MoveRow]:
    """The dry run: for each in-flight request of the type, where it would land under
    `to_version` and whose handoffs would close and open. Reads only."""
    if not to_version.is_published or to_version.request_type_id != request_type.pk:
        raise errors.InvalidInput(
            f"{to_version} is not a published version of {request_type}.",
            field_errors={"version": ["Choose a published version of this type."]},
        )
    rows = []
    for request in _requests_to_move(request_type, to_version):
        row = MoveRow(
            request=request,
            from_version=request.policy_version.number if request.policy_version else None,
            from_stage=_stage_label(request),
            to_stage="",
        )
        open_handoffs = list(
            Handoff.objects.for_instance(request).open().select_related("assignee", "candidate_group")
        )
        try:
            plan = plan_move(
                request=request,
                policy=to_version.policy,
                version_id=to_version.pk,
                states=STATES,
                open_handoffs=open_handoffs,
            )
        except errors.WorkflowError as exc:
            row.problem = exc.detail
            rows.append(row)
            continue
        if plan.target == State.IN_REVIEW and plan.stage_index is not None:
            row.to_stage = f"stage '{to_version.policy.stages[plan.stage_index].name}'"
        elif plan.target == State.CHANGES_REQUESTED:
            row.to_stage = "waiting for changes"
        else:
            row.to_stage = State(plan.target).label.lower()
        row.closing = [_holder(h) for h in plan.close]
        row.opening = [
            f"{spec.user.display_name if spec.user else ''}{' / ' if spec.user and spec.group else ''}"
            f"{'group ' + spec.group.name if spec.group else ''}"
            for spec in plan.open
        ]
        rows.append(row)
    return rows


def policy_move_apply(
    *, request_type: RequestType, to_version: PolicyVersion, actor: User | SystemActor = SYSTEM
) -> list[MoveRow]:
    """Move every in-flight request of the type to `to_version`, each in its own audited
    transition ('move_policy'); returns what happened to each."""
    rows = policy_move_plan(request_type=request_type, to_version=to_version)
    for row in rows:
        if row.problem:
            continue
        try:
            transition(
                model=ApprovalRequest,
                instance_id=row.request.pk,
                name="move_policy",
                actor=actor,
                comment=f"Moved to {to_version}.",
                data={"version": to_version.pk},
            )
        except errors.WorkflowError as exc:
            row.problem = exc.detail
        else:
            row.moved = True
    return rows


# --- finding things for the admin and the commands -------------------------------------------

POLICY_FILE_SUFFIXES = (".yaml", ".yml", ".json")


def version_label(version: PolicyVersion) -> str:
    """How a version is named in reports: 'expense v3' (the slug, as in the files)."""
    return f"{version.request_type.slug} v{version.number}"


def request_type_find(*, slug: str) -> RequestType:
    """The request type with `slug`; NotFound naming the types there are."""
    found = RequestType.objects.filter(slug=slug).first()
    if found is None:
        known = ", ".join(RequestType.objects.order_by("slug").values_list("slug", flat=True)) or "none"
        raise errors.NotFound(f"There is no request type '{slug}' (types: {known}).")
    return found


def policy_version_find(*, request_type: RequestType, number: int | None = None) -> PolicyVersion:
    """Version `number` of the type, or its current (published) version when no number is given."""
    if number is None:
        if request_type.current_policy_id is None:
            raise errors.NotFound(f"{request_type.slug} has no published policy yet.")
        return PolicyVersion.objects.select_related("request_type").get(pk=request_type.current_policy_id)
    found = request_type.policy_versions.select_related("request_type").filter(number=number).first()
    if found is None:
        numbers = ", ".join(
            str(n) for n in request_type.policy_versions.order_by("number").values_list("number", flat=True)
        )
        raise errors.NotFound(f"{request_type.slug} has no version {number} (versions: {numbers or 'none'}).")
    return found


def person_find(*, username: str) -> User:
    found = User.objects.filter(username=username, is_active=True).first()
    if found is None:
        raise errors.NotFound(f"There is no active user '{username}'.")
    return found


def policy_mover(*, username: str | None) -> User | SystemActor:
    """Who moves requests to another version: the system, or a named active superuser
    (the same rule the transition checks per request, asked once up front)."""
    if not username:
        return SYSTEM
    user = person_find(username=username)
    if not user.is_superuser:
        raise errors.Forbidden(
            f"'{username}' is not a superuser: only superusers move requests between versions."
        )
    return user


# --- checking versions and files ---------------------------------------------------------------


@dataclass
class CheckResult:
    """The publish-time problems of one version or file; `where` names it in reports."""

    where: str
    problems: list[str] = field(default_factory=list)
    slug: str = ""

    def lines(self) -> list[str]:
        return [f"{self.where}: {problem}" for problem in self.problems]


def versions_to_check(*, request_type: RequestType | None = None) -> list[PolicyVersion]:
    """Each type's current version and every draft, of one type or of all."""
    types = (
        RequestType.objects.all() if request_type is None else RequestType.objects.filter(pk=request_type.pk)
    )
    wanted = PolicyVersion.objects.filter(
        Q(pk__in=types.filter(current_policy__isnull=False).values("current_policy"))
        | Q(request_type__in=types, status=PolicyVersion.Status.DRAFT)
    )
    return list(wanted.select_related("request_type").order_by("request_type__slug", "number"))


def versions_check(*, request_type: RequestType | None = None) -> list[CheckResult]:
    return [
        CheckResult(where=version_label(v), problems=version_problems(v), slug=v.request_type.slug)
        for v in versions_to_check(request_type=request_type)
    ]


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
