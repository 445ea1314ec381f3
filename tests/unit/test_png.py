"""The PNG encoder round-trips through GDAL's PNG reader, for every band layout tiles use."""

import numpy as np
import pytest
from rasterio.io import MemoryFile

from geoexport.raster.png import encode_png


@pytest.mark.parametrize("bands", [1, 2, 3, 4])
def test_round_trip_through_gdal(bands: int) -> None:
    rng = np.random.default_rng(bands)
    pixels = rng.integers(0, 256, size=(bands, 256, 256), dtype=np.uint8)
    with MemoryFile(encode_png(pixels)) as memfile, memfile.open() as png:
        assert png.driver == "PNG"
        assert png.count == bands
        np.testing.assert_array_equal(png.read(), pixels)


def test_refuses_what_png_tiles_cannot_hold() -> None:
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((5, 4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        encode_png(np.zeros((1, 4, 4), dtype=np.uint16))
