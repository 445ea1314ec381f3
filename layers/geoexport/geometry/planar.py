"""Validation and intersection tests for GeoJSON polygons in lon/lat, in pure Python.

The API functions must not import numpy (hence not shapely), yet they must refuse a broken ROI with the
reason before anything starts. Rings are checked for closure, size, coordinate range, zero area and
self-intersection with a sweep over segments sorted by x, so ordinary polygons cost about n log n.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from itertools import pairwise

Position = Sequence[float]
Ring = Sequence[Position]
PolygonCoords = Sequence[Ring]
Bounds = tuple[float, float, float, float]
_Segment = tuple[float, float, float, float]


class GeometryProblem(ValueError):
    """A geometry is invalid; the message says where (ring and vertex) and why."""


def validate_polygon(rings: PolygonCoords, max_vertices: int = 100_000) -> None:
    """Raise :class:`GeometryProblem` unless ``rings`` is a valid simple polygon (shell + holes)."""
    validate_structure(rings, max_vertices)
    problem = topology_problem(rings)
    if problem:
        raise GeometryProblem(problem)


def validate_structure(rings: PolygonCoords, max_vertices: int = 100_000) -> None:
    """What no repair can fix: rings too short, open, or with positions off the globe."""
    if len(rings) == 0:
        raise GeometryProblem("a polygon needs at least one ring")
    total = 0
    for index, ring in enumerate(rings):
        _validate_ring(ring, index)
        total += len(ring)
        if total > max_vertices:
            raise GeometryProblem(f"too many vertices (more than {max_vertices})")


def topology_problem(rings: PolygonCoords) -> str | None:
    """Why a structurally sound polygon is not simple (GEOS' make_valid can repair these), or None."""
    try:
        _check_no_crossings([_ring_segments(ring) for ring in rings])
    except GeometryProblem as problem:
        return str(problem)
    for index, ring in enumerate(rings):
        if ring_area(ring) == 0.0:
            return f"{_ring_name(index)} has zero area"
    shell = rings[0]
    for index, hole in enumerate(rings[1:], start=1):
        if not point_in_ring(hole[0], shell):
            return f"ring {index} (a hole) lies outside the outer ring"
    return None


def _ring_name(index: int) -> str:
    return "outer ring" if index == 0 else f"ring {index}"


def _validate_ring(ring: Ring, index: int) -> None:
    name = _ring_name(index)
    if len(ring) < 4:
        raise GeometryProblem(f"{name} has {len(ring)} positions; a closed ring needs at least 4")
    for vertex, position in enumerate(ring):
        if len(position) < 2:
            raise GeometryProblem(f"{name} position {vertex} needs longitude and latitude")
        lon, lat = position[0], position[1]
        if not -180.0 <= lon <= 180.0:
            raise GeometryProblem(f"{name} position {vertex}: longitude {lon} is outside -180..180")
        if not -90.0 <= lat <= 90.0:
            raise GeometryProblem(f"{name} position {vertex}: latitude {lat} is outside -90..90")
    if tuple(ring[0][:2]) != tuple(ring[-1][:2]):
        raise GeometryProblem(f"{name} is open: its first and last positions differ")


def ring_area(ring: Ring) -> float:
    """Signed shoelace area (positive when counter-clockwise)."""
    area = 0.0
    for (x1, y1, *_), (x2, y2, *_) in pairwise(ring):
        area += x1 * y2 - x2 * y1
    return area / 2.0


def _ring_segments(ring: Ring) -> list[_Segment]:
    segments: list[_Segment] = []
    for a, b in pairwise(ring):
        if (a[0], a[1]) != (b[0], b[1]):  # repeated positions are allowed, they add no segment
            segments.append((a[0], a[1], b[0], b[1]))
    return segments


def _check_no_crossings(rings: list[list[_Segment]]) -> None:
    """Sweep all segments by min x; any two that touch must be neighbours on the same ring."""
    items: list[tuple[float, float, int, int, _Segment]] = []
    for r, segs in enumerate(rings):
        for i, s in enumerate(segs):
            items.append((min(s[0], s[2]), max(s[0], s[2]), r, i, s))
    items.sort(key=lambda item: item[0])
    active: list[tuple[float, float, int, int, _Segment]] = []
    for item in items:
        minx = item[0]
        active = [a for a in active if a[1] >= minx]
        for other in active:
            if _adjacent(item, other, rings) and not _overlapping(item[4], other[4]):
                continue
            if segments_intersect(item[4], other[4]):
                ring_a, ring_b = item[2], other[2]
                where = _ring_name(ring_a) if ring_a == ring_b else f"rings {ring_b} and {ring_a}"
                kind = "self-intersects" if ring_a == ring_b else "cross"
                raise GeometryProblem(f"{where} {kind} near ({item[4][0]:.6f}, {item[4][1]:.6f})")
        active.append(item)


def _adjacent(
    a: tuple[float, float, int, int, _Segment],
    b: tuple[float, float, int, int, _Segment],
    rings: list[list[_Segment]],
) -> bool:
    if a[2] != b[2]:
        return False
    n = len(rings[a[2]])
    return abs(a[3] - b[3]) == 1 or abs(a[3] - b[3]) == n - 1


def _overlapping(s: _Segment, t: _Segment) -> bool:
    """Neighbouring segments that fold back over each other (a spike) are collinear and overlap."""
    if _orient(s[0], s[1], s[2], s[3], t[0], t[1]) != 0 or _orient(s[0], s[1], s[2], s[3], t[2], t[3]) != 0:
        return False
    # Shared endpoint; overlap when the other endpoints lie on the same side of it.
    shared = {(s[0], s[1]), (s[2], s[3])} & {(t[0], t[1]), (t[2], t[3])}
    if not shared:
        return True
    px, py = next(iter(shared))
    sx, sy = (s[2], s[3]) if (s[0], s[1]) == (px, py) else (s[0], s[1])
    tx, ty = (t[2], t[3]) if (t[0], t[1]) == (px, py) else (t[0], t[1])
    return (sx - px) * (tx - px) + (sy - py) * (ty - py) > 0


def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> int:
    value = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    return (value > 0) - (value < 0)


def _on_segment(ax: float, ay: float, bx: float, by: float, px: float, py: float) -> bool:
    return min(ax, bx) <= px <= max(ax, bx) and min(ay, by) <= py <= max(ay, by)


def segments_intersect(s: _Segment, t: _Segment) -> bool:
    """True when the closed segments s and t share at least one point."""
    ax, ay, bx, by = s
    cx, cy, dx, dy = t
    o1 = _orient(ax, ay, bx, by, cx, cy)
    o2 = _orient(ax, ay, bx, by, dx, dy)
    o3 = _orient(cx, cy, dx, dy, ax, ay)
    o4 = _orient(cx, cy, dx, dy, bx, by)
    if o1 != o2 and o3 != o4:
        return True
    return (
        (o1 == 0 and _on_segment(ax, ay, bx, by, cx, cy))
        or (o2 == 0 and _on_segment(ax, ay, bx, by, dx, dy))
        or (o3 == 0 and _on_segment(cx, cy, dx, dy, ax, ay))
        or (o4 == 0 and _on_segment(cx, cy, dx, dy, bx, by))
    )


def point_in_ring(point: Position, ring: Ring) -> bool:
    """Even-odd ray casting; points on the boundary count as inside."""
    px, py = point[0], point[1]
    inside = False
    for (x1, y1, *_), (x2, y2, *_) in pairwise(ring):
        if _orient(x1, y1, x2, y2, px, py) == 0 and _on_segment(x1, y1, x2, y2, px, py):
            return True
        if (y1 > py) != (y2 > py):
            x_cross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
            if px < x_cross:
                inside = not inside
    return inside


def point_in_polygon(point: Position, rings: PolygonCoords) -> bool:
    if not point_in_ring(point, rings[0]):
        return False
    return not any(point_in_ring(point, hole) and not _on_ring(point, hole) for hole in rings[1:])


def _on_ring(point: Position, ring: Ring) -> bool:
    px, py = point[0], point[1]
    return any(
        _orient(x1, y1, x2, y2, px, py) == 0 and _on_segment(x1, y1, x2, y2, px, py)
        for (x1, y1, *_), (x2, y2, *_) in pairwise(ring)
    )


def bounds_of(polygons: Iterable[PolygonCoords]) -> Bounds:
    xs: list[float] = []
    ys: list[float] = []
    for rings in polygons:
        for position in rings[0]:
            xs.append(position[0])
            ys.append(position[1])
    if not xs:
        raise GeometryProblem("empty geometry")
    return min(xs), min(ys), max(xs), max(ys)


def polygons_intersect(a: PolygonCoords, b: PolygonCoords) -> bool:
    """True when two valid polygons share interior or boundary points."""
    ax0, ay0, ax1, ay1 = bounds_of([a])
    bx0, by0, bx1, by1 = bounds_of([b])
    if ax1 < bx0 or bx1 < ax0 or ay1 < by0 or by1 < ay0:
        return False
    segs_a = [s for ring in a for s in _ring_segments(ring)]
    segs_b = [s for ring in b for s in _ring_segments(ring)]
    segs_b.sort(key=lambda s: min(s[0], s[2]))
    for s in segs_a:
        lo, hi = min(s[0], s[2]), max(s[0], s[2])
        for t in segs_b:
            if min(t[0], t[2]) > hi:
                break
            if max(t[0], t[2]) >= lo and segments_intersect(s, t):
                return True
    return point_in_polygon(a[0][0], b) or point_in_polygon(b[0][0], a)


def polygon_parts(geometry: dict[str, object]) -> list[PolygonCoords]:
    """The polygons of a GeoJSON Polygon or MultiPolygon mapping."""
    kind = geometry.get("type")
    coords = geometry.get("coordinates")
    if kind == "Polygon":
        return [coords]  # type: ignore[list-item]
    if kind == "MultiPolygon":
        return list(coords)  # type: ignore[call-overload,no-any-return]
    raise GeometryProblem(f"expected Polygon or MultiPolygon, got {kind}")


def geometries_intersect(a: dict[str, object], b: dict[str, object]) -> bool:
    return any(polygons_intersect(p, q) for p in polygon_parts(a) for q in polygon_parts(b))


def antimeridian_crossing(geometry: dict[str, object]) -> str | None:
    """Why a polygon is read wrongly as planar: an edge that jumps more than 180 degrees of longitude means
    a ring drawn across the antimeridian (RFC 7946 3.1.9 asks for such rings to be split at +-180)."""
    for polygon in polygon_parts(geometry):
        for index, ring in enumerate(polygon):
            for start, end in itertools.pairwise(ring):
                on_edge = min(abs(float(start[0])), abs(float(end[0]))) >= 180 - 1e-6  # along +-180 (a pole)
                if abs(float(end[0]) - float(start[0])) > 180 and not on_edge:
                    return (
                        f"{_ring_name(index)} crosses the antimeridian between longitudes {start[0]} and "
                        f"{end[0]}: split it at +-180 into a MultiPolygon (RFC 7946 section 3.1.9), or it "
                        "would be read as spanning the other side of the world"
                    )
    return None
