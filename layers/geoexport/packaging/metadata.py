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


def gpkg_details(plan: Any, tiles_per_zoom: dict[int, int], zooms: list[int] | None = None) -> dict[str, Any]:
    """Tiled GeoPackage details: every zoom of the plan's levels, or ``zooms`` when given (a DEM)."""
    levels = zooms if zooms is not None else [level.zoom for level in plan.levels]
    return {
        "format": "GPKG",
        "crs": "EPSG:4326",
        "tilingScheme": "WorldCRS84Quad",
        "tileFormat": "image/png",
        "tileSize": grid.TILE_SIZE,
        "minZoom": min(levels),
        "maxZoom": plan.maxZoom,
        "maxResolutionDeg": grid.resolution(plan.maxZoom),
        "zoomLevels": [
            {"zoom": zoom, "resolutionDeg": grid.resolution(zoom), "tiles": tiles_per_zoom.get(zoom, 0)}
            for zoom in levels
        ],
    }


def cog_details(plan: Any, result: Any) -> dict[str, Any]:
    return {
        "format": "GTiff",
        "profile": "Cloud Optimized GeoTIFF",
        "crs": f"EPSG:{result.crs}",
        "width": result.width,
        "height": result.height,
        "pixelSize": [result.transform.a, -result.transform.e],
        "bounds": list(result.bounds),
        "nodata": result.nodata,
        "alphaBand": result.alpha,
        "maxResolutionDeg": plan.resolutionDeg,
        "bands": [
            {"band": i, "min": s.minimum, "max": s.maximum, "mean": s.mean, "stddev": s.stddev}
            for i, s in enumerate(result.stats, start=1)
        ],
    }


def build_metadata(
    *,
    plan: Any,
    files: list[dict[str, Any]],
    contents: list[dict[str, Any]],
    details: dict[str, Any],
    created_at: datetime,
) -> dict[str, Any]:
    """Record id, exported footprint, ROI, format details, the files delivered (parts, when packed, with
    what each holds), CRS, checksums, time, description. The first data file keeps seed 000's top-level
    ``fileName``/``fileSize``/``sha256`` (null when there is none: an incremental export with nothing
    changed delivers its metadata alone)."""
    data = next((f for f in files if f["type"] not in ("SIDECAR",)), files[0] if files else {})
    return {
        "jobId": plan.taskId,
        "recordCatalogId": plan.recordId,
        "productName": plan.recordName,
        "productVersion": plan.productVersion,
        "description": plan.description,
        **details,
        "fileName": data.get("name"),
        "fileSize": data.get("size"),
        "sha256": data.get("sha256"),
        "packer": plan.packer,
        "files": files,
        "contents": contents,
        "sourceResolutionDeg": plan.sourceResolutionDeg,
        "footprint": plan.footprint,
        "bbox": plan.bounds,
        "roi": plan.roi,
        "createdAt": created_at.isoformat(),
    }
