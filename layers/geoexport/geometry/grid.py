"""The WorldCRS84Quad tile grid (GDAL's ``InspireCRS84Quad``), in pure Python.

Zoom 0 is 2 x 1 tiles of 256 px covering -180..180 x -90..90, i.e. 0.703125 degrees per pixel; every zoom
halves the pixel size. Rows count from the top (north), as in GeoPackage.

Zoom rule (as MapColonies derives it): the zoom for a requested ``maxResolutionDeg`` is the *largest* zoom
whose pixel size is not finer than the request, ``max{z : 0.703125 / 2**z >= res}``, with a relative
tolerance of 1e-9 so that a request of exactly a level's resolution lands on that level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TILE_SIZE = 256
ZOOM0_RESOLUTION = 0.703125
MAX_ZOOM = 21  # 3.35e-7 deg/px, the finest resolution the API accepts
MIN_RESOLUTION_DEG = 3.35e-7
MAX_RESOLUTION_DEG = ZOOM0_RESOLUTION
_TOLERANCE = 1e-9

Bounds = tuple[float, float, float, float]


def resolution(zoom: int) -> float:
    """Degrees per pixel at ``zoom``."""
    return ZOOM0_RESOLUTION / (1 << zoom)


def zoom_for_resolution(res_deg: float) -> int:
    """Largest zoom whose pixel size is not finer than ``res_deg`` (clamped to 0..MAX_ZOOM)."""
    if res_deg <= 0 or not math.isfinite(res_deg):
        raise ValueError("resolution must be a positive number")
    zoom = math.floor(math.log2(ZOOM0_RESOLUTION / res_deg) + _TOLERANCE)
    return max(0, min(MAX_ZOOM, zoom))


def matrix_size(zoom: int) -> tuple[int, int]:
    """(columns, rows) of the tile matrix at ``zoom``."""
    return 2 << zoom, 1 << zoom


@dataclass(frozen=True)
class TileRange:
    """Inclusive tile column/row range at one zoom."""

    zoom: int
    min_col: int
    min_row: int
    max_col: int
    max_row: int

    @property
    def count(self) -> int:
        return (self.max_col - self.min_col + 1) * (self.max_row - self.min_row + 1)

    def as_list(self) -> list[int]:
        return [self.min_col, self.min_row, self.max_col, self.max_row]


def tile_range(bounds: Bounds, zoom: int) -> TileRange:
    """Tiles that ``bounds`` (minx, miny, maxx, maxy in degrees) touches with positive area."""
    minx, miny, maxx, maxy = bounds
    span = TILE_SIZE * resolution(zoom)
    cols, rows = matrix_size(zoom)
    min_col = math.floor((minx + 180.0) / span + 1e-9)
    max_col = math.ceil((maxx + 180.0) / span - 1e-9) - 1
    min_row = math.floor((90.0 - maxy) / span + 1e-9)
    max_row = math.ceil((90.0 - miny) / span - 1e-9) - 1
    return TileRange(
        zoom,
        max(0, min(cols - 1, min_col)),
        max(0, min(rows - 1, min_row)),
        max(0, min(cols - 1, max(min_col, max_col))),
        max(0, min(rows - 1, max(min_row, max_row))),
    )


def tile_bounds(zoom: int, col: int, row: int) -> Bounds:
    """Bounds (minx, miny, maxx, maxy) of one tile."""
    span = TILE_SIZE * resolution(zoom)
    minx = -180.0 + col * span
    maxy = 90.0 - row * span
    return minx, maxy - span, minx + span, maxy
