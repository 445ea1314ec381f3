"""The four steps run in order against moto over HTTP; GDAL reads the source through /vsis3/ from it."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest

from geoexport import bootstrap
from geoexport.errors import SourceUnreadable
from geoexport.geometry import grid
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.notify.delivery import Deliveries
from geoexport.pipeline import clip, notify, package, upload
from tests.integration.conftest import Cloud
from tests.support import (
    SAMPLES,
    Receiver,
    compare_with_source,
    tile_counts,
    validate_gpkg,
    visible_bounds,
)

PENTAGON = {
    "type": "Polygon",
    "coordinates": [
        [[-78.2, 24.2], [-77.4, 24.2], [-77.0, 24.6], [-77.4, 25.0], [-78.2, 25.0], [-78.2, 24.2]]
    ],
}


def make_task(cloud: Cloud, record: str, roi: dict[str, Any], res: float, hook: str) -> TaskRecord:
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(cloud.records[record].id),
            "domain": "RASTER",
            "description": "integration",
            "ROI": {
                "type": "FeatureCollection",
                "features": [{"type": "Feature", "properties": {"maxResolutionDeg": res}, "geometry": roi}],
            },
            "webhooks": [{"url": hook, "events": ["TASK_COMPLETED", "TASK_FAILED"]}],
        }
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(),
        status=TaskStatus.PENDING,
        progress=0,
        request=request,
        createdAt=now,
        updatedAt=now,
        owner=cloud.owner,
    )
    bootstrap.task_repository(cloud.settings).create(task)
    return task


def loopback_deliveries(cloud: Cloud) -> Deliveries:
    """Webhook delivery as the Notify function builds it, allowed to reach the test's local receiver."""
    return bootstrap.deliveries(
        cloud.settings.model_copy(update={"webhook_allow_loopback": True, "webhook_https_only": False})
    )


def run_steps(cloud: Cloud, task_id: str, deliveries: Deliveries) -> dict[str, Any]:
    s = cloud.settings
    tasks, store, catalog = (
        bootstrap.task_repository(s),
        bootstrap.exports_store(s),
        bootstrap.catalog_repository(s),
    )
    changes = cloud.task_changes()
    clipped = clip.run(task_id, tasks, catalog, store, s.gdal_s3_options())
    packaged = package.run(
        task_id, clipped["planKey"], tasks, store, 2, s.gdal_s3_options(), lambda: datetime.now(UTC)
    )
    upload.run(task_id, packaged["files"], tasks, store)
    notify.run(task_id, tasks, store, lambda: datetime.now(UTC), s.retention_days)
    changes.deliver(deliveries)  # what TaskChangesFunction does with the stream's records
    return {"clip": clipped, "package": packaged}


def exported_gpkg(cloud: Cloud, task: TaskRecord, target: Path) -> tuple[Path, int]:
    """Run the task's steps, then download its validated GeoPackage: (path, size the task reports)."""
    run_steps(cloud, str(task.id), loopback_deliveries(cloud))
    view = bootstrap.task_views(cloud.settings).get(task.id, cloud.owner)
    assert view.status is TaskStatus.COMPLETED, view.errorReason
    gpkg = next(a for a in view.artifacts if a.type.value == "GPKG")
    download(gpkg.url or "", target / gpkg.name)
    validate_gpkg(target / gpkg.name)
    return target / gpkg.name, gpkg.size


def download(url: str, target: Path) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        data: bytes = response.read()
    target.write_bytes(data)
    return data


