"""Issue 4 over the sample data: every AoI form and format, national products, packers and the STAC Item.

Each export runs the real steps against moto (GDAL reads the source from S3), its files are downloaded
from their presigned links and read back with rasterio / sqlite / zipfile / pystac.
"""

from __future__ import annotations

import json
import tarfile
import urllib.request
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pystac
import pytest
import rasterio
from pystac.validation.stac_validator import JsonSchemaSTACValidator
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import mapping, shape

from geoexport import bootstrap
from geoexport.geometry import aoi
from geoexport.geometry.repair import InProcessGeometry
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.pipeline import clip, notify, package, upload
from geoexport.tasks.service import Limits, TaskService
from tests.integration.conftest import Cloud
from tests.support import SAMPLES, check_quicklook, compare_geotiff, compare_with_source, validate_gpkg

SQUARE = [[-78.1, 24.3], [-77.5, 24.3], [-77.5, 24.8], [-78.1, 24.8], [-78.1, 24.3]]
POLYGON = {"type": "Polygon", "coordinates": [SQUARE]}
WKT = "POLYGON((" + ", ".join(f"{x} {y}" for x, y in SQUARE) + "))"
COLORADO = {
    "type": "Polygon",
    "coordinates": [[[-106.5, 39.58], [-106.44, 39.58], [-106.44, 39.63], [-106.5, 39.63], [-106.5, 39.58]]],
}
RES = 0.00274658203125  # zoom 8, about 300 m: the source's own resolution


class Workflow:
    def start(self, task_id: Any) -> str:
        return f"arn:local:{task_id}"

    def stop(self, execution_arn: str, cause: str) -> None:
        return None


def service(cloud: Cloud) -> TaskService:
    s = cloud.settings
    limits = Limits(download_url_ttl_seconds=600, retention_days=1, storage_quota_bytes=10**12)
    return TaskService(
        bootstrap.task_repository(s),
        bootstrap.catalog_repository(s),
        Workflow(),
        bootstrap.exports_store(s),
        limits,
        geometry=InProcessGeometry(),
    )


def export(cloud: Cloud, record: str, body: dict[str, Any], tmp: Path) -> tuple[Any, dict[str, Path]]:
    """Prepare the request as the API does, run the four steps, download every artifact."""
    tmp.mkdir(parents=True, exist_ok=True)
    request = CreateExportTaskRequest.model_validate(
        {"catalogRecordID": str(cloud.records[record].id), "domain": "RASTER", **body}
    )
    tasks_service = service(cloud)
    prepared, _, notes = tasks_service.prepare(request)
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(),
        status=TaskStatus.PENDING,
        progress=0,
        request=prepared,
        createdAt=now,
        updatedAt=now,
        notes=notes,
    )
    s = cloud.settings
    tasks, store = bootstrap.task_repository(s), bootstrap.exports_store(s)
    tasks.create(task)
    planned = clip.run(str(task.id), tasks, bootstrap.catalog_repository(s), store, s.gdal_s3_options())
    packaged = package.run(
        str(task.id), planned["planKey"], tasks, store, 2, s.gdal_s3_options(), lambda: datetime.now(UTC), 1
    )
    upload.run(str(task.id), packaged["files"], tasks, store)
    notify.run(str(task.id), tasks, store, lambda: datetime.now(UTC), 1)
    view = tasks_service.get(task.id)
    assert view.status is TaskStatus.COMPLETED, view.errorReason
    files = {}
    for artifact in view.artifacts:
        target = tmp / artifact.name
        with urllib.request.urlopen(artifact.url or "", timeout=30) as response:
            target.write_bytes(response.read())
        assert target.stat().st_size == artifact.size
        files[artifact.name] = target
    return view, files


def expected_region(record: Any, roi_geometry: dict[str, Any]) -> dict[str, Any]:
    return dict(mapping(shape(roi_geometry).intersection(shape(record.footprint))))


def check_stac(files: dict[str, Path], view: Any, epsg: int) -> dict[str, Any]:
    (stac_path,) = [p for name, p in files.items() if name.endswith(".stac.json")]
    item = json.loads(stac_path.read_text())
    # Core Item schema, offline (pystac ships the STAC 1.1.0 schemas; the extension schemas it does not).
    JsonSchemaSTACValidator().validate_core(
        item, pystac.STACObjectType.ITEM, item["stac_version"], item["id"]
    )
    pystac.Item.from_dict(item)
    assert item["properties"]["proj:epsg"] == epsg
    by_name = {a.name: a for a in view.artifacts}
    for name, asset in item["assets"].items():
        assert asset["file:size"] == by_name[name].size
        assert asset["file:checksum"] == "1220" + by_name[name].sha256
    assert item["links"][0]["rel"] == "derived_from"
    assert item["properties"]["created"] and item["properties"]["expires"]
    (look,) = [a for a in view.artifacts if a.type.value == "QUICKLOOK"]
    asset = item["assets"][look.name]
    assert "thumbnail" in asset["roles"] and asset["type"] == "image/png" and asset["proj:epsg"] == 3857
    return item


