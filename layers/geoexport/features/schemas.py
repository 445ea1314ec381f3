"""JSON Schema checks for models and for feature properties: every violation, with its path and reason.

Models are shared by every client, so a model's schema is held to what is safe to run on anyone's data:

- references resolve only inside the schema (``#...``): nothing is ever fetched (the registry refuses any
  retrieval, and a ``$ref`` elsewhere is refused when the model is created);
- ``pattern`` and ``patternProperties`` run on RE2 (linear time: no regular-expression denial of service);
  constructs RE2 cannot run in linear time (lookaround, backreferences) are refused at model creation;
- the schema is at most :data:`MAX_SCHEMA_BYTES` of JSON and :data:`MAX_SCHEMA_DEPTH` subschemas deep.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from typing import Any

import re2
from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import NoSuchResource, Unresolvable

from geoexport.errors import FieldProblem

MAX_SCHEMA_BYTES = 64 * 1024
MAX_SCHEMA_DEPTH = 32

#: Keywords whose value is a map of names to subschemas, one subschema, or a list of subschemas.
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SCHEMA_VALUES = (
    "additionalProperties",
    "unevaluatedProperties",
    "items",
    "additionalItems",
    "unevaluatedItems",
    "contains",
    "propertyNames",
    "not",
    "if",
    "then",
    "else",
)
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf", "prefixItems", "items")

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


@functools.lru_cache(maxsize=1024)
def _regex(pattern: str) -> Any:
    """RE2's compiled pattern (re2.error when RE2 cannot run it)."""
    return re2.compile(pattern, options=_OPTIONS)


def _search(pattern: str, text: str) -> bool:
    return _regex(pattern).search(text) is not None


def _subschemas(
    schema: Any, path: str = "schema", depth: int = 1
) -> Iterator[tuple[str, dict[str, Any], int]]:
    """Every (sub)schema object with its path and depth, the root first."""
    if not isinstance(schema, dict):
        return
    yield path, schema, depth
    for keyword in _SCHEMA_MAPS:
        if isinstance(schema.get(keyword), dict):
            for name, sub in schema[keyword].items():
                yield from _subschemas(sub, f"{path}.{keyword}.{name}", depth + 1)
    for keyword in _SCHEMA_VALUES:
        if isinstance(schema.get(keyword), dict):
            yield from _subschemas(schema[keyword], f"{path}.{keyword}", depth + 1)
    for keyword in _SCHEMA_LISTS:
        if isinstance(schema.get(keyword), list):
            for index, sub in enumerate(schema[keyword]):
                yield from _subschemas(sub, f"{path}.{keyword}[{index}]", depth + 1)


def _nesting(value: Any) -> int:
    """How deep JSON arrays and objects nest in ``value`` (iteratively: no recursion limit to hit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _safety_problems(schema: dict[str, Any]) -> list[FieldProblem]:
    if _nesting(schema) > 4 * MAX_SCHEMA_DEPTH:
        return [FieldProblem("schema", f"nested too deeply (at most {MAX_SCHEMA_DEPTH} subschemas deep)")]
    size = len(json.dumps(schema, separators=(",", ":")))
    if size > MAX_SCHEMA_BYTES:
        return [FieldProblem("schema", f"{size} bytes of JSON; at most {MAX_SCHEMA_BYTES}")]
    problems: list[FieldProblem] = []
    uses_pattern_properties = False
    for path, node, depth in _subschemas(schema):
        if depth > MAX_SCHEMA_DEPTH:
            return [FieldProblem(path, f"nested too deeply (at most {MAX_SCHEMA_DEPTH} subschemas deep)")]
        for keyword in ("$ref", "$dynamicRef"):
            reference = node.get(keyword)
            if isinstance(reference, str) and not reference.startswith("#"):
                problems.append(
                    FieldProblem(
                        f"{path}.{keyword}",
                        f"{reference!r} is outside this schema: only references inside it (#...) are allowed",
                    )
                )
        patterns = [(f"{path}.pattern", node["pattern"])] if isinstance(node.get("pattern"), str) else []
        if isinstance(node.get("patternProperties"), dict):
            uses_pattern_properties = True
            patterns += [(f"{path}.patternProperties", key) for key in node["patternProperties"]]
        for where, pattern in patterns:
            try:
                _regex(pattern)
            except re2.error as error:
                reason = (
                    error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
                )
                problems.append(
                    FieldProblem(
                        where,
                        f"{pattern!r} cannot run in linear time (RE2: {reason}); lookaround and "
                        "backreferences are not supported",
                    )
                )
    if uses_pattern_properties and any("unevaluatedProperties" in node for _, node, _ in _subschemas(schema)):
        problems.append(
            FieldProblem("schema", "unevaluatedProperties cannot be combined with patternProperties here")
        )
    return problems


def schema_problems(schema: dict[str, Any]) -> list[FieldProblem]:
    """Why ``schema`` is not a usable JSON Schema (empty when it is)."""
    problems = _safety_problems(schema)
    if problems:
        return problems
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as error:
        where = ".".join(str(p) for p in error.absolute_path)
        return [FieldProblem("schema" + (f".{where}" if where else ""), error.message)]
    if schema.get("type", "object") != "object":
        return [FieldProblem("schema.type", "feature properties are an object: the schema must describe one")]
    return []


def _refuse(uri: str) -> Any:
    raise NoSuchResource(uri)


#: Resolves references inside a schema only: retrieving anything else is refused, never attempted.
REGISTRY: Registry[Any] = Registry(retrieve=_refuse)  # type: ignore[call-arg]  # an attrs field


def _pattern(
    validator: Any, pattern: str, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, pattern_properties: dict[str, Any], instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = sorted(
        key for key in instance if key not in properties and not any(_search(p, key) for p in patterns)
    )
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        joined = ", ".join(repr(extra) for extra in extras)
        yield ValidationError(f"Additional properties are not allowed ({joined} unexpected)")


#: Draft 2020-12 with RE2 behind every pattern keyword.
SafeValidator = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
)


def validator_for(schema: dict[str, Any]) -> Any:
    """A validator of ``schema``, to keep for many checks (building one costs more than most checks)."""
    return SafeValidator(schema, registry=REGISTRY)


def violations(
    properties: dict[str, Any], schema: dict[str, Any], prefix: str = "properties", validator: Any = None
) -> list[FieldProblem]:
    """Every place ``properties`` breaks ``schema`` (checked by ``validator`` when given, one of
    :func:`validator_for` of it), in document order."""
    validator = validator or validator_for(schema)
    problems = []
    try:
        errors = sorted(validator.iter_errors(properties), key=lambda e: [str(p) for p in e.absolute_path])
    except Unresolvable as unresolvable:  # a model stored before references were checked
        reason = f"cannot be checked: the model refers to {unresolvable} outside itself"
        return [FieldProblem(prefix, reason)]
    for error in errors:
        path = prefix + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        problems.append(FieldProblem(path, error.message))
    return problems
