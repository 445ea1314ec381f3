"""GEOS repairs and CRS checks for the create API, run in the geometry function (it may import shapely).

The API functions must not import numpy, so they call this through a Lambda invoke when an AoI polygon
is not simple, or when an export asks for a CRS other than EPSG:4326.
"""

from __future__ import annotations

from typing import Any

import shapely
from shapely.geometry import mapping, shape
from shapely.geometry.base import BaseGeometry

from geoexport.geometry.planar import GeometryProblem


def _polygonal(geometry: BaseGeometry) -> BaseGeometry:
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        return geometry
    parts = [g for g in getattr(geometry, "geoms", []) if g.geom_type in ("Polygon", "MultiPolygon")]
    return shapely.union_all(parts) if parts else shapely.Polygon()


def repair(geometry: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """make_valid, keeping the polygonal result; GeometryProblem when nothing with an area is left."""
    try:
        original = shape(geometry)
    except (ValueError, TypeError, shapely.errors.GEOSException) as error:
        raise GeometryProblem(f"not a polygon GEOS can read: {error}") from None
    fixed = _polygonal(shapely.make_valid(original))
    if fixed.is_empty or fixed.area == 0:
        raise GeometryProblem("nothing with an area is left after make_valid")
    parts = len(getattr(fixed, "geoms", [fixed]))
    how = f"repaired with GEOS make_valid into {parts} polygon(s) of {fixed.area:.6g} square degrees"
    return dict(mapping(shapely.set_precision(fixed, 0))), how


def check_crs(code: str) -> str | None:
    """None when EPSG:``code`` is a CRS GDAL knows (and can project to), else why not."""
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    try:
        crs = CRS.from_epsg(int(code))
    except (CRSError, ValueError) as error:
        return f"EPSG:{code} is not a coordinate reference system GDAL knows ({error})"
    if not (crs.is_projected or crs.is_geographic):
        return f"EPSG:{code} is neither projected nor geographic; exports need a 2D map CRS"
    return None


class InProcessGeometry:
    """The geometry service without the Lambda hop (tests, tools): same functions, called directly."""

    def repair(self, geometry: dict[str, Any]) -> tuple[dict[str, Any], str]:
        return repair(geometry)

    def crs_problem(self, code: str) -> str | None:
        return check_crs(code)
