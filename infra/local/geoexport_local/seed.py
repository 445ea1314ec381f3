"""The sample catalog: the project's sample rasters, as Cloud Optimized GeoTIFFs in the sources bucket."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from geoexport.catalog.ingest import describe_record
from geoexport.catalog.repository import CatalogRepository
from geoexport.models.catalog import CatalogRecord, SourceLocation
from geoexport.raster.source import to_cog

NAMESPACE = uuid.UUID("9f1c5a52-3a34-4c1b-9a4e-2d1f3b0c6e10")


@dataclass(frozen=True)
class Sample:
    file: str
    name: str
    description: str
    as_cog: bool = True
    heights: str | None = None  # a DEM: the unit of its heights


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
    Sample(
        "jacksboro-dem.tif",
        "jacksboro-dem",
        "Elevation around the Jacksboro fault, Tennessee: int16 heights in metres, 3 arc-seconds, EPSG:4326 "
        "(USGS data, from matplotlib's sample data)",
        heights="metre",
    ),
    # A real broken input: the header opens, pixel reads fail. Uploaded as is, to show the failure path.
    Sample(
        "corrupt.tif",
        "corrupt-sample",
        "A GeoTIFF whose header opens but whose pixels cannot be read (rasterio test data)",
        as_cog=False,
    ),
)


def record_id(name: str) -> uuid.UUID:
    """Stable ids, so the README's examples work on every machine."""
    return uuid.uuid5(NAMESPACE, name)


def seed_catalog(data_dir: Path, s3: Any, bucket: str, catalog: CatalogRepository) -> list[CatalogRecord]:
    records = []
    with tempfile.TemporaryDirectory(prefix="geoexport-seed-") as work:
        for sample in SAMPLES:
            kept = _kept(s3, catalog, sample)
            if kept is not None:  # seeded by an earlier run on the same data directory
                records.append(kept)
                continue
            source = data_dir / sample.file
            upload = source
            if sample.as_cog:
                upload = Path(work) / f"{sample.name}.tif"
                to_cog(source, upload)
            key = f"samples/{sample.name}.tif"
            s3.upload_file(str(upload), bucket, key)
            record = describe_record(
                str(upload),
                record_id(sample.name),
                sample.name,
                SourceLocation(bucket=bucket, key=key),
                sample.description,
                height_unit=sample.heights,
            )
            catalog.put(record)
            records.append(record)
    return records


def _kept(s3: Any, catalog: CatalogRepository, sample: Sample) -> CatalogRecord | None:
    try:
        record = catalog.get(record_id(sample.name))
        s3.head_object(Bucket=record.source.bucket, Key=record.source.key)
    except Exception:
        return None
    return record


__all__ = ["SAMPLES", "record_id", "seed_catalog"]