def check_preview(files: dict[str, Path], region: dict[str, Any], covered: bool) -> None:
    """The quicklook covers the exported region, as the metadata JSON says."""
    (meta,) = [p for name, p in files.items() if name.endswith(".json") and not name.endswith(".stac.json")]
    described = json.loads(meta.read_text())["quicklook"]
    assert described["crs"] == "EPSG:3857"
    check_quicklook(files[described["name"]], described["bounds"], region, covered)


AOI_FORMS = {
    "FeatureCollection": {
        "ROI": {
            "type": "FeatureCollection",
            "features": [{"type": "Feature", "properties": {"maxResolutionDeg": RES}, "geometry": POLYGON}],
        }
    },
    "Feature": {"ROI": {"type": "Feature", "geometry": POLYGON}, "maxResolutionDeg": RES},
    "Geometry": {"ROI": POLYGON, "maxResolutionDeg": RES},
    "WKT": {"ROI": WKT, "maxResolutionDeg": RES},
    "nothing": {},  # the record's whole footprint at its own resolution
}


@pytest.mark.parametrize("form", sorted(AOI_FORMS))
@pytest.mark.parametrize("fmt", ["GPKG", "GTiff"])
def test_every_aoi_form_in_every_format(cloud: Cloud, tmp_path: Path, form: str, fmt: str) -> None:
    body = {**AOI_FORMS[form], "format": fmt}
    # LAEA Europe as CLC+ delivers; the whole scene in its own UTM zone (LAEA Europe is so distorted over
    # the Bahamas that GDAL's approximate transformer, 0.125 px, shifts a whole scene's bilinear samples).
    epsg = 32618 if form == "nothing" else 3035
    if fmt == "GTiff":
        body["artifactCRS"] = str(epsg)
    view, files = export(cloud, "landsat-bahamas-rgb", body, tmp_path)
    assert view.ROI["features"][0]["geometry"]["type"] == "Polygon"
    record = cloud.records["landsat-bahamas-rgb"]
    region = expected_region(record, POLYGON if form != "nothing" else record.footprint)
    if form == "nothing":
        assert view.ROI["features"][0]["properties"]["maxResolutionDeg"] == record.maxResolutionDeg
    if fmt == "GPKG":
        (gpkg,) = [p for n, p in files.items() if n.endswith(".gpkg")]
        validate_gpkg(gpkg)
        result = compare_with_source(gpkg, SAMPLES / "RGB.byte.tif", region)
        check_stac(files, view, 4326)
        check_preview(files, region, covered=form != "nothing")  # the scene has nodata corners
    else:
        (tif,) = [p for n, p in files.items() if n.endswith(".tif")]
        valid, errors, _ = cog_validate(str(tif))
        assert valid, errors
        with rasterio.open(tif) as ds:
            assert ds.crs.to_epsg() == epsg
            # Internal overviews whenever the image is larger than one 512-pixel block.
            assert bool(ds.overviews(1)) == (max(ds.width, ds.height) > 512), (ds.shape, ds.overviews(1))
        result = compare_geotiff(tif, SAMPLES / "RGB.byte.tif", region)
        check_stac(files, view, epsg)
        check_preview(files, region, covered=form != "nothing")  # the scene has nodata corners
    assert result.compared > 500
    assert result.mean_abs_diff < 2.0
    assert result.visible_outside_roi == 0
    assert result.missing_inside <= result.compared * 0.01


