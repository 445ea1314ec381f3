"""The sample catalog: the project's sample rasters, as Cloud Optimized GeoTIFFs in the sources bucket."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoexport.catalog.repository import CatalogRepository
from geoexport.errors import SourceUnreadable, UnsupportedSource
from geoexport.models.catalog import CatalogRecord, SourceLocation
from geoexport.raster.source import describe, to_cog

NAMESPACE = uuid.UUID("9f1c5a52-3a34-4c1b-9a4e-2d1f3b0c6e10")


@dataclass(frozen=True)
class Sample:
    file: str
    name: str
    description: str
    as_cog: bool = True


SAMPLES = (
    Sample(
        "RGB.byte.tif",
        "landsat-bahamas-rgb",
        "Landsat 7 RGB subset over the Bahamas, 300 m, UTM 18N (rasterio test data, USGS public domain)",
    ),
    Sample(
        "shade.tif",
        "colorado-hillshade",
        "Hillshade over Colorado, 9.55 m, Web Mercator (rasterio test data)",
    ),
    Sample(
        "world.rgb.tif", "world-rgb", "Whole-world RGB image at 0.703125 deg, EPSG:4326 (rasterio test data)"
    ),
    # A real broken input: the header opens, pixel reads fail. Uploaded as is, to show the failure path.
    Sample(
        "corrupt.tif",
        "corrupt-sample",
        "A GeoTIFF whose header opens but whose pixels cannot be read (rasterio test data)",
        as_cog=False,
    ),
)


def measure_tile_costs(
    path: str, footprint: dict[str, Any], resolution_deg: float
) -> dict[int, tuple[float, float]]:
    """Bytes and seconds per tile at every zoom up to the source's own (nothing for unreadable sources)."""
    from shapely.geometry import shape

    from geoexport.geometry import grid
    from geoexport.raster.render import inspect_bands, sample_costs

    try:
        bands = inspect_bands(path, resolution_deg)
        zooms = range(grid.zoom_for_resolution(resolution_deg) + 1)
        return sample_costs(path, bands, shape(footprint), zooms, {})
    except (SourceUnreadable, UnsupportedSource):
        return {}


def record_id(name: str) -> uuid.UUID:
    """Stable ids, so the README's examples work on every machine."""
    return uuid.uuid5(NAMESPACE, name)


def seed_catalog(data_dir: Path, s3: Any, bucket: str, catalog: CatalogRepository) -> list[CatalogRecord]:
    records = []
    with tempfile.TemporaryDirectory(prefix="geoexport-seed-") as work:
        for sample in SAMPLES:
            source = data_dir / sample.file
            upload = source
            if sample.as_cog:
                upload = Path(work) / f"{sample.name}.tif"
                to_cog(source, upload)
            info = describe(str(upload))
            costs = measure_tile_costs(str(upload), info.footprint, info.resolution_deg)
            key = f"samples/{sample.name}.tif"
            s3.upload_file(str(upload), bucket, key)
            record = CatalogRecord(
                id=record_id(sample.name),
                name=sample.name,
                description=sample.description,
                footprint=info.footprint,
                maxResolutionDeg=info.resolution_deg,
                crs=info.crs,
                bands=info.bands,
                dtype=info.dtype,
                nodata=info.nodata,
                width=info.width,
                height=info.height,
                source=SourceLocation(bucket=bucket, key=key),
                tileBytesByZoom={zoom: cost[0] for zoom, cost in costs.items()},
                tileSecondsByZoom={zoom: cost[1] for zoom, cost in costs.items()},
            )
            catalog.put(record)
            records.append(record)
    return records


__all__ = ["SAMPLES", "SourceUnreadable", "record_id", "seed_catalog"]
