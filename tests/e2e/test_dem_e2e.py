"""DEM exports over HTTP: heights as a GeoPackage 2D gridded coverage and as a float32 COG, read back by GDAL
and compared with the sample DEM warped by GDAL's own gdalwarp onto the same grid."""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rio_cogeo.cogeo import cog_validate
from shapely import wkt
from shapely.geometry import mapping

from tests.e2e.conftest import Service
from tests.support import check_quicklook

SOURCE = Path(__file__).parents[2] / "infra" / "sample-data" / "jacksboro-dem.tif"
ROI = "POLYGON((-84.35 36.5, -84.15 36.5, -84.15 36.7, -84.35 36.7, -84.35 36.5))"
NODATA = -32768.0
#: float32 holds the interpolated heights; the tolerance only covers float rounding between GDAL builds.
PRECISION_M = 0.01


def dem_record(service: Service) -> dict[str, Any]:
    record = service.records()["jacksboro-dem"]
    assert record["domain"] == "DEM" and record["heightUnit"] == "metre", record
    return record


def export(service: Service, body: dict[str, Any]) -> dict[str, Any]:
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201, created
    done = service.wait(created["id"])[-1]
    assert done["status"] == "COMPLETED", done
    return done


def download(artifact: dict[str, Any], folder: Path) -> Path:
    path = folder / artifact["name"]
    with urllib.request.urlopen(artifact["url"], timeout=60) as response:
        path.write_bytes(response.read())
    return path


def gdal_reference(ds: Any, folder: Path, name: str) -> np.ndarray[Any, Any]:
    """The source warped by the gdalwarp command (bilinear) onto ``ds``'s grid."""
    target = folder / name
    left, bottom, right, top = ds.bounds
    subprocess.run(
        [
            "gdalwarp", "-q", "-overwrite", "-r", "bilinear", "-ot", "Float32", "-dstnodata", str(NODATA),
            "-t_srs", f"EPSG:{ds.crs.to_epsg()}", "-te", str(left), str(bottom), str(right), str(top),
            "-ts", str(ds.width), str(ds.height), str(SOURCE), str(target),
        ],
        check=True,
    )  # fmt: skip
    with rasterio.open(target) as reference:
        return reference.read(1)  # type: ignore[no-any-return]


def compare(heights: np.ndarray[Any, Any], reference: np.ndarray[Any, Any]) -> None:
    exported = heights != NODATA
    assert 0 < exported.mean() < 1, "the ROI is inside the tiles: heights inside, nodata around"
    both = exported & (reference != NODATA)
    assert both.sum() > 0.95 * exported.sum()
    assert float(np.abs(heights[both] - reference[both]).max()) <= PRECISION_M


def test_a_dem_exports_as_a_gridded_coverage_geopackage(service: Service, tmp_path: Path) -> None:
    record = dem_record(service)
    body = {"catalogRecordID": record["id"], "domain": "DEM", "ROI": ROI, "maxResolutionDeg": 0.0013732910156}
    done = export(service, body)
    by_type = {a["type"]: a for a in done["artifacts"]}
    gpkg = download(by_type["GPKG"], tmp_path)
    metadata = json.loads(download(by_type["METADATA"], tmp_path).read_text())
    with rasterio.open(gpkg) as ds:
        assert ds.dtypes[0] == "float32" and ds.nodata == NODATA and ds.units == ("metre",)
        assert ds.crs.to_epsg() == 4326 and abs(ds.res[0] - 0.703125 / 2**9) < 1e-12  # zoom 9
        heights = ds.read(1)
        compare(heights, gdal_reference(ds, tmp_path, "reference-4326.tif"))
    with sqlite3.connect(gpkg) as db:
        (kind,) = db.execute("SELECT data_type FROM gpkg_contents").fetchone()
        coverage = db.execute(
            "SELECT datatype, scale, offset, data_null, uom FROM gpkg_2d_gridded_coverage_ancillary"
        )
        zooms = [z for (z,) in db.execute("SELECT DISTINCT zoom_level FROM gpkg_tile_matrix ORDER BY 1")]
    assert kind == "2d-gridded-coverage"
    assert coverage.fetchone() == ("float", 1.0, 0.0, NODATA, "metre")
    assert zooms == list(range(10))  # WorldCRS84Quad: 2 x 1 tiles at zoom 0
    info = json.loads(subprocess.run(["gdalinfo", "-json", "-stats", str(gpkg)], capture_output=True,
                                     text=True, check=True).stdout)  # fmt: skip
    assert info["bands"][0]["noDataValue"] == NODATA
    valid = heights[heights != NODATA]
    assert metadata["heights"]["unit"] == "metre" and metadata["heights"]["verticalDatum"] is None
    assert abs(metadata["heights"]["min"] - float(valid.min())) < 1e-3
    assert abs(metadata["heights"]["max"] - float(valid.max())) < 1e-3
    assert metadata["tileFormat"] == "image/tiff" and metadata["maxZoom"] == 9

    # The quicklook: heights as grey from lowest to highest, over the ROI only; the API's inline copy (for
    # web maps) is the same PNG as the downloadable artifact.
    png = download(by_type["QUICKLOOK"], tmp_path)
    check_quicklook(png, metadata["quicklook"]["bounds"], mapping(wkt.loads(ROI)))
    with rasterio.open(png) as look:
        grey, alpha = look.read()
    assert grey[alpha > 0].min() == 0 and grey[alpha > 0].max() == 255
    status, inline, _ = service.request("GET", f"/export-tasks/{done['id']}/quicklook")
    assert status == 200, inline
    assert base64.b64decode(inline["dataUrl"].split(",", 1)[1]) == png.read_bytes()
    assert inline["bounds"] == metadata["quicklook"]["bounds"]


def test_a_dem_exports_as_a_float32_cog_in_a_projected_crs(service: Service, tmp_path: Path) -> None:
    record = dem_record(service)
    body = {
        "catalogRecordID": record["id"],
        "domain": "DEM",
        "ROI": ROI,
        "maxResolutionDeg": 0.001,
        "format": "GTiff",
        "artifactCRS": "32616",
    }
    done = export(service, body)
    tif = download(next(a for a in done["artifacts"] if a["type"] == "GTIFF"), tmp_path)
    assert cog_validate(str(tif))[0]
    with rasterio.open(tif) as ds:
        assert ds.crs.to_epsg() == 32616 and ds.dtypes[0] == "float32" and ds.nodata == NODATA
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "3"
        compare(ds.read(1), gdal_reference(ds, tmp_path, "reference-32616.tif"))


def test_domains_must_match_the_record(service: Service) -> None:
    record = dem_record(service)
    landsat = service.records()["landsat-bahamas-rgb"]
    cases = [
        ({"catalogRecordID": record["id"], "domain": "RASTER", "ROI": ROI}, "must be DEM"),
        ({"catalogRecordID": landsat["id"], "domain": "DEM"}, "must be RASTER"),
        ({"domain": "DEM", "ROI": ROI}, "required for domain DEM"),
    ]
    for body, reason in cases:
        status, answer, _ = service.request("POST", "/export-tasks", body)
        assert status in (400, 422), answer
        assert any(reason in problem["reason"] for problem in answer["errors"]), answer
