"""OpenAPI post-processing: every operation documents the error answers it can give.

drf-spectacular documents the success answer a view declares; the refusals every view shares come
from DRF and the project's conventions (400 naming fields, 401/403 for who may ask, 404 for what
they may not see, 409 for a stale version), so they are added here once instead of in each view.
"""
from __future__ import annotations

ERROR_SCHEMA = {
    "type": "object",
    "description": "What was refused and why: `detail`, or field names mapped to their messages.",
    "properties": {"detail": {"type": "string"}},
    "additionalProperties": True,
}
_WRITE_METHODS = {"post", "put", "patch", "delete"}
_METHODS = _WRITE_METHODS | {"get", "head", "options"}


def _error(description: str) -> dict:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


# drf-spectacular leaves out a nested list serializer's `min_length`, so a schema-valid request
# (`{"grades": []}`) would be refused; the bounds the serializers enforce are stated here.
ARRAY_BOUNDS = {("GradeBulkSave", "grades"): (1, 200), ("LandmarkCorrection", "landmarks"): (1, 100)}


def error_responses(result: dict, generator, request, public) -> dict:
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    for (component, field), (low, high) in ARRAY_BOUNDS.items():
        prop = schemas.get(component, {}).get("properties", {}).get(field)
        if prop is not None:
            prop.update(minItems=low, maxItems=high)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in _METHODS:
                continue
            responses = operation.setdefault("responses", {})
            public_operation = {} in operation.get("security", [{}]) or not operation.get("security")
            if operation.get("requestBody") or operation.get("parameters") or method in _WRITE_METHODS:
                responses.setdefault("400", _error("The request is malformed or a field is refused; the body names it."))
            if not public_operation:
                responses.setdefault("401", _error("Not logged in: no session and no valid token."))
                responses.setdefault("403", _error("Logged in, but this role may not do this."))
            if "{" in path:
                responses.setdefault("404", _error("No such object, or one this user may not see."))
            if method in ("put", "post") and "409" in responses and not responses["409"].get("content"):
                responses["409"] = _error("A stale version: nothing was saved; the body holds the current values.")
            if operation.get("requestBody"):
                responses.setdefault("413", _error("The request body is larger than DATA_UPLOAD_MAX_MEMORY_SIZE."))
                responses.setdefault("415", _error("The body's media type is not accepted here."))
    return result
