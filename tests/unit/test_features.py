"""Feature payloads: GeoJSON geometry checks, RFC 7386 merge patches, URNs."""

from __future__ import annotations

from typing import Any

import pytest

from geoexport.errors import NotFound
from geoexport.features.feature import geometry_problem, merge_patch
from geoexport.features.service import parse_urn


@pytest.mark.parametrize(
    ("geometry", "problem"),
    [
        ({"type": "Point", "coordinates": [10, 59]}, None),
        ({"type": "LineString", "coordinates": [[0, 0], [1, 1]]}, None),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}, None),
        ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0, 0]}]}, None),
        ({"type": "Point", "coordinates": [200, 0]}, "off the globe"),
        ({"type": "Point", "coordinates": [0]}, "not a position"),
        ({"type": "LineString", "coordinates": [[0, 0]]}, "2 or more"),
        ({"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1]]]}, "last equal to the first"),
        ({"type": "Circle", "coordinates": [0, 0]}, "unknown geometry type"),
        ({"type": "MultiPoint", "coordinates": []}, "non-empty"),
    ],
)
def test_geometry_checks(geometry: dict[str, Any], problem: str | None) -> None:
    found = geometry_problem(geometry)
    assert (found is None) if problem is None else (found is not None and problem in found)


def test_merge_patch_follows_rfc_7386() -> None:
    # The RFC's own example (section 3).
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"}, "tags": ["a", "b"]}
    patch = {"title": "Hello!", "phoneNumber": "+01-123", "author": {"familyName": None}, "tags": ["c"]}
    assert merge_patch(target, patch) == {
        "title": "Hello!",
        "author": {"givenName": "John"},
        "tags": ["c"],
        "phoneNumber": "+01-123",
    }
    assert merge_patch({"a": "b"}, ["c"]) == ["c"] and merge_patch({"a": "b"}, {"a": None}) == {}


def test_urns_with_and_without_version() -> None:
    base = "URN:FEATURE:DATA:geoexport:0b2f6a0e-8f5c-4f0e-9a4e-0c8e1d7f2a11"
    assert parse_urn(base) == (base, None)
    assert parse_urn(f"{base}:V12") == (base, 12)
    for bad in ("urn:x", f"{base}:V", "URN:FEATURE:THING:geoexport:0b2f6a0e-8f5c-4f0e-9a4e-0c8e1d7f2a11"):
        with pytest.raises(NotFound):
            parse_urn(bad)
