"""Diagrams of the request lifecycle and of a policy's stages, drawn as inline SVG.

Drawn on the server from the code and the policy itself (no JavaScript, nothing fetched
from the internet), so the admin and the request page always show what will really run.
The lifecycle's arrows come from django-fsm's own transition table; only the positions
of the states are laid out here.
"""

from __future__ import annotations

import math
import textwrap
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from html import escape

from django.utils.safestring import SafeString, mark_safe
from django_fsm import RETURN_VALUE

from approvals.actions import Action
from approvals.routing import Policy, Stage, duration_text

BOX_W, BOX_H = 150, 44
# Presentation attributes, not style="…": the Content-Security-Policy refuses style attributes.
FONT = 'font-family="system-ui,sans-serif"'
COLOURS = {
    "box": "#ffffff",
    "line": "#8a93a6",
    "text": "#1d2330",
    "muted": "#8a93a6",
    "current": "#2757d6",
    "current_fill": "#e6edfc",
    "done": "#1d7a46",
    "done_fill": "#e2f4ea",
    "skipped_fill": "#f3f4f7",
    "bad": "#b3261e",
}

ADMINISTRATIVE_ACTIONS = {Action.MOVE_POLICY.value}

# Where each lifecycle state sits (column, row); states not listed are placed after them.
LIFECYCLE_LAYOUT = {
    "draft": (0, 0),
    "in_review": (1, 0),
    "approved": (2, 0),
    "changes_requested": (1, 1),
    "rejected": (2, 1),
    "withdrawn": (0, 2),
    "cancelled": (1, 2),
}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str


def lifecycle_edges(model: type) -> list[Edge]:
    """Every (source, target, action) of the model's `state` field, from django-fsm."""
    field = model._meta.get_field("state")  # type: ignore[attr-defined]
    edges: dict[tuple[str, str], list[str]] = {}
    for transition in field.get_all_transitions(model):
        targets = (
            transition.target.allowed_states
            if isinstance(transition.target, RETURN_VALUE)
            else [transition.target]
        )
        sources = [transition.source] if transition.source != "*" else list(LIFECYCLE_LAYOUT)
        for source in sources:
            for target in targets:
                if source != target:
                    edges.setdefault((str(source), str(target)), []).append(transition.name)
    return [Edge(s, t, ", ".join(sorted(set(names)))) for (s, t), names in sorted(edges.items())]


def _text(
    x: float, y: float, content: str, *, size: int = 12, weight: str = "normal", colour: str = ""
) -> str:
    fill = colour or COLOURS["text"]
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="middle" {FONT} font-size="{size}" '
        f'font-weight="{weight}" fill="{fill}">{escape(content)}</text>'
    )


def _arrow_defs(marker_id: str) -> str:
    return (
        f'<defs><marker id="{marker_id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{COLOURS["line"]}"/>'
        "</marker></defs>"
    )


def _svg(width: int, height: int, title: str, body: Iterable[str]) -> SafeString:
    # Each drawing has its own arrow marker: ids must be unique on a page showing several.
    marker_id = f"baton-arrow-{uuid.uuid4().hex[:10]}"
    content = "".join(body).replace("__ARROW__", marker_id)
    # Safe: every text inside (titles, labels, names) went through html.escape above.
    return mark_safe(  # noqa: S308  # nosec B308, B703  # all text in it is escaped
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" class="diagram">'
        f"<title>{escape(title)}</title>{_arrow_defs(marker_id)}{content}</svg>"
    )


def _drawn(edges: list[Edge]) -> list[Edge]:
    """The edges a person follows: an administrator's policy move re-routes a request
    without being a step of its lifecycle, and would clutter every arrow out of review."""
    drawn = []
    for edge in edges:
        labels = [name for name in edge.label.split(", ") if name not in ADMINISTRATIVE_ACTIONS]
        if labels:
            drawn.append(Edge(edge.source, edge.target, ", ".join(labels)))
    return drawn


