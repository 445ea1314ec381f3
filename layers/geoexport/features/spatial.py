"""Spatial index for features: geohash cells as DynamoDB keys, and the exact bbox test (pure Python).

A feature is indexed at the finest geohash level (1..MAX_LEVEL) at which its bbox spans at most MAX_CELLS
cells: one entry per cell, ``pk = G#<owner>#<level>#<level-1 cell>``, ``sk = <cell>#<urn>``, carrying the
feature's bbox, model and entity type. Within a partition the sort keys are in Z order (geohash strings sort
as their cells' Z-order indices), so the cells under a run of consecutive coarser cells are one key range.

A bbox query reads, per level, the runs of the coarsest-but-sufficient cells covering the box (at most
MAX_QUERY_CELLS of them, so the over-read is bounded by one ring of those cells), filters entries by bbox,
model and entity type before any document is fetched, and keeps a feature only in the first of its cells
it reads (a feature spans up to MAX_CELLS cells). The steps are in a fixed order and each reads keys in
order, so a page resumes at (step, last key read): no page re-reads what an earlier one read.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from geoexport.geometry import planar

BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
MAX_LEVEL = 6
MAX_CELLS = 4  # per feature, at its level
MAX_QUERY_CELLS = 32  # covering cells per level (the level-1 cover of the world is 32)
MAX_GAP = 2  # cells of a partition between two covering ones read through (one key range, not two)
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


def index_cells(geometry: dict[str, Any], box: Bounds | None = None) -> tuple[int, list[str]]:
    """(level, cells) under which a feature is indexed (``box``: its bounds, when known)."""
    box = box or bounds_of(geometry)
    level = 1
    for candidate in range(MAX_LEVEL, 0, -1):
        if cover_count(box, candidate) <= MAX_CELLS:
            level = candidate
            break
    return level, cover(box, level)


def index_keys(
    owner: str, base: str, geometry: dict[str, Any], box: Bounds | None = None
) -> list[tuple[str, str]]:
    level, cells = index_cells(geometry, box)
    return [(f"G#{owner}#{level}#{cell[0]}", f"{cell}#{base}") for cell in cells]


@dataclass(frozen=True)
class Indexed:
    """What the index knows of a feature: enough to filter by owner, bbox, model and type without it."""

    owner: str
    base: str
    geometry: dict[str, Any] | None
    model: str
    entity_type: str


#: Where a scan stopped: (step of the plan, last sort key read); the owner listing has one step.
Position = tuple[int, str]


def _cell(z: int, level: int) -> str:
    """The geohash of Z-order index ``z`` at ``level`` (the inverse of _z)."""
    return "".join(BASE32[(z >> (5 * (level - 1 - i))) & 31] for i in range(level))


def _z(cell: str) -> int:
    value = 0
    for char in cell:
        value = value * 32 + BASE32.index(char)
    return value


@dataclass(frozen=True)
class Step:
    """One key-range read: every entry of ``level`` in partition ``pk`` with ``low <= sk <= high``."""

    level: int
    pk: str
    low: str
    high: str


@dataclass(frozen=True)
class Plan:
    """The reads answering a bbox query, in the order pages consume them."""

    box: Bounds
    steps: tuple[Step, ...]
    prefixes: dict[int, frozenset[str]]  # per level, the covering cells whose entries are read

    def first_read(self, cell: str, feature_box: Bounds) -> bool:
        """Is ``cell`` the first of the feature's cells this plan reads (the one that reports it)?"""
        level = len(cell)
        prefixes = self.prefixes[level]
        width = len(next(iter(prefixes)))
        return not any(other < cell and other[:width] in prefixes for other in cover(feature_box, level))


def query_plan(owner: str, box: Bounds) -> Plan:
    """Per level, the cells of the finest level (not finer than the entries') covering ``box`` with at most
    MAX_QUERY_CELLS cells: entries read lie within one such cell of the box. Cells close in Z order (at
    most MAX_GAP apart, same partition) merge into one key range, the cells between read too."""
    steps: list[Step] = []
    prefixes: dict[int, frozenset[str]] = {}
    for level in range(1, MAX_LEVEL + 1):
        coarse = max(c for c in range(1, level + 1) if c == 1 or cover_count(box, c) <= MAX_QUERY_CELLS)
        runs: list[list[int]] = []  # [first, last] Z indices of the cells read, gaps included
        for z in sorted(_z(cell) for cell in cover(box, coarse)):
            partition = z >> (5 * (coarse - 1))
            if runs and runs[-1][1] >> (5 * (coarse - 1)) == partition and z - runs[-1][1] <= MAX_GAP + 1:
                runs[-1][1] = z
            else:
                runs.append([z, z])
        prefixes[level] = frozenset(_cell(z, coarse) for first, last in runs for z in range(first, last + 1))
        for first, last in runs:
            low, high = _cell(first, coarse), _cell(last, coarse)
            steps.append(Step(level, f"G#{owner}#{level}#{low[0]}", low, high + "~"))
    return Plan(box, tuple(steps), prefixes)


#: A bbox covering at least this share of the world is answered from the owner's entries, not cells.
OWNER_SCAN_SHARE = 0.25


def area_share(box: Bounds) -> float:
    """The share of the lon/lat plane (360 x 180 degrees) a bbox covers."""
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1]) / 64800.0


def box_text(box: Bounds) -> str:
    """A bbox as stored on index entries (``repr`` round-trips every float exactly)."""
    return " ".join(repr(float(v)) for v in box)


def parse_box(text: str) -> Bounds:
    x0, y0, x1, y1 = (float(v) for v in text.split())
    return x0, y0, x1, y1


def boxes_meet(a: Bounds, b: Bounds) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


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
