"""CQL2 text filters over feature properties (OGC API - Features Part 3, the language pygeoapi accepts).

pygeofilter parses the text; this module evaluates its syntax tree against a feature's properties with
SQL's three-valued logic: a comparison with a missing property (or values of different kinds) is
*unknown*, ``NOT unknown`` stays unknown, and only features for which the whole filter is true match. That
is what a database would answer, and why pygeofilter's own Python evaluator (plain ``eval``: ``None > 10``
raises, and it needs shapely) is not used.

Supported: comparisons (``= <> < <= > >=``), ``AND``/``OR``/``NOT``, ``IN``, ``LIKE`` (``%`` and ``_``),
``BETWEEN``, ``IS [NOT] NULL``, arithmetic, string, number, boolean, ``DATE()`` and ``TIMESTAMP()``
literals (compared with ISO 8601 strings in the properties). Spatial, temporal and array predicates and
functions are refused with a 400 naming them (the bbox and the AoI select by location).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from geoexport.errors import FieldProblem, InvalidRequest

if TYPE_CHECKING:
    from geoexport.features.feature import Feature

MAX_FILTER_CHARS = 4096
#: What a filter may use, for the 400 that refuses something else.
SUPPORTED = "comparisons, AND/OR/NOT, IN, LIKE, BETWEEN, IS NULL and arithmetic over properties"

Record = Mapping[str, Any]
Tri = bool | None  # SQL's true / false / unknown


@dataclass(frozen=True)
class PropertyFilter:
    """A parsed filter: ``matches(properties)`` is True only when the filter is true for them."""

    text: str
    _test: Callable[[Record], Tri]

    def matches(self, record: Record) -> bool:
        return self._test(record) is True

    def and_also(self, other: PropertyFilter) -> PropertyFilter:
        """Both filters (OGC API's ``filter`` and ``datetime`` together)."""
        first, second = self._test, other._test
        return PropertyFilter(f"({self.text}) AND ({other.text})", lambda r: _and(first(r), second(r)))


def parse_filter(text: str, field: str = "filter") -> PropertyFilter:
    """The filter of ``text``, or an :class:`InvalidRequest` naming ``field`` and where the text is wrong."""
    from lark.exceptions import UnexpectedInput
    from pygeofilter.parsers.cql2_text import parse

    if len(text) > MAX_FILTER_CHARS:
        problem = FieldProblem(field, f"at most {MAX_FILTER_CHARS} characters")
        raise InvalidRequest("the filter is too long", [problem])
    try:
        tree = parse(text)
    except UnexpectedInput as error:
        near = text[error.pos_in_stream :][:20] if error.pos_in_stream is not None else ""
        reason = f"not CQL2 text at line {error.line}, column {error.column}"
        reason += f" (near {near!r})" if near else " (at its end)"
        raise InvalidRequest("the filter cannot be parsed", [FieldProblem(field, reason)]) from error
    except Exception as error:  # the parser's own checks (a bad date literal, say)
        raise InvalidRequest("the filter cannot be parsed", [FieldProblem(field, str(error))]) from error
    return PropertyFilter(text, _compile(tree, field))


def filterable(feature: Feature) -> dict[str, Any]:
    """What a filter sees of a feature: its properties and, where no property has the name, ``urn``,
    ``id``, ``model``, ``entityType`` and ``version``."""
    base = {
        "urn": feature.urn,
        "id": feature.id,
        "model": feature.model,
        "entityType": feature.entityType.value,
        "version": feature.version,
        "updatedAt": feature.updatedAt.isoformat(),
    }
    return {**base, **(feature.properties or {})}


def _value(record: Record, name: str) -> Any:
    """A property by name; dotted names reach into nested objects."""
    current: Any = record
    for part in name.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _comparable(left: Any, right: Any) -> tuple[Any, Any] | None:
    """Both sides as values Python may order, or None when they are of different kinds (unknown)."""
    if left is None or right is None:
        return None
    if isinstance(left, bool) or isinstance(right, bool):
        return (left, right) if isinstance(left, bool) and isinstance(right, bool) else None
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left, right
    if isinstance(left, datetime | date) or isinstance(right, datetime | date):
        left, right = _moment(left), _moment(right)
        return None if left is None or right is None else (left, right)
    if isinstance(left, str) and isinstance(right, str):
        return left, right
    return None


def _moment(value: Any) -> datetime | None:
    """Dates and ISO 8601 strings as UTC datetimes (a date is its first instant)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def _like(pattern: str, nocase: bool, wildcard: str, single: str, escape: str) -> Any:
    """The LIKE pattern as an RE2 expression (linear time: ``%a%a%a%...`` cannot make a page backtrack
    for minutes, as Python's re would on a long value)."""
    import re2

    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == escape and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == wildcard else "." if char == single else re.escape(char))
        index += 1
    return re2.compile(("(?si)" if nocase else "(?s)") + "".join(out))


def _and(left: Tri, right: Tri) -> Tri:
    if left is False or right is False:
        return False
    return None if left is None or right is None else True


def _or(left: Tri, right: Tri) -> Tri:
    if left is True or right is True:
        return True
    return None if left is None or right is None else False


ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<>": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
}