def lifecycle_svg(
    *, model: type, labels: dict[str, str], open_states: Iterable[str], current: str | None = None
) -> SafeString:
    """The request lifecycle as boxes and arrows, `current` highlighted.

    Actions possible from every open state (withdraw, cancel) are drawn once, from a
    dashed frame around the open states, instead of once per state.
    """
    col_gap, row_gap, margin, top = 230, 100, 24, 56
    opened = [s for s in open_states if s in labels]
    positions: dict[str, tuple[float, float]] = {}
    extra = 0
    for state in labels:
        col, row = LIFECYCLE_LAYOUT.get(state, (3, extra))
        if state not in LIFECYCLE_LAYOUT:
            extra += 1
        positions[state] = (margin + col * col_gap, top + row * row_gap + (30 if row >= 2 else 0))
    width = int(max(x for x, _ in positions.values()) + BOX_W + margin)
    height = int(max(y for _, y in positions.values()) + BOX_H + margin)
    edges = _drawn(lifecycle_edges(model))
    pairs = {(e.source, e.target) for e in edges}
    from_all_open: dict[str, str] = {}
    for target in labels:
        labels_in = {e.label for e in edges if e.target == target and e.source in opened}
        if len(opened) > 1 and len(labels_in) == 1 and all((s, target) in pairs for s in opened):
            from_all_open[target] = labels_in.pop()
    body: list[str] = []
    if from_all_open:
        fx0 = min(positions[s][0] for s in opened) - 12
        fy0 = min(positions[s][1] for s in opened) - 12
        fx1 = max(positions[s][0] for s in opened) + BOX_W + 12
        fy1 = max(positions[s][1] for s in opened) + BOX_H + 12
        body.append(
            f'<rect x="{fx0}" y="{fy0}" width="{fx1 - fx0}" height="{fy1 - fy0}" rx="12" fill="none" '
            f'stroke="{COLOURS["line"]}" stroke-dasharray="6 5"/>'
            + _text(fx0 + 40, fy1 - 6, "open", size=11, colour=COLOURS["muted"])
        )
        for target, label in from_all_open.items():
            tx, ty = positions[target]
            cx = tx + BOX_W / 2
            body.append(
                f'<line x1="{cx:.0f}" y1="{fy1}" x2="{cx:.0f}" y2="{ty}" stroke="{COLOURS["line"]}" '
                'stroke-width="1.4" marker-end="url(#__ARROW__)"/>'
            )
            body.append(_side_text(cx + 6, (fy1 + ty) / 2 + 4, label, anchor="start"))
    placed: list[tuple[float, float]] = []
    for edge in edges:
        if edge.target in from_all_open or edge.source not in positions or edge.target not in positions:
            continue
        (x1, y1), (x2, y2) = positions[edge.source], positions[edge.target]
        start, end = _box_border((x1, y1), (x2, y2)), _box_border((x2, y2), (x1, y1))
        # A two-way pair (review <-> changes) is drawn as two lines side by side.
        two_way = (edge.target, edge.source) in pairs
        offset = (8 if edge.source < edge.target else -8) if two_way else 0
        sx, sy, ex, ey = start[0] + offset, start[1], end[0] + offset, end[1]
        others = [positions[s] for s in positions if s not in {edge.source, edge.target}]
        if _crosses_a_box((sx, sy), (ex, ey), others):
            # A shortcut past another state (e.g. submit straight to approved when every
            # stage is skipped) bends around it, dashed, instead of running under a box.
            length = math.hypot(ex - sx, ey - sy)
            nx, ny = -(ey - sy) / length, (ex - sx) / length
            if ny > 0:
                nx, ny = -nx, -ny
            cx, cy = (sx + ex) / 2 + nx * 70, (sy + ey) / 2 + ny * 70
            body.append(
                f'<path d="M{sx:.0f},{sy:.0f} Q{cx:.0f},{cy:.0f} {ex:.0f},{ey:.0f}" fill="none" '
                f'stroke="{COLOURS["line"]}" stroke-width="1.4" stroke-dasharray="5 4" '
                'marker-end="url(#__ARROW__)"/>'
            )
            lx, ly = 0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey
            body.append(_text(lx, ly - 5, edge.label, size=10, colour=COLOURS["muted"]))
            continue
        body.append(
            f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{ex:.0f}" y2="{ey:.0f}" stroke="{COLOURS["line"]}" '
            'stroke-width="1.4" marker-end="url(#__ARROW__)"/>'
        )
        if two_way:
            anchor = "start" if offset > 0 else "end"
            body.append(
                _side_text(
                    (sx + ex) / 2 + (6 if offset > 0 else -6), (sy + ey) / 2 + 4, edge.label, anchor=anchor
                )
            )
        else:
            # A third of the way along, or two thirds when that spot is taken, so the labels
            # of two crossing lines do not sit on each other.
            for t in (0.35, 0.65, 0.8, 0.2, 0.5):
                lx, ly = sx + (ex - sx) * t, sy + (ey - sy) * t
                if all(abs(lx - px) > 50 or abs(ly - py) > 22 for px, py in placed):
                    break
            placed.append((lx, ly))
            body.append(_text(lx, ly - 5, edge.label, size=10, colour=COLOURS["muted"]))
    for state, label in labels.items():
        x, y = positions[state]
        is_current = state == current
        stroke = COLOURS["current"] if is_current else COLOURS["line"]
        fill = COLOURS["current_fill"] if is_current else COLOURS["box"]
        current_attr = ' data-current="true"' if is_current else ""
        body.append(
            f'<g data-state="{escape(state)}"{current_attr}>'
            f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="8" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{2.5 if is_current else 1.2}"/>'
            + _text(
                x + BOX_W / 2, y + BOX_H / 2 + 4, label, size=13, weight="bold" if is_current else "normal"
            )
            + "</g>"
        )
    return _svg(width, height, "Request lifecycle", body)


