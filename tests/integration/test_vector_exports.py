"""VECTOR exports (issue 5) over moto with the real steps: Natural Earth cities and countries loaded as
features, exported clipped to an AoI in EPSG:3035 as GeoPackage layers (one per model), read back with
pyogrio and compared with a brute-force shapely clip; split into parts above the configured size."""

from __future__ import annotations

import csv
import hashlib
import json
import sqlite3
import urllib.request
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyogrio
import pytest
import shapely
import xmlschema
from rasterio.warp import transform_geom
from shapely.geometry import shape

from geoexport import bootstrap
from geoexport.errors import InvalidRequest, UnprocessableRequest
from geoexport.features.feature import FeatureIn
from geoexport.features.models import ModelIn
from geoexport.geometry.repair import InProcessGeometry
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.pipeline import clip, notify, package, upload
from geoexport.pipeline.vector import SelectLimits
from geoexport.tasks.service import Limits, TaskService
from tests.integration.conftest import Cloud
from tests.integration.test_formats import Workflow
from tests.support import ROOT, validate_gpkg

OWNER = f"vector-owner-{uuid.uuid4().hex[:6]}"
# An irregular AoI over Europe: it cuts through many countries and leaves cities on both sides.
AOI = {
    "type": "Polygon",
    "coordinates": [[[-5, 42], [12, 36], [30, 44], [26, 58], [8, 62], [-3, 52], [-5, 42]]],
}


def natural_earth() -> list[dict[str, Any]]:
    cities = json.loads((ROOT / "tests" / "data" / "cities.geojson").read_text())["features"]
    countries = json.loads((ROOT / "layers" / "geoexport" / "data" / "countries.geojson").read_text())
    wide = shapely.box(-30, 25, 50, 72)  # load what can matter (and a margin), not the world
    loaded = [
        {"id": f"city-{index}", "model": "city", "entityType": "DATA", **city}
        for index, city in enumerate(cities)
        if shape(city["geometry"]).intersects(wide)
    ]
    for x in range(12):  # parcels: round polygons with long text, enough bytes to need several parts
        for y in range(9):
            circle = shapely.Point(-4 + 3 * x, 37 + 3 * y).buffer(0.8, quad_segs=16)
            loaded.append(
                {
                    "id": f"parcel-{x}-{y}",
                    "model": "parcel",
                    "entityType": "DATA",
                    "type": "Feature",
                    "geometry": json.loads(shapely.to_geojson(circle)),
                    "properties": {"survey": f"parcel {x}/{y} " * 500, "area": circle.area},
                }
            )
    for country in countries["features"]:
        if shape(country["geometry"]).intersects(wide):
            props = {k: country["properties"][k] for k in ("name", "iso_a3", "pop_est")}
            loaded.append(
                {
                    "id": f"country-{props['iso_a3']}-{props['name']}",
                    "model": "country",
                    "entityType": "DATASET",
                    "type": "Feature",
                    "geometry": country["geometry"],
                    "properties": props,
                }
            )
    return loaded


@pytest.fixture(scope="module")
def features(cloud: Cloud) -> list[dict[str, Any]]:
    models = bootstrap.model_service(cloud.settings)
    for name in ("city", "country", "parcel"):
        try:
            models.register(ModelIn.model_validate({"name": name, "schema": {"type": "object"}}), OWNER)
        except Exception:  # registered by an earlier module of the session
            pass
    service = bootstrap.feature_service(cloud.settings)
    loaded = natural_earth()
    with ThreadPoolExecutor(8) as pool:  # as many producers would
        list(pool.map(lambda item: service.create(FeatureIn.model_validate(item), OWNER), loaded))
    return loaded


def brute_force(features: list[dict[str, Any]], model: str | None = None) -> dict[str, Any]:
    """Feature id -> clipped geometry in EPSG:4326, with plain shapely over every feature."""
    aoi = shape(AOI)
    found = {}
    for item in features:
        if model and item["model"] != model:
            continue
        geometry = shape(item["geometry"])
        if not aoi.intersects(geometry):
            continue
        clipped = geometry.intersection(aoi)
        dimension = shapely.get_dimensions(geometry)
        parts = [p for p in shapely.get_parts(clipped) if shapely.get_dimensions(p) == dimension]
        if parts:
            found[item["id"]] = shapely.union_all(parts)
    return found


def service(cloud: Cloud) -> TaskService:
    s = cloud.settings
    return TaskService(
        bootstrap.task_repository(s),
        bootstrap.catalog_repository(s),
        Workflow(),
        bootstrap.exports_store(s),
        Limits(download_url_ttl_seconds=600, retention_days=1, storage_quota_bytes=10**12),
        geometry=InProcessGeometry(),
    )


