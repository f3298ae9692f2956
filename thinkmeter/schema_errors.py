"""OpenAPI post-processing: document the error answers every REST operation can give.

drf-spectacular documents the success answers a view declares. Every operation can
also answer with DRF's error bodies, and clients (and the schemathesis run in
``tests/hardening``) need them in the schema:

- 400 — invalid parameters or body: ``{"field": ["message", ...]}`` or ``{"detail": ...}``
  (or a list of messages);
- 401 — missing, invalid or revoked API key / no session: ``{"detail": ...}``;
- 403 — the key lacks a scope or the person a role: ``{"detail": ...}``;
- 404 — no such object *in the caller's projects* (another project's objects look
  exactly like missing ones): ``{"detail": ...}``;
- 503 — analytics storage unavailable, with ``Retry-After``: ``{"detail": ...}``.

A 500 is never documented: it is always a bug. Registered in
``SPECTACULAR_SETTINGS["POSTPROCESSING_HOOKS"]``.
"""

from __future__ import annotations

from typing import Any

DETAIL = {"$ref": "#/components/schemas/ErrorDetail"}
VALIDATION = {"$ref": "#/components/schemas/ValidationError"}
METHODS = ("get", "put", "patch", "post", "delete")
ERRORS: dict[str, tuple[str, dict[str, Any]]] = {
    "400": ("Invalid parameters or body", VALIDATION),
    "401": ("Missing, invalid or revoked credentials", DETAIL),
    "403": ("The key lacks a scope, or the person a role", DETAIL),
    "404": ("No such object in the caller's projects", DETAIL),
    "503": ("Analytics storage unavailable; retry after Retry-After seconds", DETAIL),
}
COMPONENTS = {
    "ErrorDetail": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "ValidationError": {
        "description": "Messages per field (`non_field_errors` for the whole body), a `detail`, or a list.",
        "oneOf": [
            {"type": "object", "additionalProperties": {}},
            {"type": "array", "items": {"type": "string"}},
        ],
    },
}


def add_error_responses(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    """drf-spectacular post-processing hook: add the error answers to every operation."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(COMPONENTS)
    for path_item in result.get("paths", {}).values():
        for method in METHODS:
            operation = path_item.get(method)
            if operation is None:
                continue
            responses = operation.setdefault("responses", {})
            for status, (description, schema) in ERRORS.items():
                responses.setdefault(status, {
                    "description": description,
                    "content": {"application/json": {"schema": schema}},
                })
            retry = responses["503"].setdefault("headers", {})
            retry.setdefault("Retry-After", {"schema": {"type": "integer"}, "description": "seconds"})
    return result
