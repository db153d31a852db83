"""Every string, list and mapping a client can send has a bound, read off the OpenAPI document
(so a new field without one fails here, not in production)."""

import re
from typing import Any

from api.main import create_app
from winback.platform.settings import Settings

UNBOUNDED_FORMATS = ("date-time", "date", "time", "duration", "uuid")


def _unbounded(
    schema: dict[str, Any], doc: dict[str, Any], where: str, seen: frozenset[str]
) -> list[str]:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        if name in seen:
            return []
        return _unbounded(doc["components"]["schemas"][name], doc, name, seen | {name})
    found: list[str] = []
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            found += _unbounded(sub, doc, where, seen)
    kind = schema.get("type")
    bounded = (
        "maxLength" in schema
        or "enum" in schema
        or "const" in schema
        or bool(re.search(r"^\^.*\{\d*,?\d+\}\$$", schema.get("pattern", "")))
    )
    if kind == "string" and not bounded and schema.get("format") not in UNBOUNDED_FORMATS:
        found.append(f"{where}: string without maxLength")
    if kind == "array":
        if "maxItems" not in schema:
            found.append(f"{where}: array without maxItems")
        found += _unbounded(schema.get("items", {}), doc, f"{where}[]", seen)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        if "maxProperties" not in schema:
            found.append(f"{where}: mapping without maxProperties")
        found += _unbounded(extra, doc, f"{where}{{}}", seen)
    for name, prop in schema.get("properties", {}).items():
        found += _unbounded(prop, doc, f"{where}.{name}", seen)
    return found


def test_every_request_field_has_a_bound() -> None:
    doc = create_app(Settings()).openapi()
    problems: list[str] = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            where = f"{method.upper()} {path}"
            for media in op.get("requestBody", {}).get("content", {}).values():
                problems += _unbounded(media["schema"], doc, where, frozenset())
            for param in op.get("parameters", []):
                schema = param.get("schema", {})
                problems += _unbounded(schema, doc, f"{where} {param['name']}", frozenset())
    assert sorted(set(problems)) == []