def export(
    cloud: Cloud,
    body: dict[str, Any],
    tmp: Path,
    part_bytes: int,
    owner: str = OWNER,
    select: SelectLimits | None = None,
) -> tuple[Any, dict[str, Path]]:
    tmp.mkdir(parents=True, exist_ok=True)
    prepared, record, _ = service(cloud).prepare(
        CreateExportTaskRequest.model_validate({"domain": "VECTOR", **body})
    )
    assert record is None
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid.uuid4(),
        status=TaskStatus.PENDING,
        progress=0,
        request=prepared,
        createdAt=now,
        updatedAt=now,
        owner=owner,
    )
    s = cloud.settings
    tasks, store = bootstrap.task_repository(s), bootstrap.exports_store(s)
    tasks.create(task)
    source = bootstrap.feature_service(s)
    calls, planned = 0, {"more": True}
    while planned["more"]:  # as the state machine does: Clip again until it is done
        planned = clip.run(
            str(task.id), tasks, bootstrap.catalog_repository(s), store, {}, source, None, select
        )
        calls += 1
    selection = store.get_json(f"scratch/{task.id}/selection.json")
    assert selection["invocations"] == calls and selection["done"]
    packaged = package.run(
        str(task.id), planned["planKey"], tasks, store, 2, {}, lambda: datetime.now(UTC), 1, part_bytes
    )
    upload.run(str(task.id), packaged["files"], tasks, store)
    notify.run(str(task.id), tasks, store, lambda: datetime.now(UTC), 1)
    view = service(cloud).get(task.id, owner)
    assert view.status is TaskStatus.COMPLETED, view.errorReason
    files = {}
    for artifact in view.artifacts:
        target = tmp / artifact.name
        with urllib.request.urlopen(artifact.url or "", timeout=30) as answer:
            target.write_bytes(answer.read())
        files[artifact.name] = target
    return view, files


