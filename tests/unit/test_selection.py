"""A VECTOR export's selection (geoexport.pipeline.vector.select) over an in-memory scratch area: chunks per
page, a cursor that resumes, the summary the writers need, and the limits one Package call can write."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from geoexport.errors import UnprocessableRequest
from geoexport.features.feature import Feature
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from geoexport.pipeline.selection import Kind, read_chunks
from geoexport.pipeline.vector import SelectLimits, select
from tests.support import NumberedFeatures

NOW = datetime(2026, 11, 29, tzinfo=UTC)


class Scratch:
    """The exports bucket's scratch area, in memory (JSON documents and chunk bytes by key)."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_json(self, key: str, document: Any) -> None:
        self.objects[key] = json.dumps(document).encode()

    def get_json(self, key: str) -> Any:
        return json.loads(self.objects[key])

    def head(self, key: str) -> dict[str, Any] | None:
        return {"ContentLength": len(self.objects[key])} if key in self.objects else None

    def put_bytes(self, key: str, body: bytes, content_type: str) -> None:
        self.objects[key] = body

    def get_bytes(self, key: str) -> bytes:
        return self.objects[key]


class Source(NumberedFeatures):
    """``count`` features along the equator, every third with a 1 MB stored file; pages by offset."""

    def __init__(self, count: int) -> None:
        self.count, self.pages = count, 0

    def feature(self, i: int) -> Feature:
        files = []
        if i % 3 == 0:
            files = [{"attributes": {"dataType": "RAWDATA", "mimeType": "text/plain", "filename": f"f{i}.txt",
                                     "filesize": 1024**2, "algorithm": "MD5", "checksum": "0" * 32},
                      "locations": [{"url": f"s3://files/{i}"}], "state": "STORED"}]  # fmt: skip
        return Feature.model_validate(
            {"id": f"f{i}", "urn": f"URN:FEATURE:DATA:t:{uuid.UUID(int=i)}:V1",
             "model": "m" if i % 2 else "n", "entityType": "DATA",
             "geometry": {"type": "Point", "coordinates": [i % 50, 0.5]},
             "properties": {"n": i if i % 4 else float(i), "label": "" if i < 5 else f"x{i}", "none": None},
             "files": files, "version": 1, "createdAt": NOW, "updatedAt": NOW}
        )  # fmt: skip


def task(files: bool = False) -> TaskRecord:
    box = [[-1, -1], [60, -1], [60, 1], [-1, 1], [-1, -1]]
    roi = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [box]}}
        ],
    }
    request = CreateExportTaskRequest.model_validate(
        {"domain": "VECTOR", "ROI": roi, "parameters": {"files": files}}
    )  # fmt: skip
    return TaskRecord(
        id=uuid.uuid4(), status=TaskStatus.IN_PROGRESS, progress=0, request=request, createdAt=NOW,
        updatedAt=NOW, owner="o",
    )  # fmt: skip


def test_pages_become_chunks_and_a_call_resumes_at_the_cursor() -> None:
    scratch, source, job = Scratch(), Source(23), task()
    clock = iter(range(100))  # every page takes "a second": with 2 s a call reads 2 pages (checks after each)
    limits = SelectLimits(seconds=2, page=5)
    first = select(job, source, scratch, limits, lambda: float(next(clock)))
    assert not first.done and first.count == 10 and len(first.chunks) == 2 and source.pages == 2
    calls = [select(job, source, scratch, limits, lambda: float(next(clock))) for _ in range(2)]
    done = calls[-1]
    assert not calls[0].done and done.done and done.invocations == 3 and source.pages == 5
    assert done.count == 23 and len(done.chunks) == 5
    ids = [f["properties"]["featureId"] for chunk in read_chunks(scratch, done.chunks) for f in chunk]
    assert ids == [f"f{i}" for i in range(23)]
    assert select(job, source, scratch).count == 23 and source.pages == 5  # done: nothing read again
    # What the writers need before their first row, over the whole selection.
    assert {name: layer.count for name, layer in done.layers.items()} == {"m": 11, "n": 12}
    assert done.layers["m"].columns == {"n": Kind.INT, "label": Kind.TEXT, "none": None}
    assert done.layers["n"].columns["n"] is Kind.REAL  # integers and reals: real
    assert done.layers["m"].dimensions == [0] and set(done.filled) == {"n", "label"}
    assert done.bounds == [0.0, 0.5, 22.0, 0.5]


def test_an_export_one_package_call_could_not_write_fails_saying_what_to_narrow() -> None:
    with pytest.raises(UnprocessableRequest, match=r"more than 10 features \(15 read so far\)"):
        select(task(), Source(40), Scratch(), SelectLimits(page=5, features=10))
    with pytest.raises(UnprocessableRequest, match=r"stored files add up to more than 0.0 GiB") as raised:
        select(task(files=True), Source(40), Scratch(), SelectLimits(page=5, file_bytes=3 * 1024**2))
    assert "export without files" in str(raised.value) and "4 files so far" in str(raised.value)
    counted = select(task(files=True), Source(40), Scratch(), SelectLimits(page=5))
    assert (counted.fileCount, counted.fileBytes) == (14, 14 * 1024**2)
