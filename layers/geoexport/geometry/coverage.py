"""Which tiles of a zoom a polygon covers, row by row, in pure Python (the API estimates with it).

A tile is covered when the polygon meets its interior: either a polygon edge passes through it (edges are
walked cell by cell) or its centre lies inside the polygon (even-odd crossings of the row's centre line).
Rows are kept as merged column intervals, so counting millions of tiles stays cheap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from itertools import pairwise

from geoexport.geometry import grid
from geoexport.geometry.planar import PolygonCoords, polygon_parts

Intervals = list[tuple[int, int]]  # inclusive column ranges, sorted, disjoint
Rows = dict[int, Intervals]


def _merge(intervals: Iterable[tuple[int, int]]) -> Intervals:
    merged: Intervals = []
    for low, high in sorted(intervals):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def _walk_edge(x0: float, y0: float, x1: float, y1: float, span: float, cells: dict[int, list[int]]) -> None:
    """Add every cell whose interior the segment passes through (grid in tile units, rows downwards)."""
    ax, ay = (x0 + 180.0) / span, (90.0 - y0) / span
    bx, by = (x1 + 180.0) / span, (90.0 - y1) / span
    steps = max(1, math.ceil(abs(bx - ax)) + math.ceil(abs(by - ay)))
    # Split the segment where it crosses grid lines; each piece lies in one cell (its midpoint's).
    ts = {0.0, 1.0}
    for a, b in ((ax, bx), (ay, by)):
        if a != b:
            lo, hi = sorted((a, b))
            for line in range(math.ceil(lo), math.floor(hi) + 1):
                ts.add((line - a) / (b - a))
    if len(ts) > 4 * steps + 8:  # defensive: never more pieces than crossings
        ts = set(sorted(ts)[: 4 * steps + 8])
    for t0, t1 in pairwise(sorted(ts)):
        if t1 - t0 <= 1e-12:
            continue
        tm = (t0 + t1) / 2
        cx, cy = ax + (bx - ax) * tm, ay + (by - ay) * tm
        cells.setdefault(math.floor(cy), []).append(math.floor(cx))


def polygon_rows(rings: PolygonCoords, zoom: int) -> Rows:
    span = grid.TILE_SIZE * grid.resolution(zoom)
    cols, rows_n = grid.matrix_size(zoom)
    boundary: dict[int, list[int]] = {}
    ys = [p[1] for p in rings[0]]
    top = max(0, math.floor((90.0 - max(ys)) / span))
    bottom = min(rows_n - 1, math.floor((90.0 - min(ys)) / span - 1e-12))
    for ring in rings:
        for a, b in pairwise(ring):
            _walk_edge(a[0], a[1], b[0], b[1], span, boundary)
    result: Rows = {}
    for row in range(top, bottom + 1):
        centre_y = 90.0 - (row + 0.5) * span
        crossings: list[float] = []
        for ring in rings:
            for (x1, y1, *_), (x2, y2, *_) in pairwise(ring):
                if (y1 > centre_y) != (y2 > centre_y):
                    crossings.append(x1 + (centre_y - y1) * (x2 - x1) / (y2 - y1))
        crossings.sort()
        spans: list[tuple[int, int]] = []
        for left, right in zip(crossings[::2], crossings[1::2], strict=False):
            # columns whose centre x lies in [left, right]
            first = math.ceil((left + 180.0) / span - 0.5)
            last = math.floor((right + 180.0) / span - 0.5)
            if first <= last:
                spans.append((first, last))
        spans.extend((c, c) for c in boundary.get(row, []))
        clipped = [(max(0, lo), min(cols - 1, hi)) for lo, hi in spans if hi >= 0 and lo <= cols - 1]
        if clipped:
            result[row] = _merge(clipped)
    return result


def union(rows: Sequence[Rows]) -> Rows:
    out: Rows = {}
    for item in rows:
        for row, intervals in item.items():
            out[row] = _merge([*out.get(row, []), *intervals])
    return out


def intersect(a: Rows, b: Rows) -> Rows:
    out: Rows = {}
    for row in a.keys() & b.keys():
        pieces = []
        for lo1, hi1 in a[row]:
            for lo2, hi2 in b[row]:
                lo, hi = max(lo1, lo2), min(hi1, hi2)
                if lo <= hi:
                    pieces.append((lo, hi))
        if pieces:
            out[row] = _merge(pieces)
    return out


def geometry_rows(geometry: dict[str, object], zoom: int) -> Rows:
    return union([polygon_rows(part, zoom) for part in polygon_parts(geometry)])


def count(rows: Rows) -> int:
    return sum(hi - lo + 1 for intervals in rows.values() for lo, hi in intervals)
