"""What drf-spectacular cannot see on its own: the async wait view (a plain Django view,
so that it runs without a thread under ASGI) is added to the OpenAPI document here."""

from __future__ import annotations

from typing import Any

from approvals.api.errors import PROBLEM_CONTENT_TYPE
from approvals.api.wait import WAIT_DEFAULT, WAIT_MAX

WAIT_PATH = "/api/v1/requests/{id}/wait/"


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def wait_operation(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """POSTPROCESSING_HOOKS entry: document GET /api/v1/requests/{id}/wait/."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    if "Problem" not in schemas:
        return result  # the API's own operations name it; without them there is nothing to add to
    result.setdefault("paths", {})[WAIT_PATH] = {
        "get": {
            "operationId": "requests_wait",
            "summary": "Wait for the request to change",
            "description": (
                "Answers at once when If-None-Match is not the current version (its ETag); otherwise holds "
                f"the answer until the request changes or `seconds` (at most {WAIT_MAX}) pass: 200 with the "
                "new representation, or 304 when nothing changed and If-None-Match was given (200 with the "
                "unchanged representation without it). Holds no database connection while it waits."
            ),
            "tags": ["api"],
            "parameters": [
                {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}},
                {
                    "name": "seconds",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 0, "maximum": WAIT_MAX, "default": WAIT_DEFAULT},
                },
                {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"}},
            ],
            "security": [{"bearerAuth": []}, {"cookieAuth": []}],
            "responses": {
                "200": {
                    "description": "The request's representation.",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Request"}}},
                },
                "304": {"description": "Unchanged: the version If-None-Match names is current."},
                "400": _problem("`seconds` out of range."),
                "401": _problem("No valid credentials."),
                "404": _problem("Not found, or not yours to see."),
                "429": _problem(
                    "Too many requests (Retry-After): the wait counts against the token's budget."
                ),
            },
        }
    }
    return result
