"""The record writers of VECTOR exports (issue 16) on a few hand-made features: CSV options as seed 002
names them, read back by Python's csv; XML that its own XSD accepts, whatever the values hold; one file
per object; fields chosen and renamed."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from pydantic import ValidationError

from geoexport.errors import ArtifactMismatch
from geoexport.packaging import attached, records
from geoexport.packaging.records import RecordOptions


def feature(index: int, **properties: Any) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [10.5 + index, 50.25]},
        "properties": {
            "urn": f"URN:FEATURE:DATA:geoexport:{index}:V1",
            "featureId": f"f-{index}",
            "entityType": "DATA",
            "version": 1,
            "model": "site",
            "properties": properties,
        },
    }


FEATURES = [
    feature(0, name="Quote \" and ' here", note="line one\nline two", empty=None, depth=3.5),
    feature(1, name="semi;colon & <tag>\x01", note=None, empty=None, depth=7, tags=["a", "b"]),
]


@pytest.mark.parametrize(
    ("settings", "reader"),
    [
        ({}, {}),
        (
            {"delimiter": ";", "quote": "'", "escape": "\\"},
            {"delimiter": ";", "quotechar": "'", "escapechar": "\\", "doublequote": False},
        ),
        ({"delimiter": "\t", "use_bom": True}, {"delimiter": "\t"}),
    ],
)
def test_csv_options_read_back_by_pythons_csv(
    tmp_path: Path, settings: dict[str, Any], reader: dict[str, Any]
) -> None:
    options = RecordOptions.model_validate({"csv": settings})
    path = tmp_path / "out.csv"
    records.write_csv(FEATURES, options, path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bool(settings.get("use_bom"))
    quote = settings.get("quote", '"').encode()
    assert raw.lstrip(b"\xef\xbb\xbf").startswith(quote + b"urn" + quote)  # values are always quoted
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.DictReader(handle, **reader))
    assert [r["name"] for r in rows] == [
        FEATURES[0]["properties"]["properties"]["name"],
        "semi;colon & <tag>\x01",
    ]
    assert rows[0]["note"] == "line one\nline two" and rows[1]["tags"] == '["a", "b"]'
    assert "empty" not in rows[0]  # empty in every record: left out unless empty_columns
    assert rows[0]["WKT"] == "POINT (10.5 50.25)"


def test_empty_columns_and_fields(tmp_path: Path) -> None:
    options = RecordOptions.model_validate(
        {"csv": {"empty_columns": True}, "fields": {"depth": {"display_name": "Depth"}, "empty": {}}}
    )
    shaped = options.shape(FEATURES)
    records.write_csv(shaped, options, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(newline="") as handle:
        header = next(csv.reader(handle))
    assert header == ["urn", "featureId", "model", "entityType", "version", "Depth", "empty", "WKT"]
    listed = RecordOptions.model_validate({"fields": ["depth"]})  # a list of names: no renames
    assert list(listed.shape(FEATURES)[0]["properties"]["properties"]) == ["depth"]


def test_xml_is_valid_against_its_xsd_whatever_the_values(tmp_path: Path) -> None:
    options = RecordOptions()
    document, schema = records.write_xml(FEATURES, options, tmp_path / "out.xml", "4326")
    validator = xmlschema.XMLSchema(str(schema))
    validator.validate(str(document))
    parsed = validator.to_dict(str(document))
    first = {p["@name"]: p.get("$") for p in parsed["feature"][0]["property"]}
    assert first["name"] == "Quote \" and ' here" and first["note"] == "line one\nline two"
    second = {p["@name"]: p.get("$") for p in parsed["feature"][1]["property"]}
    assert second["name"] == "semi;colon & <tag>"  # a control character XML 1.0 cannot hold is dropped
    assert parsed["@count"] == 2 and parsed["feature"][1]["geometry"]["$"] == "POINT (11.5 50.25)"


def test_one_file_per_object(tmp_path: Path) -> None:
    options = RecordOptions.model_validate({"one_file_per_object": True})
    twin = feature(0, name="the same id in another model") | {}
    twin["properties"] = {**twin["properties"], "model": "other"}
    written = records.write_json([*FEATURES, twin], options, tmp_path / "out.records.json")
    names = [p.relative_to(tmp_path).as_posix() for p in written]
    assert names == ["json/f-0.json", "json/f-1.json", "json/f-0-2.json"]  # none overwritten
    assert json.loads(written[2].read_text())["model"] == "other"
    assert json.loads(written[1].read_text())["depth"] == 7
    *documents, schema = records.write_xml(FEATURES, options, tmp_path / "out.xml", "3035")
    validator = xmlschema.XMLSchema(str(schema))
    for document in documents:
        validator.validate(str(document))  # each a <feature> document of the same schema


def test_geojson_and_its_sequence(tmp_path: Path) -> None:
    options = RecordOptions()
    records.write_geojson(FEATURES, options, tmp_path / "a.geojson", sequence=False)
    records.write_geojson(FEATURES, options, tmp_path / "a.geojsonl", sequence=True)
    collection = json.loads((tmp_path / "a.geojson").read_text())
    lines = [json.loads(line) for line in (tmp_path / "a.geojsonl").read_text().splitlines()]
    assert collection["features"] == lines and lines[1]["properties"]["tags"] == ["a", "b"]
    assert lines[0]["id"] == FEATURES[0]["properties"]["urn"]


@pytest.mark.parametrize(
    "parameters",
    [
        {"formats": ["SHP"]},
        {"formats": []},
        {"csv": {"delimiter": "\n"}},
        {"csv": {"quote": "ab"}},
        {"fields": {"a": {"x": 1}}},
        {"fields": {"a": {"display_name": "b"}, "b": {}}},
        {"fields": {"a": {"display_name": "urn"}}},
    ],
)
def test_bad_options_are_refused(parameters: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        RecordOptions.model_validate(parameters)


class Files:
    """A FileSource over a dict of URL -> bytes (the feature files bucket, in this unit test)."""

    def __init__(self, blobs: dict[str, bytes]) -> None:
        self.blobs = blobs

    def download(self, url: str, path: Path) -> None:
        path.write_bytes(self.blobs[url])


def with_files(index: int, *names: str, blobs: dict[str, bytes]) -> dict[str, Any]:
    item = feature(index, name=f"site {index}")
    item["files"] = []
    for name in names:
        url = f"s3://files/{index}/{name}"
        blobs.setdefault(url, f"{index}:{name}".encode())
        item["files"].append(
            {"filename": name, "dataType": "RAWDATA", "mimeType": "text/plain", "algorithm": "SHA-256",
             "checksum": hashlib.sha256(blobs[url]).hexdigest(), "url": url}
        )  # fmt: skip
    return item


def test_files_are_copied_checked_and_linked(tmp_path: Path) -> None:
    blobs: dict[str, bytes] = {}
    items = [with_files(0, "a.txt", "b.txt", blobs=blobs), with_files(1, "a.txt", blobs=blobs), feature(2)]
    options = RecordOptions.model_validate({"files": True})
    copied = attached.copy_files(items, options, tmp_path, Files(blobs))
    assert [p.relative_to(tmp_path).as_posix() for p in copied] == [
        "files/f-0/a.txt",
        "files/f-0/b.txt",
        "files/f-1/a.txt",
    ]
    assert (tmp_path / "files/f-1/a.txt").read_bytes() == b"1:a.txt"
    assert items[0]["properties"]["properties"]["files"] == ["files/f-0/a.txt", "files/f-0/b.txt"]
    assert items[2]["properties"]["properties"]["files"] == []
    records.write_csv(items, options, tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert json.loads(rows[0]["files"]) == ["files/f-0/a.txt", "files/f-0/b.txt"]


def test_flat_files_and_a_template_never_overwrite_each_other(tmp_path: Path) -> None:
    blobs: dict[str, bytes] = {}
    items = [with_files(0, "a.txt", blobs=blobs), with_files(1, "a.txt", blobs=blobs)]
    options = RecordOptions.model_validate({"files": True, "flat": True})
    copied = attached.copy_files(items, options, tmp_path / "flat", Files(blobs))
    assert [p.name for p in copied] == ["a.txt", "a-2.txt"]
    template = RecordOptions.model_validate(
        {"files": True, "filename_template": "{name}_{dataType}_{index}{ext}"}
    )
    named = attached.copy_files(
        [with_files(3, "scan.tif", blobs=blobs)], template, tmp_path / "t", Files(blobs)
    )
    assert [p.relative_to(tmp_path / "t").as_posix() for p in named] == ["files/f-3/site 3_RAWDATA_1.tif"]
    for bad in ("{featureId.upper}", "{name!r}", "{depth:>5}", "{"):
        with pytest.raises(ValidationError):
            RecordOptions.model_validate({"files": True, "filename_template": bad})


def test_a_file_that_changed_since_it_was_stored_fails_the_export(tmp_path: Path) -> None:
    blobs: dict[str, bytes] = {}
    item = with_files(0, "a.txt", blobs=blobs)
    blobs["s3://files/0/a.txt"] = b"tampered"
    with pytest.raises(ArtifactMismatch, match="does not match its recorded SHA-256"):
        attached.copy_files([item], RecordOptions.model_validate({"files": True}), tmp_path, Files(blobs))


def test_a_property_named_files_is_kept_when_no_files_are_copied(tmp_path: Path) -> None:
    items = [feature(0, name="x", files="three scans")]
    records.write_csv(items, RecordOptions(), tmp_path / "out.csv")
    with (tmp_path / "out.csv").open(newline="") as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["files"] == "three scans"