def test_export_runs_end_to_end_and_reruns_change_nothing(
    cloud: Cloud, receiver: Receiver, tmp_path: Path
) -> None:
    deliveries = loopback_deliveries(cloud)
    task = make_task(cloud, "landsat-bahamas-rgb", PENTAGON, 0.00274658203125, receiver.url())
    steps = run_steps(cloud, str(task.id), deliveries)
    view = bootstrap.task_views(cloud.settings).get(task.id, cloud.owner)
    assert view.status is TaskStatus.COMPLETED and view.progress == 100
    gpkg = next(a for a in view.artifacts if a.type.value == "GPKG")
    meta = next(a for a in view.artifacts if a.type.value == "METADATA")
    data = download(gpkg.url or "", tmp_path / gpkg.name)
    assert len(data) == gpkg.size and hashlib.sha256(data).hexdigest() == gpkg.sha256
    validate_gpkg(tmp_path / gpkg.name)
    counts = tile_counts(tmp_path / gpkg.name)
    assert sorted(counts) == list(range(9))  # 0.0027 deg -> zoom 8, every level present
    comparison = compare_with_source(tmp_path / gpkg.name, SAMPLES / "RGB.byte.tif", PENTAGON)
    assert comparison.compared > 50_000
    assert comparison.mean_abs_diff < 2.0 and comparison.p99_abs_diff <= 12
    assert comparison.visible_outside_roi == 0
    assert comparison.missing_inside < comparison.compared * 0.002
    metadata = json.loads(download(meta.url or "", tmp_path / meta.name))
    assert metadata["sha256"] == gpkg.sha256 and metadata["fileSize"] == gpkg.size
    assert metadata["maxZoom"] == 8 and [z["zoom"] for z in metadata["zoomLevels"]] == list(range(9))
    assert {z["zoom"]: z["tiles"] for z in metadata["zoomLevels"]} == counts
    (call,) = receiver.wait_for(1)
    assert call["body"]["status"] == "COMPLETED" and call["body"]["jobId"] == str(task.id)

    # Re-running any step after a crash gives the same artifacts and no second final webhook.
    s = cloud.settings
    tasks, store = bootstrap.task_repository(s), bootstrap.exports_store(s)
    upload_again = upload.run(str(task.id), steps["package"]["files"], tasks, store)
    assert upload_again == {"taskId": str(task.id)}
    changes = cloud.task_changes()
    again = notify.run(str(task.id), tasks, store, lambda: datetime.now(UTC), s.retention_days)
    assert again["status"] == "COMPLETED"
    assert changes.deliver(deliveries) == 0  # nothing changed, nothing announced
    assert len(receiver.calls) == 1
    keys = [key for key, _ in store.keys(f"exports/{task.id}/")]
    assert sorted(keys) == sorted(f"exports/{task.id}/{a.name}" for a in view.artifacts)
    assert list(store.keys(f"scratch/{task.id}/")) == []


def test_multi_feature_roi_keeps_each_features_zoom_range(cloud: Cloud, tmp_path: Path) -> None:
    """Feature A to zoom 8, feature B only to zoom 5: levels 6..8 hold A alone."""
    a = {
        "type": "Polygon",
        "coordinates": [[[-78.5, 24.0], [-78.0, 24.0], [-78.0, 24.5], [-78.5, 24.5], [-78.5, 24.0]]],
    }
    b = {
        "type": "Polygon",
        "coordinates": [[[-77.2, 25.0], [-76.8, 25.0], [-76.8, 25.4], [-77.2, 25.4], [-77.2, 25.0]]],
    }
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(cloud.records["landsat-bahamas-rgb"].id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {"type": "Feature", "properties": {"maxResolutionDeg": 0.00274658203125}, "geometry": a},
                    {"type": "Feature", "properties": {"maxResolutionDeg": 0.02197265625}, "geometry": b},
                ],
            },
        }
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(), status=TaskStatus.PENDING, progress=0, request=request, createdAt=now, updatedAt=now
    )
    record = cloud.records["landsat-bahamas-rgb"]
    plan = clip.build_plan(task, record)
    zooms = {level.zoom: level for level in plan.levels}
    assert sorted(zooms) == list(range(9))
    from shapely.geometry import shape

    assert shape(zooms[5].region).intersects(shape(b))
    assert not shape(zooms[6].region).intersects(shape(b))
    stats = package.render_gpkg(plan, str(SAMPLES / "RGB.byte.tif"), tmp_path / "m.gpkg", 2, {})
    validate_gpkg(tmp_path / "m.gpkg")
    assert stats.tiles_per_zoom[8] >= 1 and stats.tiles_per_zoom == tile_counts(tmp_path / "m.gpkg")


