"""The GeoPackage container: GDAL's validator accepts it and rasterio reads the tiles where they belong."""

from pathlib import Path

import numpy as np
import pytest
import rasterio

from geoexport.geometry import grid
from geoexport.packaging.gpkg import GeoPackageTiles, snap_to_pixels
from geoexport.raster.png import encode_png
from tests.support import tile_counts, validate_gpkg


def test_written_tiles_validate_and_read_back_in_place(tmp_path: Path) -> None:
    path = tmp_path / "t.gpkg"
    zoom, col, row = 3, 5, 2
    minx, miny, maxx, maxy = grid.tile_bounds(zoom, col, row)
    pixels = np.zeros((4, 256, 256), dtype=np.uint8)
    pixels[0, :, :128] = 200  # left half red, right half transparent
    pixels[3, :, :128] = 255
    with GeoPackageTiles(path, "tiles", zoom, (minx, miny, maxx, maxy), "test") as gpkg:
        gpkg.add(
            [
                (z, c, r, encode_png(pixels[:, :: 2 ** (zoom - z), :: 2 ** (zoom - z)][:, :256, :256]))
                for z, c, r in [(zoom, col, row)]
            ]
        )
        gpkg.add(
            [
                (z, *grid.tile_range((minx, miny, maxx, maxy), z).as_list()[:2], encode_png(pixels))
                for z in range(zoom)
            ]
        )
    validate_gpkg(path)
    assert tile_counts(path) == {0: 1, 1: 1, 2: 1, 3: 1}
    with rasterio.open(path) as dataset:
        assert dataset.crs.to_epsg() == 4326
        assert dataset.bounds == (minx, miny, maxx, maxy)
        assert dataset.res == (grid.resolution(zoom), grid.resolution(zoom))
        data = dataset.read()
    np.testing.assert_array_equal(data[0, :, :128], 200)
    np.testing.assert_array_equal(data[3, :, 128:], 0)


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.gpkg"
    with (
        pytest.raises(RuntimeError, match="boom"),
        GeoPackageTiles(path, "tiles", 0, (-1, -1, 1, 1), "x") as gpkg,
    ):
        gpkg.add([(0, 0, 0, b"png")])
        raise RuntimeError("boom")
    assert not path.exists()


def test_content_bounds_snap_outward_to_whole_pixels() -> None:
    res = grid.resolution(10)
    minx, miny, maxx, maxy = snap_to_pixels((10.0001, 20.0001, 10.5, 20.5), 10)
    assert minx <= 10.0001 < minx + res and maxy >= 20.5 > maxy - res
    for value, origin in ((minx, -180.0), (maxx, -180.0), (miny, 90.0), (maxy, 90.0)):
        steps = (value - origin) / res
        assert abs(steps - round(steps)) < 1e-6
