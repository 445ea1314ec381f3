"""Estimates: exact tile counts per zoom within the footprint, times the record's measured costs."""

from uuid import uuid4

from shapely.geometry import shape

from geoexport.geometry import grid
from geoexport.models import CatalogRecord, CreateExportTaskRequest, SourceLocation
from geoexport.pipeline.clip import count_tiles
from geoexport.tasks.estimate import (
    EDGE_TILE_BYTES,
    GPKG_OVERHEAD_BYTES,
    METADATA_BYTES,
    PARTIAL_TILE_FACTOR,
    estimate,
)

FOOTPRINT = {"type": "Polygon", "coordinates": [[[10, 10], [12, 10], [12, 12], [10, 12], [10, 10]]]}
RECORD = CatalogRecord(
    id=uuid4(),
    name="r",
    footprint=FOOTPRINT,
    maxResolutionDeg=0.0001,
    crs="EPSG:4326",
    bands=3,
    dtype="uint8",
    width=1,
    height=1,
    source=SourceLocation(bucket="b", key="k"),
    tileBytesByZoom={z: 1000.0 * (z + 1) for z in range(8)},
    tileSecondsByZoom={z: 0.01 for z in range(8)},
)
ROI = {"type": "Polygon", "coordinates": [[[11, 11], [13, 11], [13, 13], [11, 13], [11, 11]]]}


def test_counts_are_exact_per_zoom_and_clipped_to_the_footprint() -> None:
    body = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(RECORD.id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": grid.resolution(9)},
                        "geometry": ROI,
                    }
                ],
            },
        }
    )
    result = estimate(body, RECORD)
    region = shape(ROI).intersection(shape(FOOTPRINT))
    for zoom in range(10):
        assert result.tilesPerZoom[zoom] == count_tiles(region, grid.tile_range(region.bounds, zoom))
    # Zoom 8 and 9 were not sampled: the nearest sample (zoom 7) prices them. Each tile costs at least an
    # edge tile, plus its share of a sample: the ROI's 4 square degrees over what the samples showed (the
    # footprint's 4, or the counted tiles' area when smaller), inflated for partly visible tiles, at most 1.
    expected = 0.0
    for z, n in result.tilesPerZoom.items():
        size = RECORD.tile_cost(z)[0]
        shown = min(n * (grid.resolution(z) * grid.TILE_SIZE) ** 2, 4.0)
        share = min(1.0, PARTIAL_TILE_FACTOR * 4.0 / shown)
        expected += n * (min(size, EDGE_TILE_BYTES) + share * (size - EDGE_TILE_BYTES))
    assert result.bytes == int(expected * 1.03) + GPKG_OVERHEAD_BYTES + METADATA_BYTES
    assert result.tiles == sum(result.tilesPerZoom.values())
    assert result.seconds > 0
