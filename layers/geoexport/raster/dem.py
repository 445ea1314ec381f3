"""DEM exports: heights as a GeoPackage 2D gridded coverage in the raster exports' WorldCRS84Quad grid.

The encoding is chosen deliberately: GDAL's GPKG driver writes float32 heights as **TIFF tiles** (the
extension's other encoding is 16-bit PNG with a per-tile scale and offset). TIFF keeps every float32 height
and the nodata value exactly, with no quantisation step to state or get wrong, and any GDAL reads it back;
PNG would be about 1.6x smaller for the sample and quantise heights to its scale. Both are in the OGC
extension, so readers that support one support the other.

The finest zoom is warped once (bilinear: a height field is continuous) onto the tile grid of that zoom,
clipped to the exported footprint (outside: nodata), and written into GDAL's tiles as is (the grid is the
tile matrix's); the lower zooms are GDAL overviews, averaged over valid heights. Every
zoom from the coarsest asked to the finest covers the whole exported footprint (the raster GPKG's per-
feature zoom ranges are not applied to heights).
"""

from __future__ import annotations

import math
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import rasterio
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import Affine
from rasterio.windows import Window
from shapely.geometry import mapping, shape

from geoexport.errors import UnprocessableRequest
from geoexport.geometry import grid
from geoexport.raster.cog import HEIGHT_NODATA, BandStats, band_statistics, stage

#: GDAL's name for the tile matrix set whose geometry is WorldCRS84Quad (2 x 1 tiles of 256 px at zoom 0).
TILING_SCHEME = "InspireCRS84Quad"
ENCODING = "float32 TIFF tiles (GeoPackage 2D gridded coverage extension), scale 1, offset 0"
PRECISION = (
    "heights are float32: exact for the source's integer heights; each exported height is the bilinear "
    "interpolation of the source at the pixel centre (the finest zoom), lower zooms average valid heights"
)


@dataclass
class DemResult:
    path: Path
    table: str
    zooms: list[int]
    tiles_per_zoom: dict[int, int]
    stats: BandStats


def render_gpkg(
    source: str,
    footprint: dict[str, Any],
    min_zoom: int,
    max_zoom: int,
    table: str,
    unit: str | None,
    target: Path,
    threads: int = 1,
) -> DemResult:
    """Write the heights of ``source`` inside ``footprint`` (EPSG:4326) at zooms ``min_zoom..max_zoom``."""
    region = shape(footprint)
    tiles = grid.tile_range(region.bounds, max_zoom)
    left, _, _, top = grid.tile_bounds(max_zoom, tiles.min_col, tiles.min_row)
    res = grid.resolution(max_zoom)
    width = (tiles.max_col - tiles.min_col + 1) * grid.TILE_SIZE
    height = (tiles.max_row - tiles.min_row + 1) * grid.TILE_SIZE
    with tempfile.TemporaryDirectory(prefix="geoexport-dem-") as workdir:
        staged = Path(workdir) / "heights.tif"
        stage(
            source,
            mapping(region),
            CRS.from_epsg(4326),
            Affine(res, 0, left, 0, -res, top),
            width,
            height,
            staged,
            max(1, threads),
            heights=True,
        )
        stats = band_statistics(staged, alpha=False)[0]
        if stats.valid_percent == 0:
            raise UnprocessableRequest("the ROI covers only nodata heights of the source; nothing to export")
        _tile(staged, target, table, unit, max_zoom - min_zoom)
    _describe_coverage(target, table, unit)
    return DemResult(target, table, list(range(min_zoom, max_zoom + 1)), tile_counts(target, table), stats)


def _tile(staged: Path, target: Path, table: str, unit: str | None, overviews: int) -> None:
    """Write the staged heights into the GeoPackage tile by tile row, then the lower zooms as overviews.

    The dataset is created (not copied) so that its nodata is known before any tile is written: tile
    statistics and the averaged overviews leave nodata out. (rasterio upper-cases CreateCopy's options,
    which would rename the table and the unit.)"""
    with rasterio.open(staged) as src:
        profile = {
            "driver": "GPKG",
            "width": src.width,
            "height": src.height,
            "count": 1,
            "dtype": "float32",
            "crs": src.crs,
            "transform": src.transform,
            "nodata": HEIGHT_NODATA,
        }
        options = {
            "RASTER_TABLE": table,
            "TILING_SCHEME": TILING_SCHEME,
            "TILE_FORMAT": "TIFF",
            "FIELD_NAME": "Height",
            "QUANTITY_DEFINITION": "Height",
            **({"UOM": unit} if unit else {}),
        }
        with rasterio.open(target, "w", **profile, **options) as gpkg:
            for row in range(0, src.height, grid.TILE_SIZE):
                window = Window(0, row, src.width, min(grid.TILE_SIZE, src.height - row))
                gpkg.write(src.read(1, window=window), 1, window=window)
            if overviews:
                gpkg.build_overviews([2**k for k in range(1, overviews + 1)], Resampling.average)


def _describe_coverage(path: Path, table: str, unit: str | None) -> None:
    """Store nodata (and the unit) in the extension's ancillary table: GDAL 3.10 leaves ``data_null`` empty
    for float32 TIFF tiles, and readers (GDAL included) take the coverage's nodata from there."""
    with sqlite3.connect(path) as db:
        db.execute(
            "UPDATE gpkg_2d_gridded_coverage_ancillary SET data_null = ? WHERE tile_matrix_set_name = ?",
            (HEIGHT_NODATA, table),
        )
        if unit:
            db.execute(
                "UPDATE gpkg_2d_gridded_coverage_ancillary SET uom = ? WHERE tile_matrix_set_name = ?",
                (unit, table),
            )


def tile_counts(path: Path, table: str) -> dict[int, int]:
    """Tiles stored per zoom level (the metadata lists them, as for imagery)."""
    with sqlite3.connect(path) as db:
        rows = db.execute(f'SELECT zoom_level, COUNT(*) FROM "{table}" GROUP BY zoom_level').fetchall()
    return {int(zoom): int(count) for zoom, count in rows}


def heights_details(stats: BandStats, unit: str | None, vertical_datum: str | None) -> dict[str, Any]:
    """What the metadata says about the heights: unit, datum (null when the source does not say), range."""
    return {
        "unit": unit,
        "verticalDatum": vertical_datum,
        "nodata": HEIGHT_NODATA,
        "min": stats.minimum,
        "max": stats.maximum,
        "mean": None if math.isnan(stats.mean) else stats.mean,
        "dataType": "float32",
        "precision": PRECISION,
    }