def _side_text(x: float, y: float, content: str, *, anchor: str) -> str:
    return (
        f'<text x="{x:.0f}" y="{y:.0f}" text-anchor="{anchor}" {FONT} font-size="10" '
        f'fill="{COLOURS["muted"]}">{escape(content)}</text>'
    )


def _crosses_a_box(
    start: tuple[float, float], end: tuple[float, float], boxes: list[tuple[float, float]]
) -> bool:
    """Whether the segment start-end runs through any of these boxes (by sampling it)."""
    for step in range(1, 20):
        t = step / 20
        px, py = start[0] + (end[0] - start[0]) * t, start[1] + (end[1] - start[1]) * t
        if any(x - 4 <= px <= x + BOX_W + 4 and y - 4 <= py <= y + BOX_H + 4 for x, y in boxes):
            return True
    return False


def _box_border(centre_of: tuple[float, float], towards: tuple[float, float]) -> tuple[float, float]:
    """Where the line from one box's centre towards another leaves the first box."""
    cx, cy = centre_of[0] + BOX_W / 2, centre_of[1] + BOX_H / 2
    tx, ty = towards[0] + BOX_W / 2, towards[1] + BOX_H / 2
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return cx, cy
    scale = min(
        (BOX_W / 2) / abs(dx) if dx else float("inf"),
        (BOX_H / 2) / abs(dy) if dy else float("inf"),
    )
    return cx + dx * scale, cy + dy * scale


@dataclass(frozen=True)
class StageMark:
    """How one stage stands for a particular request."""

    status: str  # "current", "met", "skipped", "failed" or "" (not reached)
    note: str = ""


