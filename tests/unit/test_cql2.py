"""CQL2 text filters (issue 16): pygeofilter parses, geoexport.features.cql2 evaluates with SQL's
three-valued logic; unreadable or unsupported filters are 400s naming where."""

from __future__ import annotations

import pytest

from geoexport.errors import InvalidRequest
from geoexport.features.cql2 import parse_filter

RECORD = {
    "height": 12, "name": "abc", "kind": "x", "depth": 3, "note": None, "dotted": "a.c", "pct": "50%",
    "when": "2024-05-01T10:00:00Z", "nested": {"level": 1}, "flag": True,
}  # fmt: skip


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("height > 10 AND name LIKE 'a%'", True),
        ("kind IN ('x', 'y')", True),
        ("kind NOT IN ('x')", False),
        ("depth BETWEEN 1 AND 5", True),
        ("depth NOT BETWEEN 1 AND 5", False),
        ("note IS NULL AND missing IS NULL", True),
        ("note IS NOT NULL", False),
        ("missing > 3", False),  # unknown
        ("NOT missing > 3", False),  # NOT unknown is unknown: still no match
        ("missing > 3 OR height = 12", True),  # unknown OR true
        ("missing NOT IN ('x')", False),
        ("height * 2 = 24 AND height / 0 IS NULL", True),
        ("nested.level = 1", True),
        ("name LIKE 'a_c' AND dotted LIKE 'a_c'", True),  # _ is one character (CQL2)
        ("name LIKE 'a.c'", False),  # . is itself
        ("pct LIKE '50\\%' AND NOT name LIKE '50\\%'", True),
        ("name = 'ABC'", False),
        ("when > TIMESTAMP('2024-01-01T00:00:00Z') AND when < DATE('2025-01-01')", True),
        ("flag = true AND height <> 13", True),
        ("name > 3", False),  # a string against a number: unknown
        ("\"name\" = 'abc'", True),
    ],
)
def test_filters_mean_what_a_database_would(text: str, expected: bool) -> None:
    assert parse_filter(text).matches(RECORD) is expected


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("height >> 10", "line 1, column 9"),
        ("height >", "line 1, column 8"),
        ("S_INTERSECTS(geometry, POINT(1 2))", "INTERSECTS is not supported"),
        ("x" * 5000, "at most 4096"),
    ],
)
def test_unreadable_or_unsupported_filters_say_where(text: str, reason: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_filter(text, "parameters.filter")
    (problem,) = refused.value.problems
    assert problem.field == "parameters.filter" and reason in problem.reason, problem


@pytest.mark.timeout(60)  # a guard against a hang, not a measurement
def test_like_patterns_do_not_backtrack() -> None:
    """Many wildcards over a long value: Python's re would backtrack for ages; RE2 answers at once."""
    text = "long LIKE '" + "%a" * 30 + "%b'"
    assert parse_filter(text).matches({"long": "a" * 50_000}) is False
    assert parse_filter(text).matches({"long": "a" * 50_000 + "b"}) is True


def test_two_filters_together() -> None:
    both = parse_filter("height > 10").and_also(parse_filter("kind = 'y'"))
    assert not both.matches(RECORD) and both.matches({**RECORD, "kind": "y"})
