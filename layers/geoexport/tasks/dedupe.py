"""When is a new export request the same as an earlier one?

Exact rule (default): a canonical fingerprint of what determines the output bytes: record and version,
domain, CRS, format, and per ROI feature its zoom range and its geometry snapped to the pixel grid of its
max zoom (sub-pixel differences cannot change the output). Rings are normalised (orientation, starting
vertex) and features sorted, so the same area sent differently matches. Zoom is part of the key
(MapColonies bug #115 returned a cached export at the wrong zoom).

Containment rule (opt-in, ``parameters.dedupe = "containment"``, MapColonies' looser rule): every new feature
lies inside an earlier feature of the same zoom range buffered by 5 m, and covers at least 80 % of its area.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from geoexport.geometry import grid, planar
from geoexport.models.geojson import RoiFeature
from geoexport.models.tasks import CreateExportTaskRequest, ExportFormat

CONTAINMENT_BUFFER_M = 5.0
CONTAINMENT_MIN_COVER = 0.8
METERS_PER_DEGREE = 111_320.0


def _canonical_ring(ring: planar.Ring, res: float, outer: bool) -> list[tuple[int, int]]:
    points: list[tuple[int, int]] = []
    for position in ring[:-1]:
        point = (round((position[0] + 180.0) / res), round((90.0 - position[1]) / res))
        if not points or points[-1] != point:
            points.append(point)
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    # Grid y grows downwards, so a counter-clockwise ring in lon/lat has negative area here.
    area = sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in pairwise([*points, points[0]])) if points else 0
    if (area > 0) == outer:
        points.reverse()
    start = points.index(min(points)) if points else 0
    return points[start:] + points[:start]


def feature_key(feature: RoiFeature, exact_resolution: bool = False) -> dict[str, Any]:
    res = grid.resolution(feature.properties.max_zoom)
    parts = []
    for polygon in planar.polygon_parts(feature.geometry_mapping()):
        rings = [_canonical_ring(ring, res, index == 0) for index, ring in enumerate(polygon)]
        parts.append([rings[0], *sorted(rings[1:])])
    key: dict[str, Any] = {
        "zooms": [feature.properties.min_zoom, feature.properties.max_zoom],
        "parts": sorted(parts),
    }
    if exact_resolution:  # a GeoTIFF has the requested pixel size, not the zoom's
        key["resolution"] = feature.properties.resolution
    return key


def _digest(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _base(request: CreateExportTaskRequest, record_version: str) -> dict[str, Any]:
    """What, besides the area, makes two requests the same export (with their transports, if any: a
    request that also sends the export somewhere is not answered by one that did not)."""
    transports = {"transports": [t.model_dump(mode="json") for t in request.transports]}
    return (transports if request.transports else {}) | {
        "record": str(request.catalogRecordID),
        "version": record_version,
        "domain": request.domain.value,
        "crs": request.artifactCRS,
        "format": request.format.value,
        "packer": request.packer.value,
        "maxPartSize": request.maxPartSize,
    }


def fingerprint(request: CreateExportTaskRequest, record_version: str) -> str:
    exact = request.format is ExportFormat.GTIFF
    features = sorted((feature_key(f, exact) for f in request.roi_features()), key=json.dumps)
    return _digest({**_base(request, record_version), "features": features})


def scope(request: CreateExportTaskRequest, record_version: str) -> str:
    """Everything but the geometry: the candidates the containment rule compares against."""
    zooms = sorted([f.properties.min_zoom, f.properties.max_zoom] for f in request.roi_features())
    return _digest({**_base(request, record_version), "zooms": zooms})


# -- containment --------------------------------------------------------------------------------------------
def _area_m2(rings: planar.PolygonCoords) -> float:
    lat = sum(p[1] for p in rings[0]) / len(rings[0])
    scale = METERS_PER_DEGREE**2 * math.cos(math.radians(lat))
    return (abs(planar.ring_area(rings[0])) - sum(abs(planar.ring_area(h)) for h in rings[1:])) * scale


def _distance_m(px: float, py: float, segment: tuple[float, float, float, float]) -> float:
    ax, ay, bx, by = segment
    kx = math.cos(math.radians(py)) * METERS_PER_DEGREE
    ky = METERS_PER_DEGREE
    ax, bx, qx = (ax - px) * kx, (bx - px) * kx, 0.0
    ay, by, qy = (ay - py) * ky, (by - py) * ky, 0.0
    dx, dy = bx - ax, by - ay
    length = dx * dx + dy * dy
    t = 0.0 if length == 0 else max(0.0, min(1.0, ((qx - ax) * dx + (qy - ay) * dy) / length))
    return math.hypot(ax + t * dx - qx, ay + t * dy - qy)


def _within_buffer(inner: planar.PolygonCoords, outer: planar.PolygonCoords, meters: float) -> bool:
    """Every point of ``inner``'s outline lies in ``outer`` or within ``meters`` of its outline."""
    edges = [(a[0], a[1], b[0], b[1]) for ring in outer for a, b in pairwise(ring)]
    step_deg = meters / METERS_PER_DEGREE / 2
    for a, b in pairwise(inner[0]):
        length = math.hypot(b[0] - a[0], b[1] - a[1])
        samples = max(1, min(4000, math.ceil(length / step_deg)))
        for k in range(samples + 1):
            t = k / samples
            x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
            if planar.point_in_polygon((x, y), outer):
                continue
            if min(_distance_m(x, y, edge) for edge in edges) > meters:
                return False
    return True


def contained(new: Sequence[RoiFeature], old: Sequence[RoiFeature]) -> bool:
    """MapColonies' rule, per feature: inside an old feature of the same zooms (+5 m), >= 80 % of its area."""
    for feature in new:
        zooms = (feature.properties.min_zoom, feature.properties.max_zoom)
        parts = planar.polygon_parts(feature.geometry_mapping())
        matched = False
        for candidate in old:
            if (candidate.properties.min_zoom, candidate.properties.max_zoom) != zooms:
                continue
            old_parts = planar.polygon_parts(candidate.geometry_mapping())
            old_area = sum(_area_m2(p) for p in old_parts)
            new_area = sum(_area_m2(p) for p in parts)
            inside = all(any(_within_buffer(p, q, CONTAINMENT_BUFFER_M) for q in old_parts) for p in parts)
            if inside and new_area >= CONTAINMENT_MIN_COVER * old_area:
                matched = True
                break
        if not matched:
            return False
    return True