def test_unreadable_source_fails_with_a_clear_reason(cloud: Cloud, receiver: Receiver) -> None:
    record = cloud.records["corrupt-sample"]
    footprint = record.footprint
    task = make_task(cloud, "corrupt-sample", footprint, record.maxResolutionDeg, receiver.url())
    s = cloud.settings
    tasks, store = bootstrap.task_repository(s), bootstrap.exports_store(s)
    clipped = clip.run(str(task.id), tasks, bootstrap.catalog_repository(s), store, s.gdal_s3_options())
    with pytest.raises(SourceUnreadable, match="cannot be read"):
        package.run(
            str(task.id), clipped["planKey"], tasks, store, 2, s.gdal_s3_options(), lambda: datetime.now(UTC)
        )


@pytest.mark.parametrize(
    ("record", "source", "roi", "res", "zooms"),
    [
        # one grey band, nodata 255, Web Mercator: grey(+alpha) PNG tiles
        (
            "colorado-hillshade",
            "shade.tif",
            {
                "type": "Polygon",
                "coordinates": [[[-106.50, 39.58], [-106.45, 39.58], [-106.45, 39.63], [-106.50, 39.58]]],
            },
            0.0000858306884765625,
            14,
        ),
        # already EPSG:4326 at zoom 0's resolution: a single level
        (
            "world-rgb",
            "world.rgb.tif",
            {"type": "Polygon", "coordinates": [[[-20, -30], [60, -30], [60, 40], [-20, 40], [-20, -30]]]},
            0.703125,
            1,
        ),
    ],
)
def test_other_sample_kinds_export_correctly(
    cloud: Cloud,
    receiver: Receiver,
    tmp_path: Path,
    record: str,
    source: str,
    roi: dict[str, Any],
    res: float,
    zooms: int,
) -> None:
    task = make_task(cloud, record, roi, res, receiver.url())
    path, _ = exported_gpkg(cloud, task, tmp_path)
    assert sorted(tile_counts(path)) == list(range(zooms))
    # Every level shows the ROI where it is: visible pixels lie within the ROI's bounds plus one pixel.
    from shapely.geometry import shape

    rminx, rminy, rmaxx, rmaxy = shape(roi).bounds
    for zoom, (minx, miny, maxx, maxy) in visible_bounds(path).items():
        pad = grid.resolution(zoom) * 1.001
        assert rminx - pad <= minx and maxx <= rmaxx + pad and rminy - pad <= miny and maxy <= rmaxy + pad
    comparison = compare_with_source(path, SAMPLES / source, roi)
    assert comparison.compared > 10_000
    assert comparison.mean_abs_diff < 2.0 and comparison.p99_abs_diff <= 12
    assert comparison.visible_outside_roi == 0 and comparison.missing_inside == 0


def test_an_roi_partly_outside_the_footprint_says_so_in_the_notes(cloud: Cloud, receiver: Receiver) -> None:
    """Issue 12: the clipped part is exported, and the task says what was left out."""
    from shapely.geometry import shape

    record = cloud.records["landsat-bahamas-rgb"]
    _, miny, maxx, maxy = shape(record.footprint).bounds
    cy, half = (miny + maxy) / 2, (maxy - miny) / 8
    west, east, south, north = maxx - half, maxx + half, cy - half, cy + half
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    straddling = {"type": "Polygon", "coordinates": [ring]}
    task = make_task(cloud, "landsat-bahamas-rgb", straddling, 0.02197265625, receiver.url())
    s = cloud.settings
    tasks = bootstrap.task_repository(s)
    clip.run(
        str(task.id), tasks, bootstrap.catalog_repository(s), bootstrap.exports_store(s), s.gdal_s3_options()
    )
    clip.run(
        str(task.id), tasks, bootstrap.catalog_repository(s), bootstrap.exports_store(s), s.gdal_s3_options()
    )
    (note,) = tasks.get(task.id).notes  # a re-run adds it once
    assert note.startswith("features[0]: ") and "outside the footprint" in note
    share = float(note.split(": ", 1)[1].split("%")[0])
    assert 20 < share < 80  # about half of the square (the footprint edge is not exactly a meridian)
