"""The quicklook drawer over small rasters written here: colour tables, heights, nodata, and which overview
it draws from (a stale overview tells them apart)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
from rasterio.enums import Resampling
from rasterio.transform import from_origin

from geoexport.raster.quicklook import render_quicklook

RES = 0.001  # deg/px of the rasters below: 200 x 200 px over 0.2 deg


def write(path: Path, data: np.ndarray[Any, Any], **profile: Any) -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=data.shape[-1],
        height=data.shape[-2],
        count=data.shape[0],
        dtype=data.dtype,
        crs="EPSG:4326",
        transform=from_origin(10.0, 50.2, RES, RES),
        **profile,
    ) as ds:
        ds.write(data)
    return path


def pixels(path: Path) -> np.ndarray[Any, Any]:
    with rasterio.open(path) as ds:  # GDAL's PNG driver
        return ds.read()


def test_a_paletted_source_is_drawn_in_its_colours(tmp_path: Path) -> None:
    data = np.ones((1, 200, 200), dtype=np.uint8)
    data[0, :, 100:] = 2
    source = tmp_path / "classes.tif"
    with rasterio.open(
        source, "w", driver="GTiff", width=200, height=200, count=1, dtype="uint8", crs="EPSG:4326",
        transform=from_origin(10.0, 50.2, RES, RES),
    ) as ds:  # fmt: skip
        ds.write(data)
        ds.write_colormap(1, {1: (255, 0, 0, 255), 2: (0, 0, 255, 255)})
    look = render_quicklook(source, tmp_path / "look.png", pixels=64)
    red, green, blue, alpha = pixels(look.path)
    assert max(look.width, look.height) == 64
    assert look.bounds == pytest.approx((10.0, 50.0, 10.2, 50.2))
    assert (alpha == 255).all()
    left, right = slice(0, look.width // 2 - 2), slice(look.width // 2 + 2, look.width)
    assert (red[:, left] == 255).all() and (blue[:, left] == 0).all() and (green == 0).all()
    assert (blue[:, right] == 255).all() and (red[:, right] == 0).all()


def test_heights_are_grey_from_lowest_to_highest_and_nodata_is_transparent(tmp_path: Path) -> None:
    heights = np.tile(np.linspace(100.0, 900.0, 200, dtype=np.float32), (200, 1))[np.newaxis]
    heights[0, :50, :50] = -32768.0
    source = write(tmp_path / "dem.tif", heights, nodata=-32768.0)
    look = render_quicklook(source, tmp_path / "look.png", pixels=100)
    grey, alpha = pixels(look.path)
    assert grey[alpha > 0].min() == 0 and grey[alpha > 0].max() == 255
    assert look.height == 100 and look.width < 70  # taller in Web Mercator at 50 degrees north
    assert (alpha[:20, :12] == 0).all() and (alpha[40:, 30:] == 255).all()
    assert (np.diff(grey[80].astype(int)) >= 0).all()  # west to east, higher and brighter


def test_coarsest_deg_draws_from_an_overview_that_covers_everything(tmp_path: Path) -> None:
    """As a GeoPackage whose finest zoom holds only part of the export: with ``coarsest_deg`` the drawing
    comes from an overview at least that coarse (here: stale on purpose, so the two are told apart)."""
    source = write(tmp_path / "rgb.tif", np.full((3, 200, 200), 10, dtype=np.uint8))
    with rasterio.open(source, "r+") as ds:
        ds.build_overviews([2, 4], Resampling.average)
        ds.write(np.full((3, 200, 200), 200, dtype=np.uint8))  # the full resolution moves on
    fine = pixels(render_quicklook(source, tmp_path / "fine.png", pixels=400).path)
    coarse = pixels(render_quicklook(source, tmp_path / "coarse.png", pixels=400, coarsest_deg=4 * RES).path)
    assert (fine[0][fine[3] > 0] == 200).all()
    assert (coarse[0][coarse[3] > 0] == 10).all()
