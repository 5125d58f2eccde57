"""Writing on a request's thread: comments and attachments, each recorded in its audit
chain (workflows.services.instance_note) and checked here: who may, how big, what kind."""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils import timezone

from approvals import policies
from approvals.actions import Action
from approvals.lifecycle.base import NOTIFY_TASK
from approvals.models import ApprovalRequest, Attachment, Comment
from approvals.models.discussion import attachment_storage
from workflows import errors
from workflows.models import TaskSpec
from workflows.services import instance_note

if TYPE_CHECKING:
    from django.db import models

    from accounts.models import User

COMMENT_MAX = 5000
FILES_MAX = 5
# What the first bytes of a file of each kind look like: a file that claims to be one
# kind and is another (an HTML page named .png) is refused.
MAGIC = {
    ".pdf": (b"%PDF-",),
    ".png": (b"\x89PNG\r\n\x1a\n",),
    ".jpg": (b"\xff\xd8\xff",),
    ".jpeg": (b"\xff\xd8\xff",),
    ".docx": (b"PK\x03\x04",),
    ".xlsx": (b"PK\x03\x04",),
    ".odt": (b"PK\x03\x04",),
    ".ods": (b"PK\x03\x04",),
}


@dataclass(frozen=True)
class CheckedFile:
    upload: UploadedFile
    name: str
    content_type: str
    size: int
    sha256: str


def file_check(upload: UploadedFile) -> CheckedFile:
    """A file someone adds, checked for its size and its kind (by name and by content).
    Raises InvalidInput naming the file and why."""
    name = os.path.basename(str(upload.name or "")).strip()[:200] or "file"
    extension = os.path.splitext(name)[1].lower()
    allowed = settings.ATTACHMENT_TYPES
    if extension not in allowed:
        kinds = ", ".join(sorted(k.lstrip(".") for k in allowed))
        raise errors.InvalidInput(
            f"{name}: files of this kind are not accepted.",
            field_errors={"files": [f"{name}: not an accepted kind of file ({kinds})."]},
        )
    size = upload.size or 0
    if size > settings.ATTACHMENT_MAX_BYTES:
        limit = settings.ATTACHMENT_MAX_BYTES // (1024 * 1024)
        raise errors.InvalidInput(
            f"{name} is too large.",
            field_errors={"files": [f"{name}: at most {limit} MB (it is {size // 1024} KB)."]},
        )
    digest = hashlib.sha256()
    head = b""
    for chunk in upload.chunks():
        if len(head) < 16:
            head += chunk[: 16 - len(head)]
        digest.update(chunk)
    upload.seek(0)
    signatures = MAGIC.get(extension)
    if signatures is not None and not head.startswith(signatures):
        raise errors.InvalidInput(
            f"{name} is not what its name says.",
            field_errors={"files": [f"{name}: its content is not a {extension.lstrip('.')} file."]},
        )
    if signatures is None and b"\x00" in head:
        raise errors.InvalidInput(
            f"{name} is not text.", field_errors={"files": [f"{name}: its content is not text."]}
        )
    return CheckedFile(
        upload=upload, name=name, content_type=allowed[extension], size=size, sha256=digest.hexdigest()
    )


def request_comment(
    *, request_id: Any, author: User, body: str = "", files: list[UploadedFile] | None = None
) -> Comment | None:
    """Write on a request's thread: a comment, files, or both.

    Raises NotFound (may not see it), Forbidden (may not write on it), InvalidInput
    (empty, too long, too many or unacceptable files, each named). Side effects: the
    comment and the files stored, a 'comment' (or 'attach') entry in the audit chain
    naming each file with its size and digest, live events and notifications after commit.
    Returns the comment (None when only files were added).
    """
    text = (body or "").strip()
    uploads = files or []
    field_errors: dict[str, list[str]] = {}
    if not text and not uploads:
        field_errors["body"] = ["Write something, or add a file."]
    if len(text) > COMMENT_MAX:
        field_errors["body"] = [f"At most {COMMENT_MAX} characters (got {len(text)})."]
    if len(uploads) > FILES_MAX:
        field_errors["files"] = [f"At most {FILES_MAX} files at a time."]
    if field_errors:
        raise errors.InvalidInput("The comment is not complete.", field_errors=field_errors)
    request = ApprovalRequest.objects.filter(pk=request_id).first() if str(request_id).isdigit() else None
    if request is None or not policies.may_view(request, author):
        raise errors.NotFound(f"Request {request_id} does not exist.")
    if not policies.may_comment(request, author):
        raise errors.Forbidden("You may read this request's thread but not write on it.")
    checked = [file_check(upload) for upload in uploads]
    # Written before the transaction (storage is not transactional), removed if it fails.
    storage = attachment_storage()
    paths = [storage.save(_path(file.name), file.upload) for file in checked]
    made: list[Comment] = []

    def rows(locked: ApprovalRequest) -> list[models.Model]:
        comment = Comment(request=locked, author=author, body=text) if text else None
        made.extend([comment] if comment is not None else [])
        attachments = [
            Attachment(
                request=locked,
                comment=comment,
                file=path,
                name=file.name,
                content_type=file.content_type,
                size=file.size,
                sha256=file.sha256,
                uploaded_by=author,
            )
            for file, path in zip(checked, paths, strict=True)
        ]
        return [*made, *attachments]  # the comment first: its attachments take its key

    action = Action.COMMENT if text else Action.ATTACH
    try:
        instance_note(
            model=ApprovalRequest,
            instance_id=request.pk,
            actor=author,
            action=action,
            comment=text,
            data={"files": [{"name": f.name, "size": f.size, "sha256": f.sha256} for f in checked]}
            if checked
            else {},
            rows=rows,
            task=TaskSpec(name=NOTIFY_TASK, kwargs={"request_id": request.pk, "action": action.value}),
        )
    except Exception:
        for path in paths:  # stored, but the transaction that records them did not commit
            storage.delete(path)
        raise
    return made[0] if made else None


def _path(name: str) -> str:
    """Where a file is stored: by month, under a random name (the original is in its row)."""
    return f"requests/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{os.path.splitext(name)[1].lower()}"
