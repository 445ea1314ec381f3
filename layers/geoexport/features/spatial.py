"""Spatial index for features: geohash cells as DynamoDB keys, and the exact bbox test (pure Python).

A feature is indexed at the finest geohash level (1..MAX_LEVEL) at which its bbox spans at most
MAX_CELLS cells, under one partition per level-1 cell: ``pk = G#<owner>#<level-1 cell>``,
``sk = <level>#<cell>#<urn>``. A bbox query reads, per partition it meets and per level, either the few
cells it covers (``begins_with``) or the whole level of that partition, then keeps exactly the features whose
geometry meets the bbox. No scan: the work grows with the area asked for, not with the table.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from geoexport.geometry import planar

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
MAX_LEVEL = 6
MAX_CELLS = 4  # per feature, at its level
MAX_QUERY_CELLS = 16  # per partition and level; beyond, the partition's whole level is read
Bounds = tuple[float, float, float, float]


def _bits(level: int) -> tuple[int, int]:
    total = 5 * level
    return (total + 1) // 2, total // 2  # longitude bits, latitude bits


def cell_size(level: int) -> tuple[float, float]:
    lon_bits, lat_bits = _bits(level)
    return 360.0 / (1 << lon_bits), 180.0 / (1 << lat_bits)


def encode_index(ix: int, iy: int, level: int) -> str:
    """Geohash of the cell at column ``ix`` and row ``iy`` (from the south-west) at ``level``."""
    lon_bits, lat_bits = _bits(level)
    chars, value, count = [], 0, 0
    li, la = lon_bits - 1, lat_bits - 1
    for n in range(5 * level):
        if n % 2 == 0:
            bit = (ix >> li) & 1
            li -= 1
        else:
            bit = (iy >> la) & 1
            la -= 1
        value = (value << 1) | bit
        count += 1
        if count == 5:
            chars.append(BASE32[value])
            value, count = 0, 0
    return "".join(chars)


def _index_range(bounds: Bounds, level: int) -> tuple[int, int, int, int]:
    width, height = cell_size(level)
    lon_bits, lat_bits = _bits(level)
    x0 = min((1 << lon_bits) - 1, max(0, int((bounds[0] + 180.0) // width)))
    x1 = min((1 << lon_bits) - 1, max(0, int((bounds[2] + 180.0) // width)))
    y0 = min((1 << lat_bits) - 1, max(0, int((bounds[1] + 90.0) // height)))
    y1 = min((1 << lat_bits) - 1, max(0, int((bounds[3] + 90.0) // height)))
    return x0, y0, x1, y1


def cover_count(bounds: Bounds, level: int) -> int:
    x0, y0, x1, y1 = _index_range(bounds, level)
    return (x1 - x0 + 1) * (y1 - y0 + 1)


def cover(bounds: Bounds, level: int) -> list[str]:
    """Every cell of ``level`` that the bbox meets."""
    x0, y0, x1, y1 = _index_range(bounds, level)
    return [encode_index(x, y, level) for x in range(x0, x1 + 1) for y in range(y0, y1 + 1)]


def positions(geometry: dict[str, Any]) -> Iterator[Sequence[float]]:
    if geometry["type"] == "GeometryCollection":
        for part in geometry["geometries"]:
            yield from positions(part)
        return

    def walk(value: Any) -> Iterator[Sequence[float]]:
        if value and isinstance(value[0], int | float):
            yield value
        else:
            for item in value:
                yield from walk(item)

    yield from walk(geometry["coordinates"])


def bounds_of(geometry: dict[str, Any]) -> Bounds:
    xs, ys = zip(*((p[0], p[1]) for p in positions(geometry)), strict=True)
    return min(xs), min(ys), max(xs), max(ys)


def index_cells(geometry: dict[str, Any]) -> tuple[int, list[str]]:
    """(level, cells) under which a feature is indexed."""
    box = bounds_of(geometry)
    level = 1
    for candidate in range(MAX_LEVEL, 0, -1):
        if cover_count(box, candidate) <= MAX_CELLS:
            level = candidate
            break
    return level, cover(box, level)


def index_keys(owner: str, base: str, geometry: dict[str, Any]) -> list[tuple[str, str]]:
    level, cells = index_cells(geometry)
    return [(f"G#{owner}#{cell[0]}", f"{level}#{cell}#{base}") for cell in cells]


def query_plan(owner: str, box: Bounds) -> list[tuple[str, str | None]]:
    """(partition key, sort-key prefix or None for the whole partition) pairs to read for a bbox.

    A partition the box covers, or one where every level would be read whole anyway, is one query."""
    plan: list[tuple[str, str | None]] = []
    for partition in cover(box, 1):
        pk = f"G#{owner}#{partition}"
        pairs: list[tuple[str, str | None]] = []
        for level in range(1, MAX_LEVEL + 1):
            cells = (
                [c for c in cover(box, level) if c.startswith(partition)]
                if cover_count(box, level) <= 4096
                else []
            )
            if cells and len(cells) <= MAX_QUERY_CELLS:
                pairs += [(pk, f"{level}#{cell}") for cell in cells]
            else:
                pairs.append((pk, f"{level}#"))
        # Level 1 of a partition is its one cell; a level read whole needs no prefix either.
        whole = all(
            prefix is not None and (prefix.endswith("#") or prefix == f"1#{partition}") for _, prefix in pairs
        )
        plan += [(pk, None)] if whole else pairs
    return plan


# -- exact test ----------------------------------------------------------------------------------------------
def _in_box(p: Sequence[float], box: Bounds) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def _box_edges(box: Bounds) -> list[tuple[float, float, float, float]]:
    x0, y0, x1, y1 = box
    return [(x0, y0, x1, y0), (x1, y0, x1, y1), (x1, y1, x0, y1), (x0, y1, x0, y0)]


def _line_meets(line: Sequence[Sequence[float]], box: Bounds) -> bool:
    if any(_in_box(p, box) for p in line):
        return True
    edges = _box_edges(box)
    for a, b in itertools.pairwise(line):
        segment = (a[0], a[1], b[0], b[1])
        if any(planar.segments_intersect(segment, edge) for edge in edges):
            return True
    return False


def _polygon_meets(rings: Sequence[Sequence[Sequence[float]]], box: Bounds) -> bool:
    if any(_line_meets(ring, box) for ring in rings):
        return True  # a vertex inside the box, or a boundary crossing it
    corner = (box[0], box[1])
    return planar.point_in_polygon(corner, rings)  # the box lies wholly inside the polygon


def intersects(geometry: dict[str, Any], box: Bounds) -> bool:
    """Does ``geometry`` (GeoJSON, lon/lat) meet the closed bbox?"""
    kind = geometry["type"]
    coords = geometry.get("coordinates")
    if kind == "Point":
        return _in_box(coords, box)  # type: ignore[arg-type]
    if kind == "MultiPoint":
        return any(_in_box(p, box) for p in coords)  # type: ignore[union-attr]
    if kind == "LineString":
        return _line_meets(coords, box)  # type: ignore[arg-type]
    if kind == "MultiLineString":
        return any(_line_meets(line, box) for line in coords)  # type: ignore[union-attr]
    if kind == "Polygon":
        return _polygon_meets(coords, box)  # type: ignore[arg-type]
    if kind == "MultiPolygon":
        return any(_polygon_meets(polygon, box) for polygon in coords)  # type: ignore[union-attr]
    if kind == "GeometryCollection":
        return any(intersects(part, box) for part in geometry["geometries"])
    return False
