"""Request bodies for any operation of the live OpenAPI document, aimed at another tenant's ids.

`BodyMaker` fills a request schema: a field named like an id (`userId`, `transactionIds`,
`notificationId`, `templateCode`, `keyId`, …) gets the victim tenant's value; every other
field a valid-looking value from its schema (enum, format, bounds, example). Operations
added later are covered without an edit; a new id field only needs its name in `ID_FIELDS`
when its value cannot be guessed from the names below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

# Field name → which of the victim's ids it takes (plural names take a one-item list).
ID_FIELDS = {
    "userId": "user",
    "userIds": "user",
    "user_id": "uuid_user",
    "subscriberId": "user",
    "subscriberIds": "user",
    "transactionId": "transaction",
    "transactionIds": "transaction",
    "notificationId": "notification",
    "notificationIds": "notification",
    "notification_id": "notification",
    "messageId": "notification",
    "templateCode": "template",
    "template_code": "template",
    "keyId": "key",
    "providerId": "provider",
    "request_id": "request",
    "operationId": "operation",
    "fcmToken": "device",
    "topicKey": "topic",
}


@dataclass
class Operation:
    """One operation of the document."""

    method: str
    path: str
    spec: dict[str, Any]

    @property
    def name(self) -> str:
        """`POST /api/v1/…`."""
        return f"{self.method.upper()} {self.path}"


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the document, in path order."""
    return [
        Operation(method, path, spec)
        for path, item in sorted(document["paths"].items())
        for method, spec in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    ]


class BodyMaker:
    """Builds bodies and paths from the document's schemas."""

    def __init__(self, document: dict[str, Any], ids: dict[str, str]) -> None:
        self.components = document.get("components", {}).get("schemas", {})
        self.ids = ids

    def path(self, operation: Operation) -> str:
        """The path with its parameters set to the victim's ids (by parameter name)."""

        def fill(match: re.Match[str]) -> str:
            return self._id_for(match.group(1)) or "x"

        return re.sub(r"\{(\w+)\}", fill, operation.path)

    def body(self, operation: Operation, *, full: bool) -> dict[str, Any] | None:
        """A JSON body: every property (`full`) or the required ones, ids and `all`."""
        content = operation.spec.get("requestBody", {}).get("content", {})
        schema = content.get("application/json", {}).get("schema")
        if schema is None:
            return None
        value = self._object(self._resolve(schema), full=full, depth=0)
        return value if isinstance(value, dict) else {}

    def _id_for(self, name: str) -> str | None:
        kind = ID_FIELDS.get(name)
        return self.ids.get(kind) if kind else None

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self.components[schema["$ref"].rsplit("/", 1)[1]]
        if "allOf" in schema and len(schema["allOf"]) == 1:
            return self._resolve(schema["allOf"][0])
        return schema

    def _object(self, schema: dict[str, Any], *, full: bool, depth: int) -> Any:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        out: dict[str, Any] = {}
        for name, sub in properties.items():
            wanted = full or name in required or name in ID_FIELDS or name == "all"
            if wanted:
                out[name] = self._value(name, self._resolve(sub), full=full, depth=depth + 1)
        return out

    def _value(self, name: str, schema: dict[str, Any], *, full: bool, depth: int) -> Any:
        victim = self._id_for(name)
        options = schema.get("anyOf") or schema.get("oneOf")
        if options:
            usable = [self._resolve(o) for o in options if o.get("type") != "null"]
            schema = usable[0] if usable else {"type": "null"}
        kind = schema.get("type")
        if victim is not None:
            return [victim] if kind == "array" else victim
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return schema["enum"][0]
        if "default" in schema and schema["default"] is not None and name != "all":
            return schema["default"]
        if kind == "boolean":
            return name == "all"  # `all: true` selects everything a tenant may touch
        if kind in ("integer", "number"):
            low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
            return max(1, int(low) + (1 if "exclusiveMinimum" in schema else 0))
        if kind == "string":
            return _string(name, schema)
        if kind == "array":
            item = self._resolve(schema.get("items", {}))
            count = max(1, int(schema.get("minItems", 1)))
            return [self._value(name, item, full=full, depth=depth + 1) for _ in range(count)]
        if kind == "object" or "properties" in schema:
            if depth > 6:
                return {}
            return self._object(schema, full=full, depth=depth)
        return "x"


def _string(name: str, schema: dict[str, Any]) -> str:
    examples = schema.get("examples") or ([schema["example"]] if "example" in schema else [])
    if examples:
        return str(examples[0])
    fmt = schema.get("format")
    if fmt == "date-time":
        return (datetime.now(UTC) + timedelta(days=1)).isoformat().replace("+00:00", "Z")
    if fmt == "email":
        return "probe@acme-b.com"
    if "email" in name.lower():
        return "probe@acme-b.com"
    if "url" in name.lower() or fmt == "uri":
        return "https://acme-b.com/hook"
    if "locale" in name.lower():
        return "en"
    if "timezone" in name.lower():
        return "UTC"
    return "x" * max(1, int(schema.get("minLength", 1)))
