"""Issue 12: a model's schema can neither make the service fetch anything nor hold a function on a
catastrophic regular expression, and its size and depth are bounded."""

from __future__ import annotations

import http.server
import threading
import time
from typing import Any

import pytest

from geoexport.features.schemas import MAX_SCHEMA_BYTES, MAX_SCHEMA_DEPTH, schema_problems, violations


def obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    "reference", ["http://127.0.0.1:9/internal.json", "file:///etc/passwd", "other.json#/x", "urn:x:y"]
)
def test_a_reference_outside_the_schema_is_refused_naming_it(reference: str) -> None:
    (problem,) = schema_problems(obj(name={"$ref": reference}))
    assert problem.field == "schema.properties.name.$ref" and reference in problem.reason


def test_references_inside_the_schema_work() -> None:
    schema = {**obj(name={"$ref": "#/$defs/short"}), "$defs": {"short": {"type": "string", "maxLength": 3}}}
    assert schema_problems(schema) == []
    assert [p.field for p in violations({"name": "toolong"}, schema)] == ["properties.name"]


def test_nothing_is_fetched_even_for_a_stored_schema_with_a_remote_reference() -> None:
    """A model stored before the check: validating against it answers a problem, and no request is made."""
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"type": "integer"}')

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/internal.json"
        (problem,) = violations({"name": "x"}, obj(name={"$ref": url}))
        assert "outside itself" in problem.reason and hits == []
    finally:
        server.shutdown()


def test_a_catastrophic_pattern_runs_in_linear_time() -> None:
    schema = obj(code={"type": "string", "pattern": "^(a+)+$"})
    assert schema_problems(schema) == []
    started = time.perf_counter()
    (problem,) = violations({"code": "a" * 5000 + "!"}, schema)  # Python's re: 2^5000 steps
    assert time.perf_counter() - started < 1.0 and problem.field == "properties.code"
    assert violations({"code": "aaaa"}, schema) == []


def test_pattern_properties_and_additional_properties_use_the_same_engine() -> None:
    schema = {
        "type": "object",
        "patternProperties": {"^(x+)+$": {"type": "integer"}},
        "additionalProperties": False,
    }
    assert schema_problems(schema) == []
    started = time.perf_counter()
    problems = violations({"x" * 5000 + "!": 1, "xx": "no"}, schema)
    assert time.perf_counter() - started < 1.0
    assert {p.field for p in problems} == {"properties", "properties.xx"}


@pytest.mark.parametrize("pattern", ["(?=a)b", "(a)\\1", "(?<!x)y"])
def test_patterns_re2_cannot_run_are_refused_at_creation(pattern: str) -> None:
    (problem,) = schema_problems(obj(code={"type": "string", "pattern": pattern}))
    assert problem.field == "schema.properties.code.pattern" and "linear time" in problem.reason


def test_size_and_depth_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(100):  # 100 properties deep was a 502
        deep = obj(inner=deep)
    (problem,) = schema_problems(deep)
    assert str(MAX_SCHEMA_DEPTH) in problem.reason
    wide = obj(**{f"p{i}": {"type": "string", "description": "x" * 100} for i in range(1000)})
    (problem,) = schema_problems(wide)
    assert problem.field == "schema" and str(MAX_SCHEMA_BYTES) in problem.reason