def _stage_lines(stage: Stage) -> list[str]:
    lines = [stage.approvers.describe(), stage.rule_text()]
    if stage.sla is not None:
        sla = f"SLA {duration_text(stage.sla)}" + (" working" if stage.sla_clock == "working" else "")
        action = stage.overdue_action
        if action in {"approve", "reject"}:
            sla += ", then auto-" + ("approved" if action == "approve" else "rejected")
        elif stage.escalate_to is not None:
            sla += f", then {stage.escalate_to.describe()}"
        lines.append(sla)
    return [part for line in lines for part in _wrap(line, 32)]


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` characters, broken between words: a label is
    never cut short (a cut "…" loses what the stage is about)."""
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


# Characters per line of the texts above and below a stage's box: 11 px text is about 6 px
# a character, and a box with the gap beside it is 260 px wide.
NOTE_WIDTH = 42


def _condition_lines(stage: Stage) -> list[str]:
    return _wrap("if " + stage.condition.describe(), NOTE_WIDTH) if stage.condition is not None else []


def _steps(policy: Policy) -> list[tuple[int, ...]]:
    """The policy's stages as steps: one stage, or a parallel group's stages together."""
    steps: list[tuple[int, ...]] = []
    index = 0
    while index < len(policy.stages):
        step = policy.step_of(index)
        steps.append(step)
        index = step[-1] + 1
    return steps


def policy_svg(
    *, policy: Policy, marks: dict[int, StageMark] | None = None, title: str = "Approval route"
) -> SafeString:
    """The policy's steps left to right, from submission to approval (or fulfilment); the
    tasks of a parallel group stacked in one column. Task stages have square corners.

    `marks` (by stage index) shows one request's position: the current stage highlighted,
    met stages green, skipped ones greyed with the reason.
    """
    marks = marks or {}
    steps = _steps(policy)
    # Lines wrap rather than being cut: the boxes, and the space above (conditions) and
    # below (notes) them, grow to the longest text.
    lines = max(len(_stage_lines(stage)) for stage in policy.stages)
    above = max((len(_condition_lines(stage)) for stage in policy.stages), default=1)
    below = max((len(_wrap(mark.note, NOTE_WIDTH)) for mark in marks.values() if mark.note), default=1)
    stage_w, stage_h, gap, margin, row_gap = (
        200,
        max(92, 48 + 16 * (lines - 1)),
        60,
        16,
        44 + 14 * (above - 1),
    )
    top = 44 + 14 * (above - 1)
    small_w = 96
    rows = max(len(step) for step in steps)
    count = len(steps)
    width = margin * 2 + small_w * 2 + count * stage_w + (count + 1) * gap
    height = top + rows * stage_h + (rows - 1) * row_gap + 56 + 14 * (below - 1)
    body: list[str] = []
    mid = top + (rows * stage_h + (rows - 1) * row_gap) / 2
    x = margin
    body.append(
        f'<rect x="{x}" y="{mid - 18}" width="{small_w}" height="36" rx="18" fill="{COLOURS["box"]}" '
        f'stroke="{COLOURS["line"]}"/>' + _text(x + small_w / 2, mid + 4, "submitted")
    )
    x += small_w
    for step in steps:
        first = top + (rows - len(step)) * (stage_h + row_gap) / 2
        for row, index in enumerate(step):
            stage = policy.stages[index]
            y = first + row * (stage_h + row_gap)
            body.append(
                _stage_box(
                    stage,
                    index,
                    marks.get(index, StageMark(status="")),
                    x=x,
                    y=y,
                    gap=gap,
                    mid=mid,
                    size=(stage_w, stage_h),
                )
            )
        x += gap + stage_w
        if len(step) > 1:
            group = policy.stages[step[0]].group
            assert group is not None
            body.append(
                _text(
                    x - stage_w / 2,
                    first - 24,
                    f"at the same time: {group.rule_text()}",
                    size=11,
                    colour=COLOURS["muted"],
                )
            )
    body.append(
        f'<line x1="{x}" y1="{mid}" x2="{x + gap}" y2="{mid}" stroke="{COLOURS["line"]}" stroke-width="1.4" '
        'marker-end="url(#__ARROW__)"/>'
    )
    x += gap
    end = "fulfilled" if policy.has_tasks else "approved"
    body.append(
        f'<rect x="{x}" y="{mid - 18}" width="{small_w}" height="36" rx="18" fill="{COLOURS["done_fill"]}" '
        f'stroke="{COLOURS["done"]}"/>' + _text(x + small_w / 2, mid + 4, end)
    )
    return _svg(width, height, title, body)


def _stage_box(
    stage: Stage,
    index: int,
    mark: StageMark,
    *,
    x: float,
    y: float,
    gap: float,
    mid: float,
    size: tuple[int, int],
) -> str:
    """One stage's box at (x + gap, y), with the arrow that leads to it from the step before."""
    stage_w, stage_h = size
    parts = [
        f'<line x1="{x}" y1="{mid}" x2="{x + gap}" y2="{y + stage_h / 2}" stroke="{COLOURS["line"]}" '
        'stroke-width="1.4" marker-end="url(#__ARROW__)"/>'
    ]
    condition = _condition_lines(stage)
    for line_no, line in enumerate(condition):
        line_y = y - 10 - 14 * (len(condition) - 1 - line_no)
        parts.append(_text(x + gap + stage_w / 2, line_y, line, size=11, colour=COLOURS["muted"]))
    x += gap
    stroke, fill, width_px = COLOURS["line"], COLOURS["box"], 1.2
    if mark.status == "current":
        stroke, fill, width_px = COLOURS["current"], COLOURS["current_fill"], 2.5
    elif mark.status == "met":
        stroke, fill = COLOURS["done"], COLOURS["done_fill"]
    elif mark.status == "skipped":
        fill = COLOURS["skipped_fill"]
    elif mark.status == "failed":
        stroke = COLOURS["bad"]
    dash = ' stroke-dasharray="5 4"' if stage.condition is not None else ""
    corner = 0 if stage.is_task else 8
    status_attr = f' data-status="{escape(mark.status)}"' if mark.status else ""
    kind = ' data-kind="task"' if stage.is_task else ""
    parts.append(f'<g data-stage="{escape(stage.name)}"{status_attr}{kind}>')
    parts.append(
        f'<rect x="{x}" y="{y}" width="{stage_w}" height="{stage_h}" rx="{corner}" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="{width_px}"{dash}/>'
    )
    heading = f"{index + 1}. {stage.name}" + (" (task)" if stage.is_task else "")
    if mark.status in {"met", "skipped", "failed", "current"}:
        heading += {"met": " ✓", "skipped": " (skipped)", "failed": " ✗", "current": " ◀ now"}[mark.status]
    parts.append(_text(x + stage_w / 2, y + 20, heading, size=13, weight="bold"))
    for line_no, line in enumerate(_stage_lines(stage)):
        parts.append(_text(x + stage_w / 2, y + 40 + line_no * 16, line, size=11, colour=COLOURS["muted"]))
    if mark.note:
        for line_no, line in enumerate(_wrap(mark.note, NOTE_WIDTH)):
            line_y = y + stage_h + 18 + 14 * line_no
            parts.append(_text(x + stage_w / 2, line_y, line, size=11, colour=COLOURS["muted"]))
    parts.append("</g>")
    return "".join(parts)
