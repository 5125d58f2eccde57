"""Administering approval policies: drafting, checking, publishing, loading from files,
simulating, and moving in-flight requests to a new version.

Used by the Django admin and the `policy_load`, `policy_check`, `policy_move` and
`policy_simulate` commands. Published versions never change; each request keeps the
version it was submitted under until an explicit, audited move.

    drafts.py   drafts, checks before publishing, publishing, simulation
    files.py    policy files: reading, checking, loading
    moves.py    moving in-flight requests (dry run, then audited moves)
    lookups.py  types, versions and people by name, for the admin and the commands
"""

from approvals.publishing.drafts import (
    CheckResult,
    DatabaseDirectory,
    document_problems,
    policy_draft_create,
    policy_publish,
    policy_simulate,
    version_problems,
    versions_check,
    versions_to_check,
)
from approvals.publishing.files import (
    TYPE_KEYS,
    LoadResult,
    policy_file_check,
    policy_file_load,
    policy_file_paths,
    policy_file_read,
    split_policy_file,
)
from approvals.publishing.lookups import (
    person_find,
    policy_mover,
    policy_version_find,
    request_type_find,
    version_label,
)
from approvals.publishing.moves import IN_FLIGHT, MoveRow, policy_move_apply, policy_move_plan

__all__ = [
    "IN_FLIGHT",
    "TYPE_KEYS",
    "CheckResult",
    "DatabaseDirectory",
    "LoadResult",
    "MoveRow",
    "document_problems",
    "person_find",
    "policy_draft_create",
    "policy_file_check",
    "policy_file_load",
    "policy_file_paths",
    "policy_file_read",
    "policy_move_apply",
    "policy_move_plan",
    "policy_mover",
    "policy_publish",
    "policy_simulate",
    "policy_version_find",
    "request_type_find",
    "split_policy_file",
    "version_label",
    "version_problems",
    "versions_check",
    "versions_to_check",
]
