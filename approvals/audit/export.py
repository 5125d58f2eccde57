"""Exports of the audit trail: streamed CSV and JSON Lines, each ending with its own
completeness record, each an audited action (an AuditExport instance: 'create' when it
starts, 'complete' with the completeness record when the last row went out).

Memory stays flat at any size: rows are read by keyset in batches of EXPORT_BATCH and
written out batch by batch; under ASGI the stream is an async iterator that reads each
batch in a thread (a sync iterator would be buffered whole by Django's ASGI handler).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asgiref.sync import sync_to_async
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Func, Q, TextField, Value
from django.db.models.functions import Cast, Concat
from django.utils import timezone

from approvals.audit.filters import AuditFilter
from approvals.models import AuditExport
from workflows.services import instance_create, transition

if TYPE_CHECKING:
    from accounts.models import User

EXPORT_BATCH = 5000
COLUMNS = [
    "id",
    "ref",
    "seq",
    "created_at",
    "kind",
    "action",
    "source",
    "target",
    "actor",
    "actor_username",
    "on_behalf_of",
    "on_behalf_of_username",
    "comment",
    "data",
    "trace_id",
    "prev_hash",
    "hash",
]
_FIELDS = (
    "id",
    "content_type_id",
    "object_id",
    "seq",
    "created_at",
    "kind",
    "action",
    "source",
    "target",
    "actor_id",
    "actor__username",
    "on_behalf_of_id",
    "on_behalf_of__username",
    "comment",
    "data_text",
    "trace_id",
    "prev_hash",
    "hash",
)
Row = tuple[Any, ...]


def _labels() -> dict[int, str]:
    return {ct.pk: f"{ct.app_label}.{ct.model}" for ct in ContentType.objects.all()}


class _UtcIsoText(Func):
    """A timestamp as the chain hashes it ('2026-01-31T09:15:00.000000+00:00'), written by
    PostgreSQL itself: no datetime is made per row in Python (the export's main cost)."""

    template = "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')"
    output_field = TextField()


def entry_rows(query: Any, *, batch_size: int = EXPORT_BATCH) -> Iterator[list[Row]]:
    """Batches of entries of `query`, oldest first (created_at, id), read by keyset: one
    query per batch, never more than a batch in memory. Each row holds COLUMNS' values
    (the reference resolved, created_at as the hash covers it, data as its JSON text).

    On PostgreSQL the database writes every value as exported (reference, timestamp, JSON
    text), so rows go out as they come, with no Python work per row."""
    in_sql = connection.vendor == "postgresql"
    values = query.annotate(data_text=Cast("data", TextField()))
    if in_sql:
        values = values.annotate(
            created_text=_UtcIsoText("created_at"),
            ref=Concat(
                "content_type__app_label",
                Value("."),
                "content_type__model",
                Value(":"),
                "object_id",
                output_field=TextField(),
            ),
        )
        fields: tuple[str, ...] = ("id", "ref", "seq", "created_text", *_FIELDS[5:])
    else:
        fields = _FIELDS
    values = values.order_by("created_at", "id")
    labels = {} if in_sql else _labels()
    last: tuple[datetime, int] | None = None
    while True:
        page = values
        if last is not None:
            moment, pk = last
            # The redundant lower bound lets the index start at the position.
            page = page.filter(
                Q(created_at__gt=moment) | Q(created_at=moment, id__gt=pk), created_at__gte=moment
            )
        batch: list[Row] = list(page.values_list(*fields)[:batch_size])
        if not batch:
            return
        tail = batch[-1]
        if in_sql:
            last = (datetime.fromisoformat(tail[3]), tail[0])
            yield batch
        else:
            last = (tail[4], tail[0])
            yield [
                (
                    pk,
                    f"{labels.get(ct) or _labels_refresh(labels, ct)}:{oid}",
                    seq,
                    moment.astimezone(UTC).isoformat(timespec="microseconds"),
                    *rest,
                )
                for pk, ct, oid, seq, moment, *rest in batch
            ]
        if len(batch) < batch_size:
            return


def _labels_refresh(labels: dict[int, str], ct: int) -> str:
    labels.update(_labels())
    return labels.get(ct, str(ct))


def jsonl_line(row: Row) -> str:
    """One entry as a JSON object on one line; `data` is spliced in as stored (valid JSON)."""
    head = dict(zip(COLUMNS, row, strict=True))
    data = head.pop("data") or "{}"
    return json.dumps(head, ensure_ascii=False)[:-1] + ', "data": ' + data + "}\n"


class _Line:
    """A file-like target for csv.writer that hands back what it wrote."""

    def __init__(self) -> None:
        self.buffer = io.StringIO()

    def take(self) -> str:
        text = self.buffer.getvalue()
        self.buffer.seek(0)
        self.buffer.truncate()
        return text


@dataclass
class Completeness:
    """What an export states about itself at its end (auditors call it IPE evidence)."""

    export: AuditExport
    audit_filter: AuditFilter
    exported_by: User
    rows: int = 0
    first: Row | None = None
    last: Row | None = None
    digest: Any = field(default_factory=hashlib.sha256)
    covers: str = "every byte of the file before this record"

    def feed(self, text: str, rows: list[Row]) -> bytes:
        data = text.encode("utf-8")
        self.digest.update(data)
        if rows:
            self.first = self.first or rows[0]
            self.last = rows[-1]
            self.rows += len(rows)
        return data

    @staticmethod
    def _entry(row: Row | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {"id": row[0], "ref": row[1], "seq": row[2], "created_at": row[3]}

    def record(self) -> dict[str, Any]:
        return {
            "export": self.export.reference,
            "format": self.export.format,
            "filter": {**self.audit_filter.describe(), "recorded_before": self.export.created_at.isoformat()},
            "rows": self.rows,
            "first_entry": self._entry(self.first),
            "last_entry": self._entry(self.last),
            "started_at": self.export.created_at.astimezone(UTC).isoformat(),
            "exported_at": timezone.now().astimezone(UTC).isoformat(),
            "exported_by": self.exported_by.username,
            "digest": f"sha256:{self.digest.hexdigest()}",
            "digest_covers": self.covers,
        }


def export_scope(export: AuditExport, audit_filter: AuditFilter) -> Any:
    """What an export covers: the filter's entries recorded before it started (so that a
    live trail gives a fixed set, and the export's own entries are not in it)."""
    return audit_filter.entries().filter(created_at__lt=export.created_at)


def export_start(*, user: User, audit_filter: AuditFilter, fmt: str) -> AuditExport:
    """Record that `user` starts an export (its 'create' entry names the filter and format)."""
    return instance_create(
        instance=AuditExport(exported_by=user, format=fmt, filter=audit_filter.describe()), actor=user
    )


def export_complete(done: Completeness) -> dict[str, Any]:
    """Record the completeness of a finished export in its chain; returns the record."""
    record = done.record()
    transition(
        model=AuditExport,
        instance_id=done.export.pk,
        name="complete",
        actor=done.exported_by,
        data={
            "rows": done.rows,
            "first_entry": done.first[0] if done.first else None,
            "last_entry": done.last[0] if done.last else None,
            "digest": done.digest.hexdigest(),
            "exported_at": record["exported_at"],
        },
    )
    return record


def export_stream(*, export: AuditExport, audit_filter: AuditFilter, user: User) -> Iterator[bytes]:
    """The export's bytes, a batch of rows at a time, then its completeness record (and the
    'complete' entry once the last row is out)."""
    done = Completeness(export=export, audit_filter=audit_filter, exported_by=user)
    csv_format = export.format == AuditExport.Format.CSV
    line = _Line()
    writer = csv.writer(line.buffer)
    if csv_format:
        writer.writerow(COLUMNS)
        yield done.feed(line.take(), [])
    for rows in entry_rows(export_scope(export, audit_filter)):
        if csv_format:
            writer.writerows(rows)
            text = line.take()
        else:
            text = "".join(jsonl_line(row) for row in rows)
        yield done.feed(text, rows)
    record = json.dumps({"completeness": export_complete(done)}, ensure_ascii=False)
    if csv_format:
        writer.writerow(["#completeness", record])
        yield line.take().encode("utf-8")
    else:
        yield (record + "\n").encode("utf-8")


async def export_stream_async(stream: Iterator[bytes]) -> AsyncIterator[bytes]:
    """`stream` consumed a piece at a time in the request's thread, for ASGI servers."""

    def step() -> bytes | None:
        return next(stream, None)

    take = sync_to_async(step, thread_sensitive=True)
    while True:
        piece = await take()
        if piece is None:
            return
        yield piece
