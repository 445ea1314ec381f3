"""Issue 14: how big GeoPackages are cut into work items, and the limits that keep every invocation
finishable (pure functions; the rendering through the cuts is in tests/integration/test_fanout.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import shapely
from shapely.geometry import box, mapping

from geoexport.errors import UnprocessableRequest
from geoexport.geometry import grid
from geoexport.models import CreateExportTaskRequest
from geoexport.pipeline.clip import count_tiles
from geoexport.pipeline.fanout import BLOCK, split
from geoexport.pipeline.items import FanOut, count_items
from geoexport.pipeline.plan import ExportPlan, LevelPlan
from geoexport.tasks.estimate import Estimate
from geoexport.tasks.prepare import Limits, bounded
from tests.unit.test_task_service import INSIDE, request


def test_small_exports_stay_on_the_single_path_and_small_levels_go_together() -> None:
    assert count_items({0: 1, 1: 2, 2: 8}, fanout_tiles=20, item_tiles=5) == 0
    # 1 + 2 fit one item, 4 the next; 12 is cut in ceil(12 / 5) = 3.
    assert count_items({0: 1, 1: 2, 2: 4, 3: 12}, fanout_tiles=10, item_tiles=5) == 5


def plan_of(region: shapely.Geometry, zooms: range) -> ExportPlan:
    levels = []
    for zoom in zooms:
        tiles = grid.tile_range(region.bounds, zoom)
        levels.append(
            LevelPlan(
                zoom=zoom, region=mapping(region), tiles=tiles.as_list(), tileCount=count_tiles(region, tiles)
            )
        )
    now = datetime.now(UTC)
    return ExportPlan(
        taskId="t",
        recordId="r",
        recordName="n",
        productVersion="1",
        sourceUri="s3://b/k",
        sourceResolutionDeg=0.0001,
        fileStem="f",
        maxZoom=max(zooms),
        levels=levels,
        footprint=mapping(region),
        bounds=list(region.bounds),
        description="",
        roi=mapping(region),
        createdAt=now,
    )


@pytest.mark.parametrize(
    "region",
    [
        box(10.0, 40.0, 11.3, 41.1),  # square-ish: bands of block rows
        box(-20.0, 40.0, 30.0, 40.05),  # wide and short: column chunks too
        shapely.Polygon([(0, 0), (3, 0.1), (3, 0.3), (0, 0.2)]),  # a thin diagonal: many empty blocks
    ],
)
def test_every_tile_is_in_exactly_one_item_cut_along_whole_blocks(region: shapely.Geometry) -> None:
    plan = plan_of(region, range(0, 12))
    limits = FanOut(tiles=100, item_tiles=50)
    work = split(plan, limits.tiles, limits.item_tiles)
    assert len(work) > 3 and any(not item.pieces[0].whole for item in work)
    assert [item.index for item in work] == list(range(len(work)))
    levels = {level.zoom: level for level in plan.levels}
    seen: dict[int, set[tuple[int, int]]] = {zoom: set() for zoom in levels}
    for item in work:
        assert item.tiles <= 3 * limits.item_tiles
        for piece in item.pieces:
            level = levels[piece.zoom]
            min_col, min_row, max_col, max_row = piece.tiles
            assert (min_col - level.tiles[0]) % BLOCK == 0 and (min_row - level.tiles[1]) % BLOCK == 0
            assert piece.whole == (piece.tiles == level.tiles)
            cells = {(c, r) for c in range(min_col, max_col + 1) for r in range(min_row, max_row + 1)}
            assert not cells & seen[piece.zoom], "a tile is in two items"
            seen[piece.zoom] |= cells
    for zoom, level in levels.items():
        min_col, min_row, max_col, max_row = level.tiles
        meeting = {
            (c, r)
            for c in range(min_col, max_col + 1)
            for r in range(min_row, max_row + 1)
            if count_tiles(region, grid.TileRange(zoom, c, r, c, r))
        }
        assert meeting <= seen[zoom], f"zoom {zoom}: a tile the region meets is in no item"
    per_zoom = {level.zoom: level.tileCount for level in plan.levels}
    assert abs(count_items(per_zoom, limits.tiles, limits.item_tiles) - len(work)) <= len(work) // 4 + 2


def estimated(seconds: float, size: int = 10**6, items: int = 0) -> Estimate:
    return Estimate(
        tilesPerZoom={0: 1}, tiles=1, bytes=size, seconds=seconds, workItems=items, renderSeconds=seconds
    )


def test_limits_match_what_one_invocation_can_finish() -> None:
    limits = Limits(download_url_ttl_seconds=3600, retention_days=14, storage_quota_bytes=10**12)
    gpkg = request(INSIDE)
    body = gpkg.model_dump(mode="json", exclude_none=True)
    tiff = CreateExportTaskRequest.model_validate({**body, "format": "GTiff"})
    zipped = CreateExportTaskRequest.model_validate({**body, "packer": "zip"})
    assert bounded(estimated(500), limits, tiff).seconds == 500
    assert bounded(estimated(700), limits, gpkg).seconds == 700  # bounded by its work items instead
    with pytest.raises(UnprocessableRequest) as refused:
        bounded(estimated(700), limits, tiff)
    assert "estimated at 700 s here (limit 600 s)" in refused.value.problems[0].reason
    half = limits.max_export_bytes // 2 + 1
    assert bounded(estimated(1, half), limits, gpkg).bytes == half
    for doubled in (tiff, zipped):
        with pytest.raises(UnprocessableRequest) as refused:
            bounded(estimated(1, half), limits, doubled)
        assert "twice that" in refused.value.problems[0].reason
