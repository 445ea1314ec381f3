"""Issue 16 over HTTP: the repository through OGC API - Features, read by OWSLib (a client nobody here
wrote), the same CQL2 filter answered alike by GET /features, the OGC items and a VECTOR export, and that
export's files (CSV, GeoJSON, XML with its XSD, GeoPackage) read back by Python's csv, json, xmlschema and
GDAL."""

from __future__ import annotations

import csv
import hashlib
import json
import urllib.request
import uuid
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyogrio
import pytest
import xmlschema
from owslib.ogcapi.features import Features

from tests.e2e.conftest import Service
from tests.e2e.test_feature_files_e2e import put, stored_file, until

BOX = (-78.0, 24.0, -76.0, 26.0)
SURVEYS: dict[str, bytes] = {}  # feature id -> the bytes of its stored file
FILTER = "depth > 20 AND name LIKE 'reef%'"


def wanted(properties: dict[str, Any]) -> bool:
    """FILTER in Python."""
    return bool(properties["depth"] > 20 and properties["name"].startswith("reef"))


@pytest.fixture(scope="module")
def reefs(service: Service) -> tuple[str, dict[str, dict[str, Any]]]:
    """A model of the demo client's and 60 points (a third outside BOX), by urn."""
    model = f"reef{uuid.uuid4().hex[:6]}"
    assert service.request("POST", "/models", {"name": model, "schema": {"type": "object"}})[0] == 201
    features = [
        {
            "type": "Feature", "id": f"{model}-{i}", "model": model, "entityType": "DATA",
            "geometry": {"type": "Point", "coordinates": [-78.9 + 0.05 * i, 24.5 + 0.02 * i]},
            "properties": {"name": ("reef " if i % 3 else "wreck ") + str(i), "depth": i % 40},
        }
        for i in range(60)
    ]  # fmt: skip
    status, answer, _ = service.request(
        "POST", "/features", {"type": "FeatureCollection", "features": features}
    )
    assert status == 207 and {item["status"] for item in answer["items"]} == {201}, answer
    by_urn = {}
    for item, feature in zip(answer["items"], features, strict=True):
        by_urn[item["urn"]] = feature
    # Two of the features the export below selects get a stored file (uploaded and verified).
    chosen = [u for u, f in by_urn.items() if inside(f) and wanted(f["properties"])][:2]
    for urn in chosen:
        data = f"survey of {by_urn[urn]['id']}".encode() * 50
        etag = service.request("GET", f"/features/{urn}")[2]["ETag"]
        status, patched, _ = service.request(
            "PATCH", f"/features/{urn}", {"files": [stored_file("survey.txt", data, "SHA-256")]},
            extra_headers={"If-Match": etag},
        )  # fmt: skip
        assert status == 200, patched
        assert put(patched["uploads"][0], data) == 200
        assert until(service, patched["urn"], "COMPLETE")["filesState"] == "COMPLETE"
        SURVEYS[by_urn[urn]["id"]] = data
        by_urn[patched["urn"]] = by_urn.pop(urn)  # version 2 is the current one now
    return model, by_urn


def inside(feature: dict[str, Any]) -> bool:
    x, y = feature["geometry"]["coordinates"]
    return BOX[0] <= x <= BOX[2] and BOX[1] <= y <= BOX[3]


def follow(service: Service, url: str) -> list[dict[str, Any]]:
    """Every page of an items query, through its ``next`` links."""
    found: list[dict[str, Any]] = []
    while url:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {service.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.headers["Content-Type"].startswith("application/geo+json")
            page = json.loads(response.read())
        found += page["features"]
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), "")
    return found


def test_owslib_reads_the_collections_and_items(service: Service, reefs: Any) -> None:
    model, by_urn = reefs
    client = Features(service.api + "/ogc", headers={"Authorization": f"Bearer {service.token}"})
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core" in client.conformance()["conformsTo"]
    assert model in [c["id"] for c in client.collections()["collections"]]
    assert client.collection(model)["itemType"] == "feature"
    in_box = {urn for urn, f in by_urn.items() if inside(f)}
    items = client.collection_items(model, bbox=list(BOX), limit=1000)
    assert {f["id"] for f in items["features"]} == in_box and items["numberReturned"] == len(in_box)
    filtered = client.collection_items(model, bbox=list(BOX), limit=1000, filter=FILTER)
    expected = {urn for urn in in_box if wanted(by_urn[urn]["properties"])}
    assert 3 < len(expected) < len(in_box)
    assert {f["id"] for f in filtered["features"]} == expected
    urn = sorted(expected)[0]
    one = client.collection_item(model, urn)
    assert one["id"] == urn and one["properties"]["depth"] == by_urn[urn]["properties"]["depth"]
    # Pages of 7 through the next links add up to the same answer, each feature once.
    base = f"{service.api}/ogc/collections/{quote(model)}/items?limit=7&filter={quote(FILTER)}"
    paged = [f["id"] for f in follow(service, base)]
    assert len(paged) == len(set(paged)) and set(paged) == {
        u for u, f in by_urn.items() if wanted(f["properties"])
    }
    # Another client sees none of it.
    status, _, _ = service.request("GET", f"/ogc/collections/{quote(model)}/items/{quote(urn)}", token="nope")
    assert status == 401


