"""Registering a raster as a catalog record: describe it and measure what its tiles cost (heavy: GDAL)."""

from __future__ import annotations

from uuid import UUID

from geoexport.errors import SourceUnreadable, UnsupportedSource
from geoexport.models.catalog import CatalogRecord, SourceLocation


def describe_record(
    path: str,
    record_id: UUID,
    name: str,
    source: SourceLocation,
    description: str = "",
    gdal_options: dict[str, str] | None = None,
    measure_costs: bool = True,
    height_unit: str | None = None,
    vertical_datum: str | None = None,
) -> CatalogRecord:
    """The record for the raster at ``path`` (GDAL path); tile costs feed the API's estimates. With a
    ``height_unit`` it is a DEM record (its tiles are not PNG imagery: estimates use DEM_TILE_BYTES)."""
    from shapely.geometry import shape

    from geoexport.geometry import grid
    from geoexport.raster.render import inspect_bands, sample_costs
    from geoexport.raster.source import describe, gdal_env

    with gdal_env(gdal_options or {}):
        info = describe(path)
    costs: dict[int, tuple[float, float]] = {}
    if measure_costs and height_unit is None:
        try:
            with gdal_env(gdal_options or {}):
                bands = inspect_bands(path, info.resolution_deg)
            zooms = range(grid.zoom_for_resolution(info.resolution_deg) + 1)
            costs = sample_costs(path, bands, shape(info.footprint), zooms, gdal_options or {})
        except (SourceUnreadable, UnsupportedSource):
            costs = {}  # a broken source still gets a record (its exports fail with the reason)
    return CatalogRecord(
        id=record_id,
        name=name,
        domain="DEM" if height_unit else "RASTER",
        heightUnit=height_unit,
        verticalDatum=vertical_datum,
        description=description,
        footprint=info.footprint,
        maxResolutionDeg=info.resolution_deg,
        crs=info.crs,
        bands=info.bands,
        dtype=info.dtype,
        nodata=info.nodata,
        width=info.width,
        height=info.height,
        source=source,
        tileBytesByZoom={zoom: cost[0] for zoom, cost in costs.items()},
        tileSecondsByZoom={zoom: cost[1] for zoom, cost in costs.items()},
    )
