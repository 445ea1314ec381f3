"""JSON Schema checks for models and for feature properties: every violation, with its path and reason."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from geoexport.errors import FieldProblem


def schema_problems(schema: dict[str, Any]) -> list[FieldProblem]:
    """Why ``schema`` is not a usable JSON Schema (empty when it is)."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = ".".join(str(p) for p in error.absolute_path)
        return [FieldProblem("schema" + (f".{where}" if where else ""), error.message)]
    if schema.get("type", "object") != "object":
        return [FieldProblem("schema.type", "feature properties are an object: the schema must describe one")]
    return []


def violations(
    properties: dict[str, Any], schema: dict[str, Any], prefix: str = "properties"
) -> list[FieldProblem]:
    """Every place ``properties`` breaks ``schema``, in document order."""
    validator = Draft202012Validator(schema)
    problems = []
    for error in sorted(validator.iter_errors(properties), key=lambda e: [str(p) for p in e.absolute_path]):
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(FieldProblem(path, error.message))
    return problems
