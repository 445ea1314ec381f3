"""VECTOR exports over HTTP (issue 5): features created through the API, exported by POST /export-tasks and
by a CLC+ Vector order, downloaded from their links and read back with pyogrio and GDAL's validator."""

from __future__ import annotations

import io
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pyogrio
import shapely
from rasterio.warp import transform_geom
from shapely.geometry import mapping, shape

from tests.e2e.conftest import Service
from tests.e2e.test_formats_e2e import order_done
from tests.support import validate_gpkg

AOI = {"type": "Polygon", "coordinates": [[[6, 45.5], [11, 45.5], [11, 48], [6, 48], [6, 45.5]]]}


def features(run: str, roads: str, sites: str) -> list[dict[str, Any]]:
    """Roads crossing the AoI's edge, sites inside, across and outside it, and a point outside."""
    return [
        {
            "id": f"{run}-a1",
            "model": roads,
            "geometry": {"type": "LineString", "coordinates": [[5, 46], [12, 47]]},
        },
        {
            "id": f"{run}-a2",
            "model": roads,
            "geometry": {"type": "LineString", "coordinates": [[7, 44], [7, 49]]},
        },
        {
            "id": f"{run}-a3",
            "model": roads,
            "geometry": {"type": "LineString", "coordinates": [[20, 50], [21, 51]]},
        },
        {
            "id": f"{run}-s1",
            "model": sites,
            "geometry": {
                "type": "Polygon",
                "coordinates": [[[10, 47], [12, 47], [12, 49], [10, 49], [10, 47]]],
            },
        },
        {
            "id": f"{run}-s2",
            "model": sites,
            "geometry": {"type": "Polygon", "coordinates": [[[8, 46], [9, 46], [9, 47], [8, 47], [8, 46]]]},
        },
        {"id": f"{run}-s3", "model": sites, "geometry": {"type": "Point", "coordinates": [2.35, 48.85]}},
    ]


def create(service: Service, items: list[dict[str, Any]]) -> None:
    body = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "entityType": "DATA", "properties": {"name": item["id"]}, **item}
            for item in items
        ],
    }
    status, answer, _ = service.request("POST", "/features", body)
    assert status == 207 and all(i["status"] == 201 for i in answer["items"]), answer


def expected(items: list[dict[str, Any]], model: str) -> dict[str, Any]:
    """Brute force: every feature of ``model`` meeting the AoI, clipped, in EPSG:3035."""
    aoi, found = shape(AOI), {}
    for item in items:
        geometry = shape(item["geometry"])
        if item["model"] == model and aoi.intersects(geometry):
            clipped = geometry.intersection(aoi)
            found[item["id"]] = shape(transform_geom("EPSG:4326", "EPSG:3035", mapping(clipped)))
    return found


def read(path: Path) -> dict[str, dict[str, Any]]:
    layers: dict[str, dict[str, Any]] = {}
    for name, _ in pyogrio.list_layers(path):
        meta, _, geometries, fields = pyogrio.raw.read(path, layer=name)
        assert meta["crs"] == "EPSG:3035"
        ids = fields[list(meta["fields"]).index("featureId")]
        layers[name] = {i: shapely.from_wkb(g) for i, g in zip(ids, geometries, strict=True)}
    return layers


def matches(want: dict[str, Any], got: dict[str, Any]) -> bool:
    """Same features, each within 1 cm of GDAL's reprojection everywhere (PROJ through pyproj and through
    GDAL agree to ~1e-9 m, so an exact symmetric difference of lines is not the test)."""
    return set(want) == set(got) and all(
        shapely.hausdorff_distance(want[i], got[i]) < 0.01 and abs(want[i].area - got[i].area) < 1e-3
        for i in want
    )


def download(url: str, target: Path) -> Path:
    with urllib.request.urlopen(url, timeout=30) as answer:
        target.write_bytes(answer.read())
    return target


def test_vector_export_and_clc_vector_order(service: Service, tmp_path: Path) -> None:
    from tests.e2e.test_auth_e2e import new_client

    run = uuid.uuid4().hex[:8]
    roads, sites = f"roads_{run}", f"sites_{run}"
    for model in (roads, sites):
        assert service.request("POST", "/models", {"name": model, "schema": {"type": "object"}})[0] == 201
    items = features(run, roads, sites)
    create(service, items)

    body = {"domain": "VECTOR", "ROI": AOI, "artifactCRS": "EPSG:3035", "parameters": {"model": roads}}
    status, task, _ = service.request("POST", "/export-tasks", body)
    assert status in (200, 201) and task["catalogRecordID"] is None, task
    done = service.wait(task["id"])[-1]
    assert done["status"] == "COMPLETED", done
    (gpkg,) = [a for a in done["artifacts"] if a["type"] == "GPKG"]
    path = download(gpkg["url"], tmp_path / gpkg["name"])
    validate_gpkg(path)
    layers = read(path)
    assert set(layers) == {roads} and matches(expected(items, roads), layers[roads])
    assert len(layers[roads]) == 2  # the road far away is not exported
    # Pages of 2 features, one page per Clip call (this stack's settings): the state machine called Clip
    # again until the index had no more, each call resuming where the last stopped.
    log = service.log_with(task["id"], "EXPORT_FINISH")
    clips = [(e["type"], e["message"]) for e in log if e.get("step") == "Clip" and e["type"] != "STEP_FINISH"]
    assert clips[:2] == [("STEP_START", "Clip started"), ("STEP_START", "Clip continued (call 2)")], clips

    # CLC+ Vector order: every model of the caller's, zipped, in EPSG:3035.
    user = {
        "user_id": "e2e",
        "product_type": "Vector",
        "aoi": "POLYGON((6 45.5, 11 45.5, 11 48, 6 48, 6 45.5))",
    }
    status, answer, _ = service.request("POST", "/products/get_product", user)
    assert status == 200, answer
    result = order_done(service, answer["order_id"])
    assert result["status"] == "SUCCESS", result
    with urllib.request.urlopen(result["result"], timeout=30) as response:
        archive = zipfile.ZipFile(io.BytesIO(response.read()))
    (name,) = [n for n in archive.namelist() if n.endswith(".gpkg")]
    archive.extract(name, tmp_path / "clc")
    layers = read(tmp_path / "clc" / name)
    validate_gpkg(tmp_path / "clc" / name)
    assert matches(expected(items, roads), layers[roads]) and matches(expected(items, sites), layers[sites])

    # Another client has no features there: its export ends FAILED, saying why.
    other = new_client(service, f"vector-{run}")
    token = service.issue_token(other["client_id"], other["client_secret"])
    status, task, _ = service.request("POST", "/export-tasks", body, token=token)
    assert status in (200, 201), task
    for _ in range(600):
        status, seen, _ = service.request("GET", f"/export-tasks/{task['id']}", token=token)
        if seen["status"] in ("COMPLETED", "FAILED"):
            break
        time.sleep(0.1)
    assert seen["status"] == "FAILED" and "no feature of yours" in seen["errorReason"], seen
    assert seen["failureKind"] == "input"

    # Refusals name the field.
    status, bad, _ = service.request("POST", "/export-tasks", {**body, "format": "GTiff"})
    assert status == 422 and bad["errors"][0]["field"] == "format"
    status, bad, _ = service.request("POST", "/export-tasks", {"domain": "RASTER", "ROI": AOI})
    assert status == 400 and bad["errors"][0]["field"] == "catalogRecordID"