def test_geotiff_sidecars_and_statistics(cloud: Cloud, tmp_path: Path) -> None:
    region = COLORADO  # at the source's own resolution (no maxResolutionDeg): about 540 x 560 px
    body = {"ROI": region, "format": "GTiff", "artifactCRS": "32613"}
    view, files = export(cloud, "colorado-hillshade", body, tmp_path)
    names = sorted(files)
    (tif,) = [p for n, p in files.items() if n.endswith(".tif")]
    stem = tif.name
    for suffix in (".tfw", ".aux.xml", ".clr", ".qml"):
        assert any(n.endswith(suffix) for n in names), (suffix, names)
    assert {a.type.value for a in view.artifacts} == {"GTIFF", "SIDECAR", "METADATA", "STAC", "QUICKLOOK"}
    assert cog_validate(str(tif))[0]
    with rasterio.open(tif) as ds:
        transform = ds.transform
        assert ds.crs.to_epsg() == 32613 and ds.overviews(1)  # 1000+ px: internal overviews
        tags = ds.tags(1)  # GDAL reads the .aux.xml next to the file
        data = ds.read(1)
        valid = data[data != ds.nodata]
    assert float(tags["STATISTICS_MEAN"]) == pytest.approx(float(valid.mean()), abs=1e-6)
    assert float(tags["STATISTICS_MAXIMUM"]) == float(valid.max())
    world = [float(v) for v in (tmp_path / tif.with_suffix(".tfw").name).read_text().split()]
    assert world[0] == pytest.approx(transform.a) and world[3] == pytest.approx(transform.e)
    assert world[4] == pytest.approx(transform.c + transform.a / 2)
    assert world[5] == pytest.approx(transform.f + transform.e / 2)
    clr = (tmp_path / f"{stem}.clr").read_text().splitlines()
    assert clr and all(len(line.split()) == 4 for line in clr)
    assert "singlebandgray" in (tmp_path / tif.with_suffix(".qml").name).read_text()
    result = compare_geotiff(
        tif, SAMPLES / "shade.tif", expected_region(cloud.records["colorado-hillshade"], region)
    )
    assert result.mean_abs_diff == 0.0 and result.visible_outside_roi == 0  # nearest: exact values


@pytest.mark.parametrize(("country", "epsg"), [("DEU", 25832), ("Spain", 25830), ("FRA", 2154)])
def test_national_product_in_the_national_projection(
    cloud: Cloud, tmp_path: Path, country: str, epsg: int
) -> None:
    view, files = export(cloud, "world-rgb", {"ROI": {"country": country}, "format": "GTiff"}, tmp_path)
    assert view.artifactCRS == str(epsg) and view.notes[0].startswith("national product of")
    (tif,) = [p for n, p in files.items() if n.endswith(".tif")]
    with rasterio.open(tif) as ds:
        assert ds.crs.to_epsg() == epsg
        assert ds.res[0] == pytest.approx(0.703125 * 111319.49, rel=1e-3)  # the record's own resolution
    boundary = aoi.national_territory(aoi.find_country(country))[0]
    result = compare_geotiff(tif, SAMPLES / "world.rgb.tif", boundary)
    assert result.compared >= 8 and result.visible_outside_roi == 0 and result.missing_inside == 0
    assert result.mean_abs_diff < 6.0  # 78 km pixels: bilinear edges differ more
    if country == "FRA":  # French Guiana lies outside Lambert-93: left out, and said so
        assert any("overseas" in note for note in view.notes)


def test_packers_zip_parts_and_tar(cloud: Cloud, tmp_path: Path) -> None:
    region = COLORADO
    base = {"ROI": region, "format": "GTiff", "artifactCRS": "4326", "maxResolutionDeg": 0.0001}
    part = 1024 * 1024
    view, files = export(
        cloud, "colorado-hillshade", {**base, "packer": "zip", "maxPartSize": part}, tmp_path / "z"
    )
    bundles = [a for a in view.artifacts if a.type.value == "BUNDLE"]
    meta = json.loads(
        next(p for n, p in files.items() if n.endswith(".json") and ".stac" not in n).read_text()
    )
    inside: list[str] = []
    for bundle in bundles:
        with zipfile.ZipFile(files[bundle.name]) as archive:
            members = archive.namelist()
            assert archive.testzip() is None
        if len(members) > 1:
            assert bundle.size <= part  # a part holds several files only if they fit
        inside += members
    assert sorted(inside) == sorted(entry["name"] for entry in meta["contents"])
    # Beside the parts: the quicklook, outside them so a page can show it without unpacking.
    assert [f["name"] for f in meta["files"]] == [b.name for b in bundles] + [meta["quicklook"]["name"]]
    assert any(n.endswith(".tif") for n in inside) and any(n.endswith(".qml") for n in inside)
    check_stac(files, view, 4326)

    for packer, magic in (("tar.gz", b"\x1f\x8b"), ("tar.bz2", b"BZh")):
        view, files = export(cloud, "colorado-hillshade", {**base, "packer": packer}, tmp_path / packer)
        (bundle,) = [a for a in view.artifacts if a.type.value == "BUNDLE"]
        assert bundle.name.endswith("." + packer)
        assert files[bundle.name].read_bytes()[:3].startswith(magic)  # really that compression
        with tarfile.open(files[bundle.name]) as archive:
            assert sorted(m.name for m in archive.getmembers()) == sorted(
                e["name"]
                for e in json.loads(files[bundle.name.replace("." + packer, ".json")].read_text())["contents"]
            )
        check_stac(files, view, 4326)
