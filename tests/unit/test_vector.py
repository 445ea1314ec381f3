"""VECTOR export pieces without AWS: clipping keeps the source's dimension, attribute columns are typed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyogrio
import shapely

from geoexport.features.feature import Feature
from geoexport.pipeline.selection import Kind, Selection, kind_of, merge_kinds
from geoexport.pipeline.vector import GeoPackageParts, clip_feature, layer_schemas, project
from tests.support import validate_gpkg

AOI = shapely.box(0, 0, 10, 10)


def feature(geometry: dict[str, Any]) -> Feature:
    now = datetime(2026, 11, 22, tzinfo=UTC)
    return Feature(
        id="f",
        urn="URN:FEATURE:DATA:t:00000000-0000-0000-0000-000000000000:V1",
        model="m",
        entityType="DATA",
        geometry=geometry,
        version=1,
        createdAt=now,
        updatedAt=now,
    )


def square(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def test_clipping_keeps_what_lies_inside_with_the_source_dimension() -> None:
    assert clip_feature(feature(square(2, 2, 3, 3)), AOI).equals(shapely.box(2, 2, 3, 3))  # type: ignore[union-attr]
    assert clip_feature(feature(square(8, 8, 12, 12)), AOI).equals(shapely.box(8, 8, 10, 10))  # type: ignore[union-attr]
    assert clip_feature(feature(square(10, 0, 12, 10)), AOI) is None  # shares an edge only: no area inside
    assert clip_feature(feature(square(20, 20, 21, 21)), AOI) is None
    line = clip_feature(feature({"type": "LineString", "coordinates": [[-5, 5], [15, 5]]}), AOI)
    assert line is not None and line.equals(shapely.LineString([(0, 5), (10, 5)]))
    assert clip_feature(feature({"type": "Point", "coordinates": [10, 5]}), AOI) is not None  # on the edge


def row(i: int, props: dict[str, Any], model: str = "m", geometry: Any = None) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry or {"type": "Point", "coordinates": [i % 170, (i // 170) % 80]},
        "properties": {
            "urn": f"urn:{model}:{i}",
            "featureId": str(i),
            "entityType": "DATA",
            "version": 1,
            "model": model,
            "properties": props,
        },
    }


def write(path: Path, chunks: list[list[dict[str, Any]]], limit: int = 10**9) -> list[Path]:
    """What Package does: the selection counted chunk by chunk, then each chunk appended."""
    selection = Selection()
    for chunk in chunks:
        selection.add(chunk, list(project(chunk, "4326")))
    parts = GeoPackageParts(path.parent, path.stem, "4326", limit, layer_schemas(selection, None, False))
    for chunk in chunks:
        parts.write(chunk, project(chunk, "4326"))
    return parts.close()


def test_kinds_merge_across_chunks() -> None:
    assert merge_kinds(Kind.INT, Kind.REAL) is Kind.REAL and merge_kinds(None, Kind.BOOL) is Kind.BOOL
    assert merge_kinds(Kind.BOOL, Kind.INT) is Kind.TEXT and merge_kinds(Kind.REAL, Kind.TEXT) is Kind.TEXT
    assert kind_of(2**63) is Kind.TEXT and kind_of(2**63 - 1) is Kind.INT and kind_of({"a": 1}) is Kind.TEXT


def test_columns_are_typed_and_nested_values_kept_as_json(tmp_path: Path) -> None:
    # Read back: each type stays itself in the GeoPackage, nulls stay null, even when the chunk that
    # decides a column's type comes after one that does not (an integer column turning real; nulls first).
    first = [row(0, {"b": True, "n": 1, "r": 1, "o": {"a": 1}}), row(1, {"b": None, "n": None, "r": None})]
    second = [row(2, {"b": False, "n": 5, "r": 2.5, "o": "x", "late": 7})]
    (path,) = write(tmp_path / "typed.gpkg", [first, second])
    meta, _, _, fields = pyogrio.raw.read(path)
    types = dict(zip(meta["fields"], meta["dtypes"], strict=True))
    assert (types["b"], types["n"], types["r"], types["o"]) == ("bool", "int64", "float64", "object")
    assert types["late"] == "int64"
    by_name = dict(zip(meta["fields"], fields, strict=True))
    assert (
        by_name["o"][0] == '{"a": 1}' and by_name["o"][2] == "x" and list(by_name["r"][[0, 2]]) == [1.0, 2.5]
    )
    with sqlite3.connect(path) as db:  # nulls are SQL NULLs
        assert db.execute("SELECT b, n, late FROM m WHERE featureId = '1'").fetchone() == (None, None, None)


def test_parts_stay_within_the_limit_and_hold_every_feature_once(tmp_path: Path) -> None:
    """Many chunks of two models into parts of 200 KB: a part's size is foreseen, and a write that still
    overshoots is taken back (rows deleted, or a new layer dropped) and redone in the next part."""
    # Texts grow along the export: the bytes per feature measured so far underestimate the next write.
    chunks = [
        [
            row(i, {"t": "x" * (50 + i // 3), "n": i}, model="m" if i % 3 else "k")
            for i in range(start, start + 700)
        ]
        for start in range(0, 4200, 700)
    ]
    limit = 200 * 1024
    parts = write(tmp_path / "big.gpkg", chunks, limit)
    assert len(parts) >= 5 and all("_part" in p.name for p in parts)
    seen: dict[str, list[str]] = {}
    for path in parts:
        assert path.stat().st_size <= limit, path
        validate_gpkg(path)
        for name, _ in pyogrio.list_layers(path):
            meta, _, _, fields = pyogrio.raw.read(path, layer=name)
            seen.setdefault(name, []).extend(fields[list(meta["fields"]).index("featureId")])
        with sqlite3.connect(path) as db:  # counts GDAL keeps agree with the rows (after any take-back)
            for table, count in db.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents"):
                assert db.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] == count
    assert sorted(seen["m"], key=int) == [str(i) for i in range(4200) if i % 3]
    assert sorted(seen["k"], key=int) == [str(i) for i in range(4200) if not i % 3]
    assert write(tmp_path / "one.gpkg", chunks)[0].name == "one.gpkg"  # no limit reached: one file
