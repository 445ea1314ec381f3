"""Issue 14, as a user sees it: a GeoPackage bigger than FanOutTiles (lowered on the e2e stack to 30 tiles,
in work items of 16) is rendered by the state machine's Distributed Map, one Package invocation per item,
and merged; the user gets one valid GeoPackage with the dry run's tiles per zoom, progress that rises as
items finish, and pixels true to the source. The tiles equal the single path's byte for byte
(tests/integration/test_fanout.py)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.e2e.conftest import Service
from tests.e2e.test_export_e2e import export_body
from tests.support import SAMPLES, compare_with_source, tile_counts, validate_gpkg

Z8 = 0.00274658203125


def test_a_big_export_fans_out_and_arrives_as_one_geopackage(service: Service, tmp_path: Path) -> None:
    landsat = service.records()["landsat-bahamas-rgb"]
    footprint = landsat["footprint"]
    body = export_body(landsat["id"], footprint, Z8)
    status, dry, _ = service.request("POST", "/export-tasks?dryRun=true", body)
    assert status == 200, dry
    assert dry["tiles"] > 30 and dry["workItems"] >= 3, dry
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201, created
    seen = service.wait(created["id"], timeout=300)
    assert seen[-1]["status"] == "COMPLETED", seen[-1].get("errorReason")
    progress = [task["progress"] for task in seen]
    assert progress == sorted(progress)

    # The Distributed Map ran: one child execution per work item, each a Package invocation.
    sfn = service.client("stepfunctions")
    history = sfn.get_execution_history(executionArn=service.execution(created["id"])["executionArn"])
    kinds = [event["type"] for event in history["events"]]
    assert "MapRunStarted" in kinds and "MapRunSucceeded" in kinds
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e
    ]
    assert "RenderParts" in entered and "Merge" in entered and "Package" not in entered

    (gpkg,) = [a for a in seen[-1]["artifacts"] if a["type"] == "GPKG"]
    target = tmp_path / gpkg["name"]
    target.write_bytes(urllib.request.urlopen(gpkg["url"]).read())
    validate_gpkg(target)
    assert {str(zoom): count for zoom, count in tile_counts(target).items()} == {
        str(zoom): count for zoom, count in dry["tilesPerZoom"].items()
    }
    comparison = compare_with_source(target, SAMPLES / "RGB.byte.tif", footprint)
    assert comparison.compared > 50_000
    assert comparison.mean_abs_diff < 2.0 and comparison.visible_outside_roi == 0
    (meta,) = [a for a in seen[-1]["artifacts"] if a["type"] == "METADATA"]
    metadata = json.loads(urllib.request.urlopen(meta["url"]).read())
    assert {z["zoom"]: z["tiles"] for z in metadata["zoomLevels"]} == tile_counts(target)
