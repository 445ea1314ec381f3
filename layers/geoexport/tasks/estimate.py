"""Size and time estimates of an export, before anything runs (pure Python: the API computes them).

Tiles: exact counts per zoom of the tiles each level's features cover, within the record's footprint
(:mod:`geoexport.geometry.coverage`). Bytes: each tile costs at least a nearly empty PNG; on top, its share
of the bytes per tile measured on this record at that zoom when it was registered, by how much of what that
sample showed (the footprint within the counted tiles) the features cover, inflated for partly visible
tiles; plus the GeoPackage's own overhead and the metadata file. (Counting every tile as a full sample put
a tiny ROI's estimate at 3.5x what was delivered; tests/integration/test_tiny_rois.py measures it.) Seconds: a
fixed start-up cost plus the tiles times the measured render time per tile; a GeoPackage big enough to fan out
(:mod:`geoexport.pipeline.items`) renders its work items side by side, then merges them.
"""

from __future__ import annotations

from pydantic import BaseModel

from geoexport.geometry import coverage, grid, planar
from geoexport.models.catalog import CatalogRecord
from geoexport.models.geojson import RoiFeature
from geoexport.models.tasks import CreateExportTaskRequest, ExportFormat
from geoexport.pipeline.items import FanOut, count_items

GPKG_OVERHEAD_BYTES = 64 * 1024  # schema pages and the tile index (a 9-tile GeoPackage is 72 KiB)
EDGE_TILE_BYTES = 900.0  # a PNG tile with only a few visible pixels: what a tile costs whatever it shows
#: A partly visible tile costs more than its share of a full one (RGBA instead of RGB, edges compress worse):
#: measured on the sample records, a tile a quarter covered is ~60 % of a full one.
PARTIAL_TILE_FACTOR = 2.5
GPKG_BYTES_FACTOR = 1.03  # sqlite page slack around the tile blobs
METADATA_BYTES = 4 * 1024
STARTUP_SECONDS = 3.0  # three Lambda hand-offs, the plan, uploads
MERGE_SECONDS_PER_TILE = (
    0.0005  # a fanned-out export's merge: download a part, copy its rows (measured ~0.2 ms)
)


class Estimate(BaseModel):
    tilesPerZoom: dict[int, int]
    tiles: int
    bytes: int
    seconds: float
    workItems: int = 0  # a big GeoPackage's work items, rendered in parallel (0: one Package invocation)
    renderSeconds: float = 0.0  # the longest single invocation: the whole render, or one work item's


def area(geometry: dict[str, object]) -> float:
    """Planar square degrees of a (multi)polygon, holes removed."""
    return sum(
        abs(planar.ring_area(rings[0])) - sum(abs(planar.ring_area(ring)) for ring in rings[1:])
        for rings in planar.polygon_parts(geometry)
    )


def covered_area(features: list[RoiFeature], zoom: int) -> float:
    """Square degrees the features active at ``zoom`` cover (overlaps counted twice: the caller caps)."""
    return sum(
        area(f.geometry_mapping()) for f in features if f.properties.min_zoom <= zoom <= f.properties.max_zoom
    )


def estimate(
    request: CreateExportTaskRequest, record: CatalogRecord, fanout: FanOut | None = None
) -> Estimate:
    features = request.roi_features()  # defaults are applied before estimating
    max_zoom = max(f.properties.max_zoom for f in features)
    per_zoom: dict[int, int] = {}
    tile_bytes = 0.0
    render_seconds = 0.0
    footprint = area(record.footprint)
    for zoom in range(max_zoom + 1):
        parts = [
            coverage.geometry_rows(f.geometry_mapping(), zoom)
            for f in features
            if f.properties.min_zoom <= zoom <= f.properties.max_zoom
        ]
        if not parts:
            continue
        rows = coverage.intersect(coverage.union(parts), coverage.geometry_rows(record.footprint, zoom))
        tiles = coverage.count(rows)
        if tiles == 0:
            continue
        per_zoom[zoom] = tiles
        size, render = record.tile_cost(zoom)
        side = grid.resolution(zoom) * grid.TILE_SIZE
        shown = min(tiles * side * side, footprint) or tiles * side * side  # what the samples showed
        share = min(1.0, PARTIAL_TILE_FACTOR * covered_area(features, zoom) / shown)
        tile_bytes += tiles * (min(size, EDGE_TILE_BYTES) + share * max(0.0, size - EDGE_TILE_BYTES))
        render_seconds += tiles * render
    total = int(tile_bytes * GPKG_BYTES_FACTOR) + GPKG_OVERHEAD_BYTES + METADATA_BYTES
    fanout = fanout or FanOut()
    tiles = sum(per_zoom.values())
    items = (
        count_items(per_zoom, fanout.tiles, fanout.item_tiles) if request.format is ExportFormat.GPKG else 0
    )
    if items:  # items run side by side, then one merge copies every tile
        longest = render_seconds * fanout.item_tiles / tiles
        seconds = (
            STARTUP_SECONDS + render_seconds / min(items, fanout.concurrency) + tiles * MERGE_SECONDS_PER_TILE
        )
    else:
        longest = render_seconds
        seconds = STARTUP_SECONDS + render_seconds
    return Estimate(
        tilesPerZoom=per_zoom,
        tiles=tiles,
        bytes=total,
        seconds=round(seconds, 1),
        workItems=items,
        renderSeconds=round(longest, 1),
    )
