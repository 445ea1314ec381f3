"""The histogram range the .aux.xml reports is the one its counts were made over."""

from geoexport.raster.cog import histogram_range


def test_histogram_ranges_follow_gdal() -> None:
    assert histogram_range("uint8", 3, 200) == (-0.5, 255.5)
    assert histogram_range("int16", -3, 10) == (-3.5, 10.5)  # integers centred on their buckets
    assert histogram_range("float32", 0.25, 0.75) == (0.25, 0.75)
    assert histogram_range("float32", 1.0, 1.0) == (0.5, 1.5)  # a constant band: never an empty range
