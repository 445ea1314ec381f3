"""Size and time estimates of an export, before anything runs (pure Python: the API computes them).

Tiles: exact counts per zoom of the tiles each level's features cover, within the record's footprint
(:mod:`geoexport.geometry.coverage`). Bytes: those counts times the bytes per tile measured on this record
at that zoom when it was registered, plus the GeoPackage's own overhead and the metadata file. Seconds: a
fixed start-up cost plus the tiles times the measured render time per tile.
"""

from __future__ import annotations

from pydantic import BaseModel

from geoexport.geometry import coverage
from geoexport.models.catalog import CatalogRecord
from geoexport.models.tasks import CreateExportTaskRequest

GPKG_OVERHEAD_BYTES = 96 * 1024  # schema pages and the tile index
GPKG_BYTES_FACTOR = 1.03  # sqlite page slack around the tile blobs
METADATA_BYTES = 4 * 1024
STARTUP_SECONDS = 3.0  # three Lambda hand-offs, the plan, uploads


class Estimate(BaseModel):
    tilesPerZoom: dict[int, int]
    tiles: int
    bytes: int
    seconds: float


def estimate(request: CreateExportTaskRequest, record: CatalogRecord) -> Estimate:
    features = request.roi_features()  # defaults are applied before estimating
    max_zoom = max(f.properties.max_zoom for f in features)
    per_zoom: dict[int, int] = {}
    tile_bytes = 0.0
    seconds = STARTUP_SECONDS
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
        tile_bytes += tiles * size
        seconds += tiles * render
    total = int(tile_bytes * GPKG_BYTES_FACTOR) + GPKG_OVERHEAD_BYTES + METADATA_BYTES
    return Estimate(
        tilesPerZoom=per_zoom, tiles=sum(per_zoom.values()), bytes=total, seconds=round(seconds, 1)
    )
