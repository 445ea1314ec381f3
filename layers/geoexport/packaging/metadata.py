"""The metadata JSON that travels beside each GeoPackage, and file checksums."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from geoexport.geometry import grid


def sha256_file(path: Path, chunk: int = 4 * 1024 * 1024) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def build_metadata(
    *,
    plan: Any,
    file_name: str,
    file_size: int,
    sha256: str,
    tiles_per_zoom: dict[int, int],
    created_at: datetime,
) -> dict[str, Any]:
    """Record id, exported footprint, ROI, resolution and zooms, CRS, size, checksum, time, description."""
    return {
        "jobId": plan.taskId,
        "recordCatalogId": plan.recordId,
        "productName": plan.recordName,
        "productVersion": plan.productVersion,
        "description": plan.description,
        "format": "GPKG",
        "fileName": file_name,
        "fileSize": file_size,
        "sha256": sha256,
        "crs": "EPSG:4326",
        "tilingScheme": "WorldCRS84Quad",
        "tileFormat": "image/png",
        "tileSize": grid.TILE_SIZE,
        "minZoom": min(level.zoom for level in plan.levels),
        "maxZoom": plan.maxZoom,
        "maxResolutionDeg": grid.resolution(plan.maxZoom),
        "sourceResolutionDeg": plan.sourceResolutionDeg,
        "zoomLevels": [
            {
                "zoom": level.zoom,
                "resolutionDeg": grid.resolution(level.zoom),
                "tiles": tiles_per_zoom.get(level.zoom, 0),
            }
            for level in plan.levels
        ],
        "footprint": plan.footprint,
        "bbox": plan.bounds,
        "roi": plan.roi,
        "createdAt": created_at.isoformat(),
    }
