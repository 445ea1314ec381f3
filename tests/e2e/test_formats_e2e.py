"""Formats over HTTP: the CLC+ facade end to end, GeoTIFF exports with every AoI form, repairs, refusals."""

from __future__ import annotations

import io
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import rasterio
from rio_cogeo.cogeo import cog_validate

from tests.e2e.conftest import Service
from tests.e2e.test_api_e2e import landsat

ALPS = "POLYGON((6 45.5, 11 45.5, 11 48, 6 48, 6 45.5))"


def order_done(service: Service, order_id: str, timeout: float = 120) -> dict[str, Any]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status, answer, _ = service.request("GET", f"/services/order_status/{order_id}")
        assert status == 200, answer
        if not seen or seen[-1] != answer["status"]:
            seen.append(answer["status"])
        if answer["status"] in ("SUCCESS", "FAILED", "INVALID"):
            assert set(seen) <= {"QUEUED", "RUNNING", "SUCCESS", "FAILED", "INVALID"}, seen
            return answer  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError(f"order {order_id} did not finish: {seen}")


def geotiff_in_zip(url: str, tmp: Path) -> Path:
    with urllib.request.urlopen(url, timeout=60) as response:
        data = response.read()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = archive.namelist()
        (tif,) = [n for n in names if n.endswith(".tif")]
        assert {tif.removesuffix(".tif") + ".tfw", tif + ".aux.xml"} <= set(names)
        archive.extractall(tmp)
    return tmp / tif


def test_clc_plus_orders_end_to_end(service: Service, tmp_path: Path) -> None:
    user = {"user_id": "clc-user", "product_type": "Raster"}
    status, order, _ = service.request("POST", "/products/get_product", {**user, "aoi": ALPS})
    assert status == 200 and order["status"] == "RECEIVED"
    national = service.request("POST", "/products/get_national_product", {**user, "country": "DEU"})[1]
    europe = service.request("POST", "/products/get_product_europe", user)[1]
    for answer, epsg in ((order, 3035), (national, 25832), (europe, 3035)):
        done = order_done(service, answer["order_id"])
        assert done["status"] == "SUCCESS" and done["result"].startswith("http"), done
        tif = geotiff_in_zip(done["result"], tmp_path / answer["order_id"])
        assert cog_validate(str(tif))[0]
        with rasterio.open(tif) as ds:
            assert ds.crs.to_epsg() == epsg and ds.count == 4  # RGB + alpha outside the AoI
            alpha = ds.read(4)
            assert 0 < (alpha > 0).mean() < 1  # clipped: inside visible, outside transparent
    # CLC+ states for bad input, named by the facade's own fields.
    status, bad, _ = service.request("POST", "/products/get_product", {**user, "aoi": "POLYGON((1 2, 3"})
    assert status == 400 and bad["errors"][0]["field"] == "aoi" and "longitude" in bad["errors"][0]["reason"]
    status, bad, _ = service.request(
        "POST", "/products/get_national_product", {**user, "country": "Atlantis"}
    )
    assert status == 400 and bad["errors"][0]["field"] == "country"
    assert service.request("GET", "/services/order_status/00000000-0000-4000-8000-000000000000")[0] == 404


def test_geotiff_export_with_a_repaired_aoi(service: Service, tmp_path: Path) -> None:
    ring = [[-78.2, 24.2], [-77.6, 24.8], [-77.6, 24.2], [-78.2, 24.8], [-78.2, 24.2]]  # crosses itself
    bowtie = {"type": "Polygon", "coordinates": [ring]}
    body = {
        "catalogRecordID": landsat(service),
        "domain": "RASTER",
        "ROI": bowtie,
        "maxResolutionDeg": 0.0054931640625,
        "format": "GTiff",
        "artifactCRS": "EPSG:32618",
        "packer": "none",
    }
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201, created
    assert created["artifactCRS"] == "32618" and created["format"] == "GTiff"
    assert any("self-intersects" in note and "make_valid" in note for note in created["notes"])
    assert created["ROI"]["features"][0]["geometry"]["type"] == "MultiPolygon"
    done = service.wait(created["id"])[-1]
    assert done["status"] == "COMPLETED", done
    kinds = sorted(a["type"] for a in done["artifacts"])
    assert kinds == ["GTIFF", "METADATA", "QUICKLOOK", "SIDECAR", "SIDECAR", "STAC"]
    tif = next(a for a in done["artifacts"] if a["type"] == "GTIFF")
    path = tmp_path / tif["name"]
    with urllib.request.urlopen(tif["url"], timeout=60) as response:
        path.write_bytes(response.read())
    with rasterio.open(path) as ds:
        assert ds.crs.to_epsg() == 32618 and ds.nodata == 0


def test_output_refusals_name_the_field(service: Service) -> None:
    base = {
        "catalogRecordID": landsat(service),
        "domain": "RASTER",
        "ROI": "POLYGON((-78 24.3, -77.9 24.3, -77.9 24.4, -78 24.4, -78 24.3))",
        "maxResolutionDeg": 0.0054931640625,
    }
    cases = [
        ({"format": "GPKG", "artifactCRS": "3035"}, 422, "artifactCRS", "WorldCRS84Quad"),
        (
            {"format": "GTiff", "artifactCRS": "999999"},
            422,
            "artifactCRS",
            "not a coordinate reference system",
        ),
        ({"format": "GTiff", "packer": "tar.gz", "maxPartSize": 2_000_000}, 422, "maxPartSize", "zip"),
        ({"ROI": "POLYGON((-78 24.3, -77.9 24.3))"}, 400, "ROI", "at least 4"),
        ({"ROI": {"country": "Neverland"}}, 400, "ROI", "unknown country"),
    ]
    for extra, code, field, reason in cases:
        status, answer, _ = service.request("POST", "/export-tasks?dryRun=true", {**base, **extra})
        assert status == code, (extra, answer)
        assert answer["errors"][0]["field"] == field and reason in answer["errors"][0]["reason"], answer
