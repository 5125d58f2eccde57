"""How large a document may be, and reading YAML or JSON text within those bounds.

Policy documents and payload schemas come from administrators' files and the admin,
payloads from requesters. Each is checked against these bounds before anything reads it,
so no input can exhaust memory or the stack, or make a check run for minutes: a YAML
alias bomb, a document nested ten thousand levels deep, a number with a million digits.
Every refusal is one clear line saying which bound and what to do.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml


@dataclass(frozen=True)
class Bounds:
    """The size of a document: `what` names it in messages."""

    what: str
    max_bytes: int
    max_depth: int
    max_values: int
    max_text: int

    # Whole numbers beyond this are no amount, count or limit anyone means, and Python
    # refuses to print integers past 4,300 digits.
    max_integer: int = 2**63


POLICY_BOUNDS = Bounds("policy", max_bytes=256 * 1024, max_depth=24, max_values=20_000, max_text=10_000)
SCHEMA_BOUNDS = Bounds(
    "payload schema", max_bytes=256 * 1024, max_depth=32, max_values=20_000, max_text=10_000
)
PAYLOAD_BOUNDS = Bounds("data", max_bytes=64 * 1024, max_depth=16, max_values=10_000, max_text=64 * 1024)

_SCALARS = (str, int, float, bool, type(None))


def shape_problem(value: Any, bounds: Bounds) -> str | None:
    """Why `value` is not a JSON-like document within `bounds`; None when it is.

    Walks without recursion, and stops at the first bound crossed: shared references
    (YAML aliases) count each time they are reached, so an alias bomb stops at
    `max_values` instead of being expanded.
    """
    what = bounds.what
    budget = bounds.max_values
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        budget -= 1
        if budget < 0:
            return (
                f"the {what} is too large: more than {bounds.max_values:,} values "
                "(YAML aliases count each time they are used)"
            )
        if isinstance(current, Mapping):
            if depth > bounds.max_depth:
                return f"the {what} nests too deeply: at most {bounds.max_depth} levels"
            for key, item in current.items():
                problem = _scalar_problem(key, bounds, as_key=True)
                if problem:
                    return problem
                stack.append((item, depth + 1))
        elif isinstance(current, list):
            if depth > bounds.max_depth:
                return f"the {what} nests too deeply: at most {bounds.max_depth} levels"
            stack.extend((item, depth + 1) for item in current)
        else:
            problem = _scalar_problem(current, bounds, as_key=False)
            if problem:
                return problem
    return None


def _scalar_problem(value: Any, bounds: Bounds, *, as_key: bool) -> str | None:
    what = bounds.what
    if not isinstance(value, _SCALARS):
        kind = type(value).__name__
        hint = " (quote dates and times to keep them as text)" if kind in {"date", "datetime"} else ""
        place = "a key" if as_key else "a value"
        return f"the {what} holds {place} of a kind JSON does not have: {kind}{hint}"
    if isinstance(value, str) and len(value) > bounds.max_text:
        return f"the {what} holds a text longer than {bounds.max_text:,} characters"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > bounds.max_integer:
        return f"the {what} holds a number beyond ±{bounds.max_integer:,}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"the {what} holds a number that is not finite ({value}); JSON has no such numbers"
    return None


# --- reading text ------------------------------------------------------------------------


class DocumentTextError(ValueError):
    """The text cannot be read as a document within its bounds; the message says why."""


_REFUSED_TAGS = (
    "tag:yaml.org,2002:timestamp",
    "tag:yaml.org,2002:binary",
    "tag:yaml.org,2002:set",
    "tag:yaml.org,2002:omap",
    "tag:yaml.org,2002:pairs",
)


class _DocumentLoader(yaml.SafeLoader):
    """PyYAML's safe loader (no Python objects), limited to what JSON can hold, bounded.

    Dates stay text (JSON has no dates, and the database stores these documents as
    JSON); the tags that would make bytes, sets or ordered pairs are refused; mappings and
    lists nest at most `max_depth` deep while the document is composed, before the
    recursion that composing uses could run out of stack.
    """

    max_depth = POLICY_BOUNDS.max_depth

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self._depth += 1
        try:
            if self._depth > self.max_depth + 1:
                raise DocumentTextError(f"it nests too deeply: at most {self.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refuse_tag(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    raise yaml.constructor.ConstructorError(
        None, None, f"the tag {node.tag} is not allowed here (JSON has no such values)", node.start_mark
    )


# Implicit dates (2024-05-01) stay text: the resolver that would turn them into dates is
# left out of this loader's copy of the table.
_DocumentLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _tag in _REFUSED_TAGS:
    _DocumentLoader.add_constructor(_tag, _refuse_tag)


def json_text_problem(text: str, bounds: Bounds) -> str | None:
    """Why JSON `text` must not even be parsed: too large, or nested deeper than `bounds`."""
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > bounds.max_bytes:
        return f"it is too large: {size:,} bytes, at most {bounds.max_bytes:,}"
    return _json_depth_problem(text, bounds.max_depth)


def _json_depth_problem(text: str, max_depth: int) -> str | None:
    """JSON nesting deeper than `max_depth`, found without parsing (json.loads recurses)."""
    depth, in_string, escaped = 0, False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > max_depth:
                return f"it nests too deeply: at most {max_depth} levels"
        elif char in "]}":
            depth -= 1
    return None


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error in one line with where it is (PyYAML's own message spans several)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    problem = getattr(exc, "problem", None) or " ".join(str(exc).split())
    context = getattr(exc, "context", None)
    return f"not valid YAML: {where}{problem}" + (f" ({context})" if context else "")


def document_text_load(text: str, *, bounds: Bounds = POLICY_BOUNDS, json_only: bool = False) -> Any:
    """Read YAML (or, with json_only, JSON) text into plain values within `bounds`.

    Raises DocumentTextError saying why it cannot: too large, too deeply nested, not
    YAML / JSON, or holding values JSON does not have.
    """
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > bounds.max_bytes:
        raise DocumentTextError(f"it is too large: {size:,} bytes, at most {bounds.max_bytes:,}")
    try:
        if json_only:
            problem = _json_depth_problem(text, bounds.max_depth)
            if problem:
                raise DocumentTextError(problem)
            loaded = json.loads(text)
        else:
            loader_class = type("_Bounded", (_DocumentLoader,), {"max_depth": bounds.max_depth})
            loader = loader_class(text)
            try:
                loaded = loader.get_single_data()
            finally:
                loader.dispose()
    except yaml.YAMLError as exc:
        raise DocumentTextError(yaml_problem(exc)) from None
    except (ValueError, RecursionError) as exc:
        # json's errors, and int() refusing a number of more than 4,300 digits.
        if isinstance(exc, DocumentTextError):
            raise
        raise DocumentTextError(str(exc) or type(exc).__name__) from None
    problem = shape_problem(loaded, bounds)
    if problem:
        raise DocumentTextError(problem)
    return loaded
