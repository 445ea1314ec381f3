"""Issue 14: a big GeoPackage fans out into work items (the Distributed Map's items), each rendered into its
own part, merged into one GeoPackage: exactly the tiles of the single path, whatever the cuts; progress
counts finished items once; a lost part is redone by the merge within the tolerated share, else the export
fails with a reason. The steps run against moto over HTTP, as the state machine calls them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from geoexport import bootstrap
from geoexport.errors import PartsFailed
from geoexport.models import TaskStatus
from geoexport.pipeline import clip, fanout, notify, package, upload
from geoexport.pipeline.items import FanOut, WorkItem, count_items
from tests.integration.conftest import Cloud
from tests.integration.test_pipeline import PENTAGON, download, make_task
from tests.support import validate_gpkg

ZOOM11 = 0.000343322753906  # ~120 tiles at zoom 11 over the pentagon, about 170 in all
SMALL_ITEMS = FanOut(tiles=1, item_tiles=16, concurrency=2, tolerated_percent=0)


def tiles_of(path: Path) -> dict[tuple[int, int, int], bytes]:
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT zoom_level, tile_column, tile_row, tile_data FROM tiles").fetchall()
    return {(z, c, r): bytes(data) for z, c, r, data in rows}


def run_fanned_out(cloud: Cloud, task_id: str, limits: FanOut, lose: int | None = None) -> dict[str, Any]:
    """Clip, every work item (one twice, as a retry would), then Merge: what the state machine runs."""
    s = cloud.settings
    tasks, store, catalog = (
        bootstrap.task_repository(s),
        bootstrap.exports_store(s),
        bootstrap.catalog_repository(s),
    )
    clipped = clip.run(task_id, tasks, catalog, store, s.gdal_s3_options(), None, limits)
    assert clipped["items"] > 1 and clipped["itemsKey"] == fanout.items_key(task_id)
    work = [WorkItem.model_validate(entry) for entry in store.get_json(clipped["itemsKey"])]
    assert len(work) == clipped["items"]
    for item in [*work, work[0]]:
        answer = package.run_item(
            task_id, clipped["planKey"], item, len(work), tasks, store, 1, s.gdal_s3_options()
        )
        assert answer["index"] == item.index
    if lose is not None:
        cloud.client("s3").delete_object(Bucket=s.exports_bucket, Key=fanout.part_key(task_id, lose))
    merged = package.run(
        task_id,
        clipped["planKey"],
        tasks,
        store,
        2,
        s.gdal_s3_options(),
        lambda: datetime.now(UTC),
        s.retention_days,
        merge_tolerating=limits.tolerated_percent,
    )
    return {"clip": clipped, "work": work, "package": merged}


def finish(cloud: Cloud, task_id: str, files: list[dict[str, Any]], target: Path) -> Path:
    s = cloud.settings
    tasks, store = bootstrap.task_repository(s), bootstrap.exports_store(s)
    upload.run(task_id, files, tasks, store)
    notify.run(task_id, tasks, store, lambda: datetime.now(UTC), s.retention_days)
    view = bootstrap.task_views(s).get(task_id, cloud.owner)
    assert view.status is TaskStatus.COMPLETED, view.errorReason
    gpkg = next(a for a in view.artifacts if a.type.value == "GPKG")
    download(gpkg.url or "", target / gpkg.name)
    validate_gpkg(target / gpkg.name)
    return target / gpkg.name


def test_the_fan_out_delivers_exactly_the_single_paths_tiles(cloud: Cloud, tmp_path: Path) -> None:
    single_task = make_task(cloud, "landsat-bahamas-rgb", PENTAGON, ZOOM11, "https://example.org/hook")
    fanned_task = make_task(cloud, "landsat-bahamas-rgb", PENTAGON, ZOOM11, "https://example.org/hook")
    s = cloud.settings
    tasks, store, catalog = (
        bootstrap.task_repository(s),
        bootstrap.exports_store(s),
        bootstrap.catalog_repository(s),
    )
    single = clip.run(str(single_task.id), tasks, catalog, store, s.gdal_s3_options(), None, FanOut())
    assert single["items"] == 0 and single["itemsKey"] is None  # small: the single path
    packaged = package.run(
        str(single_task.id),
        single["planKey"],
        tasks,
        store,
        2,
        s.gdal_s3_options(),
        lambda: datetime.now(UTC),
    )
    (tmp_path / "single").mkdir()
    expected = tiles_of(finish(cloud, str(single_task.id), packaged["files"], tmp_path / "single"))

    steps = run_fanned_out(cloud, str(fanned_task.id), SMALL_ITEMS)
    work: list[WorkItem] = steps["work"]
    # Cuts of every kind: small levels together, big ones in bands of block rows and in column chunks.
    assert any(len(item.pieces) > 1 for item in work)
    assert any(not item.pieces[0].whole for item in work)
    zoom11 = [item.pieces[0].tiles for item in work if item.pieces[0].zoom == 11]
    assert len({tiles[0] for tiles in zoom11}) > 1 and len({tiles[1] for tiles in zoom11}) > 1
    # The estimate's count of items is about the plan's (the cuts follow whole blocks; 16-tile items are
    # just 1 block, the real default is 10,000 tiles).
    plan = store.get_json(steps["clip"]["planKey"])
    counted = {level["zoom"]: level["tileCount"] for level in plan["levels"]}
    assert abs(count_items(counted, SMALL_ITEMS.tiles, SMALL_ITEMS.item_tiles) - len(work)) <= 2
    # Progress counted each item once (one ran twice) and stayed within the Package step's share.
    view = bootstrap.task_views(s).get(fanned_task.id, cloud.owner)
    assert 70 <= view.progress <= 80
    (tmp_path / "fanned").mkdir()
    got = tiles_of(finish(cloud, str(fanned_task.id), steps["package"]["files"], tmp_path / "fanned"))
    assert len(expected) > 150
    assert got.keys() == expected.keys()
    assert all(got[key] == expected[key] for key in expected), "a tile differs from the single path's"
    assert list(store.keys(f"scratch/{fanned_task.id}/")) == []  # parts and items went with the scratch


def test_a_lost_part_is_redone_by_the_merge_within_the_tolerated_share(cloud: Cloud, tmp_path: Path) -> None:
    task = make_task(cloud, "landsat-bahamas-rgb", PENTAGON, ZOOM11, "https://example.org/hook")
    limits = FanOut(tiles=1, item_tiles=16, concurrency=2, tolerated_percent=20)
    steps = run_fanned_out(cloud, str(task.id), limits, lose=1)
    path = finish(cloud, str(task.id), steps["package"]["files"], tmp_path)
    assert sum(item.tiles for item in steps["work"]) >= len(tiles_of(path)) > 150


def test_more_lost_parts_than_tolerated_fail_the_export_with_a_reason(cloud: Cloud) -> None:
    """A part lost for a passing reason renders when the merge tries one: the export fails for the count.
    (A source that cannot be read fails with that reason instead: tests/e2e/test_export_e2e.py, whose stack
    fans out every export of more than 30 tiles.)"""
    task = make_task(cloud, "landsat-bahamas-rgb", PENTAGON, ZOOM11, "https://example.org/hook")
    with pytest.raises(
        PartsFailed, match=r"1 of the export's \d+ work items failed .*at most 0 may be redone"
    ):
        run_fanned_out(cloud, str(task.id), SMALL_ITEMS, lose=0)
    reason = notify.error_reason(
        "Package", {"Error": "PartsFailed", "Cause": '{"errorMessage": "1 of 12 work items failed"}'}, "t"
    )
    assert reason == "Package step failed: 1 of 12 work items failed"
