"""VECTOR export pieces without AWS: clipping keeps the source's dimension, attribute columns are typed."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import shapely

from geoexport.features.feature import Feature
from geoexport.pipeline.vector import Layer, _column, clip_feature, write_layers

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


def test_columns_are_typed_and_nested_values_kept_as_json(tmp_path: Path) -> None:
    assert _column([1, 2, 3])[0].dtype == np.int64 and _column([1, None])[0].dtype == np.int64
    assert _column([1.5, 2])[0].dtype == np.float64 and _column([True, False])[0].dtype == np.bool_
    values, mask = _column([{"a": 1}, "x", None])
    assert values.dtype == object and list(values) == ['{"a": 1}', "x", None] and mask is None
    assert list(_column([1, None])[1]) == [False, True]  # a null, not 0
    assert np.isnan(_column([1.5, None])[0][1])
    # Read back: each type stays itself in the GeoPackage, nulls stay null.
    path = tmp_path / "typed.gpkg"
    props = [{"b": True, "n": 1, "r": 1.5, "o": {"a": 1}}, {"b": None, "n": None, "r": None, "o": "x"}]
    rows = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [i, 1]},
            "properties": {
                "urn": "u",
                "featureId": str(i),
                "entityType": "DATA",
                "version": 1,
                "properties": p,
            },
        }
        for i, p in enumerate(props)
    ]
    write_layers(path, [Layer("m", rows)], "4326")
    meta, _, _, fields = pyogrio.raw.read(path)
    types = dict(zip(meta["fields"], meta["dtypes"], strict=True))
    assert (types["b"], types["n"], types["r"], types["o"]) == ("bool", "int64", "float64", "object")
    by_name = dict(zip(meta["fields"], fields, strict=True))
    assert by_name["o"][0] == '{"a": 1}'
    with sqlite3.connect(path) as db:  # nulls are SQL NULLs
        assert db.execute("SELECT b, n FROM m WHERE featureId = '1'").fetchone() == (None, None)
