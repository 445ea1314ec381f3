"""A quicklook of a raster export (REGARDS' QUICKLOOK, a STAC ``thumbnail``): a small PNG of what the
export holds, in Web Mercator so a web map overlays it by its four corners with no further warping.

It is drawn from the produced file itself (the GeoPackage's coarser zooms or the COG's overviews), so it
shows exactly what was exported, with everything outside the exported area transparent. Heights (DEM
exports) are drawn as grey from their lowest to their highest value; paletted sources through their
colour table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from rasterio.enums import ColorInterp, Resampling
from rasterio.transform import from_bounds
from rasterio.vrt import WarpedVRT
from rasterio.warp import transform_bounds

from geoexport.raster.png import encode_png

QUICKLOOK_PIXELS = 384  # the longer side, at most
MERCATOR_LAT = 85.0511287798066  # Web Mercator's reach
WEB_MERCATOR = "EPSG:3857"


@dataclass(frozen=True)
class Quicklook:
    path: Path
    bounds: tuple[float, float, float, float]  # west, south, east, north in degrees (of the EPSG:3857 image)
    width: int
    height: int


def _overview(factors: list[int], target: float, native: float) -> int | None:
    """The coarsest overview (or GeoPackage zoom) still at least as fine as the quicklook's pixels."""
    best = None
    for index, factor in enumerate(factors):
        if native * factor <= target:
            best = index
    return best


def _grey(heights: npt.NDArray[Any], valid: npt.NDArray[np.bool_]) -> npt.NDArray[np.uint8]:
    """Heights stretched from their lowest to their highest value (all one grey if they are flat)."""
    out = np.zeros(heights.shape, dtype=np.uint8)
    if valid.any():
        low, high = float(heights[valid].min()), float(heights[valid].max())
        span = high - low or 1.0
        out[valid] = np.clip((heights[valid] - low) / span * 255.0, 0, 255).astype(np.uint8)
    return out


def render_quicklook(
    source: Path, target: Path, pixels: int = QUICKLOOK_PIXELS, coarsest_deg: float = 0.0
) -> Quicklook:
    """Write ``target`` (PNG, RGBA or grey + alpha) showing ``source`` at most ``pixels`` on a side and
    no finer than its own pixels.

    ``coarsest_deg``: draw from an overview at least this coarse (degrees per pixel). A GeoPackage whose
    ROI features have their own zooms holds the finest zooms only where those features are; the finest
    zoom every feature reaches shows all of them."""
    with rasterio.open(source) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
        south, north = max(south, -MERCATOR_LAT), min(north, MERCATOR_LAT)
        left, bottom, right, top = transform_bounds("EPSG:4326", WEB_MERCATOR, west, south, east, north)
        native = (right - left) / src.width
        # Never finer than the data drawn from: a small export's preview is no larger than the export.
        step = max(
            max(right - left, top - bottom) / pixels, native, coarsest_deg * (right - left) / (east - west)
        )
        width, height = max(1, round((right - left) / step)), max(1, round((top - bottom) / step))
        interp = list(src.colorinterp)
        paletted = interp[0] is ColorInterp.palette
        colormap = src.colormap(1) if paletted else None
        heights = src.dtypes[0] not in ("uint8",)
        alpha = interp.index(ColorInterp.alpha) + 1 if ColorInterp.alpha in interp else None
        colour = [i + 1 for i in range(src.count) if i + 1 != alpha]
        indexes = colour[:3] if len(colour) >= 3 else colour[:1]
        overview = _overview(src.overviews(1), step * (1 + 1e-6), native)
    transform = from_bounds(left, bottom, right, top, width, height)
    resampling = Resampling.nearest if paletted else Resampling.average
    kwargs: dict[str, Any] = {} if overview is None else {"overview_level": overview}
    with (
        rasterio.open(source, **kwargs) as src,
        WarpedVRT(
            src,
            crs=WEB_MERCATOR,
            transform=transform,
            width=width,
            height=height,
            resampling=resampling,
            add_alpha=alpha is None,
        ) as vrt,
    ):
        data = vrt.read(indexes)
        valid = vrt.read(vrt.count) > 0  # the source's alpha, or the alpha the warp added
    if colormap is not None:
        table = np.zeros((256, 3), dtype=np.uint8)
        for value, rgba in colormap.items():
            if 0 <= value < 256:
                table[value] = rgba[:3]
        rgb = np.moveaxis(table[data[0].astype(np.uint8)], -1, 0)
    elif heights:
        rgb = _grey(data[0], valid)[np.newaxis]
    else:
        rgb = data.astype(np.uint8)
    mask = np.where(valid, 255, 0).astype(np.uint8)[np.newaxis]
    target.write_bytes(encode_png(np.concatenate([rgb, mask])))
    return Quicklook(target, (west, south, east, north), width, height)