def _refuse(field: str, what: str) -> InvalidRequest:
    return InvalidRequest(
        "the filter uses what this service does not evaluate",
        [FieldProblem(field, f"{what} is not supported; supported: {SUPPORTED}")],
    )


def _compile(node: Any, field: str) -> Callable[[Record], Any]:
    """A function of the properties for one node of pygeofilter's tree (truth values for predicates)."""
    from pygeofilter import ast, values

    if isinstance(node, ast.Attribute):
        name = node.name
        return lambda record: _value(record, name)
    if isinstance(node, bool | int | float | str | date | datetime):
        return lambda record: node
    if isinstance(node, values.Geometry | values.Envelope | values.Interval | list):
        raise _refuse(field, type(node).__name__)
    if isinstance(node, ast.Not):
        inner = _compile(node.sub_node, field)
        return lambda record: _not(inner(record))
    if isinstance(node, ast.And | ast.Or):
        left, right = _compile(node.lhs, field), _compile(node.rhs, field)
        join = _and if isinstance(node, ast.And) else _or
        return lambda record: join(left(record), right(record))
    if isinstance(node, ast.Comparison):
        left, right = _compile(node.lhs, field), _compile(node.rhs, field)
        compare = ORDER[node.op.value]

        def comparison(record: Record) -> Tri:
            pair = _comparable(left(record), right(record))
            return None if pair is None else compare(*pair)

        return comparison
    if isinstance(node, ast.Arithmetic):
        return _arithmetic(node, field)
    if isinstance(node, ast.Between | ast.Like | ast.In | ast.IsNull):
        test = _predicate(node, field)
        return (lambda record: _not(test(record))) if node.not_ else test
    op = getattr(node, "op", None)
    raise _refuse(field, str(op.value) if op is not None else type(node).__name__)


def _not(truth: Tri) -> Tri:
    return None if truth is None else not truth


def _predicate(node: Any, field: str) -> Callable[[Record], Tri]:
    """BETWEEN, LIKE, IN and IS NULL, before their NOT."""
    from pygeofilter import ast

    subject = _compile(node.lhs, field)
    if isinstance(node, ast.Between):
        low, high = _compile(node.low, field), _compile(node.high, field)

        def between(record: Record) -> Tri:
            value = subject(record)
            above, below = _comparable(value, low(record)), _comparable(value, high(record))
            if above is None or below is None:
                return None
            return bool(above[0] >= above[1] and below[0] <= below[1])

        return between
    if isinstance(node, ast.Like):
        # CQL2's wildcards: % and _, escaped by a backslash (pygeofilter's parser says "." for the single
        # character, which CQL2 does not: "." is itself there).
        pattern = _like(node.pattern, node.nocase, "%", "_", "\\")

        def like(record: Record) -> Tri:
            text = subject(record)
            return pattern.fullmatch(text) is not None if isinstance(text, str) else None

        return like
    if isinstance(node, ast.In):
        options = [_compile(option, field) for option in node.sub_nodes]

        def within(record: Record) -> Tri:
            value, truth = subject(record), False
            for option in options:
                pair = _comparable(value, option(record))
                truth = _or(truth, None if pair is None else pair[0] == pair[1])  # type: ignore[assignment]
            return truth

        return within
    return lambda record: subject(record) is None  # IS NULL: a missing property is null too


def _arithmetic(node: Any, field: str) -> Callable[[Record], Any]:
    left, right = _compile(node.lhs, field), _compile(node.rhs, field)
    symbol = node.op.value
    apply = ARITHMETIC[symbol]

    def arithmetic(record: Record) -> Any:
        a, b = left(record), right(record)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
        if not numbers or (symbol == "/" and b == 0):
            return None  # unknown, as SQL's NULL arithmetic
        return apply(a, b)

    return arithmetic