def read_layers(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """layer -> feature id -> geometry, over every part."""
    layers: dict[str, dict[str, Any]] = {}
    for path in paths:
        for name, _ in pyogrio.list_layers(path):
            meta, _, geometries, fields = pyogrio.raw.read(path, layer=name)
            assert meta["crs"] == "EPSG:3035"
            ids = fields[list(meta["fields"]).index("featureId")]
            for feature_id, wkb in zip(ids, geometries, strict=True):
                assert feature_id not in layers.setdefault(name, {}), "a feature is in two parts"
                layers[name][feature_id] = shapely.from_wkb(wkb)
    return layers


def same(expected_4326: Any, actual_3035: Any) -> bool:
    expected = shape(transform_geom("EPSG:4326", "EPSG:3035", shapely.geometry.mapping(expected_4326)))
    if expected.geom_type.endswith("Point"):
        return bool(expected.distance(actual_3035) < 0.01 and actual_3035.distance(expected) < 0.01)
    difference = expected.symmetric_difference(actual_3035)
    size = max(expected.area, expected.length)
    measure = difference.area if expected.area else difference.length
    return bool(measure <= 1e-9 * size + 1e-6)


def test_features_clipped_to_the_aoi_in_3035_one_layer_per_model(
    cloud: Cloud, features: list[dict[str, Any]], tmp_path: Path
) -> None:
    view, files = export(cloud, {"ROI": AOI, "artifactCRS": "EPSG:3035"}, tmp_path, 100 * 1024**2)
    gpkgs = [p for name, p in files.items() if name.endswith(".gpkg")]
    assert len(gpkgs) == 1 and {a.type.value for a in view.artifacts} == {"GPKG", "METADATA", "STAC"}
    validate_gpkg(gpkgs[0])
    with sqlite3.connect(gpkgs[0]) as db:  # GeoPackage 1.2, for readers with an older GDAL
        assert db.execute("PRAGMA user_version").fetchone()[0] == 10200
    layers = read_layers(gpkgs)
    for model in ("city", "country", "parcel"):
        expected = brute_force(features, model)
        assert set(layers[model]) == set(expected), model
        assert all(same(expected[i], layers[model][i]) for i in expected), model
    assert len(layers["city"]) > 5 and len(layers["country"]) > 10
    metadata = json.loads(
        next(p for n, p in files.items() if n.endswith(".json") and "stac" not in n).read_text()
    )
    assert metadata["layers"] == {name: len(found) for name, found in layers.items()}
    assert metadata["crs"] == "EPSG:3035"


def test_model_filter_and_parts_above_the_configured_size(
    cloud: Cloud, features: list[dict[str, Any]], tmp_path: Path
) -> None:
    body = {"ROI": AOI, "artifactCRS": "3035", "parameters": {"model": "parcel"}}
    _, whole = export(cloud, body, tmp_path / "whole", 100 * 1024**2)
    (single,) = [p for name, p in whole.items() if name.endswith(".gpkg")]
    limit = int(single.stat().st_size * 0.6)  # the same export, configured to be split
    assert limit > 256 * 1024
    _, files = export(cloud, body, tmp_path / "parts", limit)
    gpkgs = sorted(p for name, p in files.items() if name.endswith(".gpkg"))
    assert len(gpkgs) >= 2 and all("_part" in p.name for p in gpkgs)
    for path in gpkgs:
        assert path.stat().st_size <= limit, path
        validate_gpkg(path)
    expected = brute_force(features, "parcel")
    for paths in ([single], gpkgs):
        layers = read_layers(paths)
        assert set(layers) == {"parcel"} and set(layers["parcel"]) == set(expected)
        assert all(same(expected[i], layers["parcel"][i]) for i in expected)


def test_a_selection_paced_over_many_clip_calls_exports_the_same(
    cloud: Cloud, features: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Clip out of time after every page (pages of 7 features) is called again and resumes at its cursor:
    the export holds exactly what one call selects, in as many chunks as pages had features."""
    body = {"ROI": AOI, "artifactCRS": "3035", "parameters": {"formats": ["GPKG", "GeoJSONSeq"]}}
    _, whole = export(cloud, body, tmp_path / "whole", 100 * 1024**2)
    paced = SelectLimits(seconds=0, page=7)
    _, files = export(cloud, body, tmp_path / "paced", 100 * 1024**2, select=paced)
    gpkgs = {
        kind: [p for n, p in found.items() if n.endswith(".gpkg")]
        for kind, found in [("whole", whole), ("paced", files)]
    }
    assert read_layers(gpkgs["paced"]).keys() == read_layers(gpkgs["whole"]).keys()
    for name, found in read_layers(gpkgs["paced"]).items():
        expected = read_layers(gpkgs["whole"])[name]
        assert set(found) == set(expected) and all(found[i].equals(expected[i]) for i in expected), name
    lines = next(p for n, p in files.items() if n.endswith(".geojsonl")).read_text().splitlines()
    ids = [json.loads(line)["properties"]["urn"] for line in lines]
    assert len(ids) == len(set(ids)) == sum(len(layer) for layer in read_layers(gpkgs["whole"]).values())
    metadata = json.loads(
        next(p for n, p in files.items() if n.endswith(".json") and "stac" not in n).read_text()
    )
    assert sum(metadata["layers"].values()) == len(ids)


def test_an_export_over_the_feature_limit_fails_with_what_to_do(
    cloud: Cloud, features: list[dict[str, Any]], tmp_path: Path
) -> None:
    """More features meet the ROI than the limit (they are the module's; with xdist this test may run in a
    worker where no other test loaded them, so it asks for them itself)."""
    body = {"ROI": AOI, "artifactCRS": "3035"}
    with pytest.raises(UnprocessableRequest, match="more than 5 features") as raised:
        export(cloud, body, tmp_path, 100 * 1024**2, select=SelectLimits(page=3, features=5))
    assert "narrow the ROI" in str(raised.value)


def test_vector_requests_are_checked(cloud: Cloud) -> None:
    tasks = service(cloud)
    for body, field in [
        ({"domain": "VECTOR", "format": "GTiff"}, "format"),
        ({"domain": "VECTOR", "catalogRecordID": str(uuid.uuid4())}, "catalogRecordID"),
        ({"domain": "VECTOR", "parameters": {"entityType": "THING"}}, "parameters.entityType"),
        ({"domain": "VECTOR", "artifactCRS": "999999"}, "artifactCRS"),
    ]:
        with pytest.raises(UnprocessableRequest) as refused:
            tasks.prepare(CreateExportTaskRequest.model_validate(body))
        assert refused.value.problems[0].field == field
    with pytest.raises(InvalidRequest) as missing:
        tasks.prepare(CreateExportTaskRequest.model_validate({"domain": "RASTER"}))
    assert missing.value.problems[0].field == "catalogRecordID"


def test_records_as_csv_geojson_json_xml_with_fields_and_a_filter(
    cloud: Cloud, features: list[dict[str, Any]], tmp_path: Path
) -> None:
    """Issue 16: the chosen properties, renamed, of the features passing a CQL2 filter, in every format,
    zipped; read back by Python's csv, GDAL's CSV driver, json and an XSD validator (the XSD shipped)."""
    body = {
        "ROI": AOI,
        "artifactCRS": "3035",
        "packer": "zip",
        "parameters": {
            "model": "country",
            "filter": "pop_est > 10000000 AND name LIKE '%a%'",
            "fields": {"name": {"display_name": "Country"}, "pop_est": {"display_name": "Population"}},
            "formats": ["GPKG", "GeoJSON", "CSV", "JSON", "XML"],
            "csv": {"delimiter": ";", "use_bom": True},
        },
    }
    view, files = export(cloud, body, tmp_path, 100 * 1024**2)
    clipped = brute_force(features, "country")
    by_id = {f["id"]: f["properties"] for f in features}
    expected = {
        i for i in clipped if by_id[i]["pop_est"] > 10_000_000 and "a" in by_id[i]["name"]
    }  # the same question in Python
    assert 3 < len(expected) < len(clipped)
    (bundle,) = [a for a in view.artifacts if a.type.value == "BUNDLE"]
    metadata = json.loads(
        next(p for n, p in files.items() if n.endswith(".json") and "stac" not in n).read_text()
    )
    unzipped = tmp_path / "unzipped"
    with zipfile.ZipFile(files[bundle.name]) as archive:
        archive.extractall(unzipped)
        assert sorted(archive.namelist()) == sorted(e["name"] for e in metadata["contents"])
    for entry in metadata["contents"]:
        assert hashlib.sha256((unzipped / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
    assert {e["type"] for e in metadata["contents"]} == {"GPKG", "GEOJSON", "CSV", "JSON", "XML", "SCHEMA"}
    named = {Path(e["name"]).suffix: unzipped / e["name"] for e in metadata["contents"]}

    raw = named[".csv"].read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and raw[3:].startswith(b'"urn";"featureId";')
    with named[".csv"].open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    assert list(rows[0]) == [
        "urn",
        "featureId",
        "model",
        "entityType",
        "version",
        "Country",
        "Population",
        "WKT",
    ]
    assert {r["featureId"] for r in rows} == expected
    assert all(float(r["Population"]) == by_id[r["featureId"]]["pop_est"] for r in rows)
    meta, _, geometries, _ = pyogrio.raw.read(named[".csv"])  # GDAL's CSV driver: WKT is the geometry
    assert meta["crs"] is None and len(geometries) == len(expected) and all(g is not None for g in geometries)
    for row in rows:
        assert same(clipped[row["featureId"]], shapely.from_wkt(row["WKT"]))

    collection = json.loads(named[".geojson"].read_text())
    assert collection["type"] == "FeatureCollection"
    assert {f["properties"]["featureId"] for f in collection["features"]} == expected
    assert all(set(f["properties"]) >= {"Country", "Population"} for f in collection["features"])
    for item in collection["features"]:  # RFC 7946: EPSG:4326 whatever the export's CRS
        exported, wanted = shape(item["geometry"]), clipped[item["properties"]["featureId"]]
        assert exported.symmetric_difference(wanted).area <= 1e-9 * wanted.area
    records = json.loads(named[".json"].read_text()) if named[".json"].name.endswith("records.json") else None
    assert records is not None and {r["featureId"] for r in records} == expected
    assert "pop_est" not in records[0] and "iso_a3" not in records[0]

    schema = xmlschema.XMLSchema(str(named[".xsd"]))
    schema.validate(str(named[".xml"]))  # raises on anything the XSD does not allow
    document = schema.to_dict(str(named[".xml"]))
    assert int(document["@count"]) == len(expected) and document["@crs"] == "EPSG:3035"
    assert {f["@featureId"] for f in document["feature"]} == expected

    layers = read_layers([named[".gpkg"]])
    assert set(layers["country"]) == expected
    info = pyogrio.read_info(named[".gpkg"], layer="country")
    assert {"Country", "Population"} <= set(info["fields"]) and "iso_a3" not in set(info["fields"])


def test_record_options_and_filters_are_checked(cloud: Cloud) -> None:
    tasks = service(cloud)
    for parameters, field in [
        ({"formats": ["Shapefile"]}, "parameters.formats[0]"),
        ({"csv": {"delimiter": ";;"}}, "parameters.csv.delimiter"),
        ({"fields": {"name": {"label": "x"}}}, "parameters.fields.name.label"),
        ({"fields": {"name": {"display_name": "urn"}}}, "parameters.fields"),
        ({"one_file_per_object": True, "formats": ["JSON"]}, "parameters.one_file_per_object"),
    ]:
        with pytest.raises(UnprocessableRequest) as refused:
            tasks.prepare(
                CreateExportTaskRequest.model_validate({"domain": "VECTOR", "parameters": parameters})
            )
        assert refused.value.problems[0].field == field, refused.value.problems
    with pytest.raises(InvalidRequest) as unreadable:
        tasks.prepare(
            CreateExportTaskRequest.model_validate(
                {"domain": "VECTOR", "parameters": {"filter": "pop_est >> 3"}}
            )
        )
    (problem,) = unreadable.value.problems
    assert problem.field == "parameters.filter" and "line 1, column" in problem.reason