def test_one_filter_three_doors_and_the_export_files(service: Service, reefs: Any, tmp_path: Path) -> None:
    model, by_urn = reefs
    expected = {f["id"] for f in by_urn.values() if inside(f) and wanted(f["properties"])}
    bbox = ",".join(map(str, BOX))
    status, page, _ = service.request(
        "GET", f"/features?bbox={bbox}&model={model}&limit=1000&filter={quote(FILTER)}"
    )
    assert status == 200 and {f["id"] for f in page["items"]} == expected
    status, refused, _ = service.request("GET", f"/features?filter={quote('depth >> 2')}")
    assert (
        status == 400
        and refused["errors"][0]["field"] == "filter"
        and "column" in refused["errors"][0]["reason"]
    )

    body = {
        "domain": "VECTOR",
        "ROI": {"type": "Polygon", "coordinates": [[[BOX[0], BOX[1]], [BOX[2], BOX[1]], [BOX[2], BOX[3]],
                                                    [BOX[0], BOX[3]], [BOX[0], BOX[1]]]]},
        "packer": "zip",
        "description": f"records of {model}",
        "parameters": {
            "model": model,
            "filter": FILTER,
            "fields": {"name": {"display_name": "Reef"}, "depth": {"display_name": "Depth (m)"}},
            "formats": ["GPKG", "GeoJSON", "CSV", "XML"],
            "files": True,
            "csv": {"delimiter": "\t", "use_bom": True},
        },
    }  # fmt: skip
    status, created, _ = service.request("POST", "/export-tasks", body)
    assert status == 201, created
    done = service.wait(created["id"])[-1]
    assert done["status"] == "COMPLETED", done
    (bundle,) = [a for a in done["artifacts"] if a["type"] == "BUNDLE"]
    target = tmp_path / bundle["name"]
    with urllib.request.urlopen(bundle["url"], timeout=60) as response:
        target.write_bytes(response.read())
    assert hashlib.sha256(target.read_bytes()).hexdigest() == bundle["sha256"]
    (metadata,) = [a for a in done["artifacts"] if a["type"] == "METADATA"]
    with urllib.request.urlopen(metadata["url"], timeout=60) as response:
        described = json.loads(response.read())
    contents = described["contents"]
    sizes = sum(len(data) for data in SURVEYS.values())
    assert described["copiedFiles"] == {
        "count": 2,
        "bytes": sizes,
    }  # what files: true copied, counted by Clip
    with zipfile.ZipFile(target) as archive:
        archive.extractall(tmp_path / "files")
        names = archive.namelist()
    assert sorted(names) == sorted(entry["name"] for entry in contents)  # every listed file, nothing else
    for entry in contents:
        assert (
            hashlib.sha256((tmp_path / "files" / entry["name"]).read_bytes()).hexdigest() == entry["sha256"]
        )
    files = {Path(name).suffix: tmp_path / "files" / name for name in names if "/" not in name}
    assert set(files) == {".gpkg", ".geojson", ".csv", ".xml", ".xsd"}
    copied = {name: (tmp_path / "files" / name).read_bytes() for name in names if name.startswith("files/")}
    assert copied == {f"files/{fid}/survey.txt": data for fid, data in SURVEYS.items()} and len(copied) == 2

    raw = files[".csv"].read_bytes()
    assert raw.startswith(b'\xef\xbb\xbf"urn"\t"featureId"\t')  # the BOM, and every value quoted
    with files[".csv"].open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert {r["featureId"] for r in rows} == expected
    assert list(rows[0])[-4:] == ["Reef", "Depth (m)", "files", "WKT"]
    linked = {r["featureId"]: json.loads(r["files"]) for r in rows if json.loads(r["files"])}
    assert linked == {fid: [f"files/{fid}/survey.txt"] for fid in SURVEYS}  # records link their files
    # GDAL's CSV driver (it reads the WKT column as the geometry); SEPARATOR is its open option.
    _, _, geometries, _ = pyogrio.raw.read(files[".csv"], SEPARATOR="TAB")
    assert len(geometries) == len(expected)
    collection = json.loads(files[".geojson"].read_text())
    assert {f["properties"]["featureId"] for f in collection["features"]} == expected
    schema = xmlschema.XMLSchema(str(files[".xsd"]))
    schema.validate(str(files[".xml"]))
    assert {f["@featureId"] for f in schema.to_dict(str(files[".xml"]))["feature"]} == expected
    assert pyogrio.read_info(files[".gpkg"], layer=model)["features"] == len(expected)
