"""Issue 16: a VECTOR export streams. Clip (paced over calls) and Package run in their own processes against
the moto server's S3 and DynamoDB, for 15,000 and then 90,000 point features: neither step's peak memory
may grow with the count (the old Clip held every clipped feature and wrote one scratch JSON; Package read
it whole: ~1 KB per feature, ~75 MB more for the large export).

The features come from a generator behind the same port the feature repository serves (``FeatureSource``:
pages and a next token), so the test measures the pipeline, not the loading of 90,000 features into the
emulator (the repository's own reads are measured by ``bench/features.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from geoexport import bootstrap
from geoexport.features.feature import EntityType, Feature
from geoexport.models import CreateExportTaskRequest, TaskRecord, TaskStatus
from tests.integration.conftest import Cloud
from tests.integration.test_render_memory import peak_rss
from tests.support import ROOT, NumberedFeatures

MiB = 2**20
CREATED = datetime(2026, 11, 29, tzinfo=UTC)


class GeneratedFeatures(NumberedFeatures):
    """``count`` point features spread over the world, page by page (the token is the next offset), each
    with a few typed properties and ~200 characters of text; the same for every run."""

    def __init__(self, count: int, model: str = "points") -> None:
        self.count, self.model = count, model

    def feature(self, i: int) -> Feature:
        x = -179.5 + (i * 7919 % 359_000) / 1000
        y = -84.5 + (i * 104_729 % 169_000) / 1000
        return Feature.model_construct(
            id=f"p{i}",
            urn=f"URN:FEATURE:DATA:bench:{uuid.UUID(int=i)}:V1",
            type="Feature",
            model=self.model,
            entityType=EntityType.DATA,
            geometry={"type": "Point", "coordinates": [x, y]},
            properties={
                "name": f"point {i}",
                "rank": i % 100,
                "value": i / 7,
                "ok": i % 2 == 0,
                "note": f"{i:08d} " + "lorem ipsum dolor sit amet " * 7,
            },
            files=[],
            version=1,
            createdAt=CREATED,
            updatedAt=CREATED,
        )


def new_task(cloud: Cloud, owner: str, formats: list[str]) -> str:
    """A PENDING VECTOR task of the whole world in the tasks table (prepared as the API prepares one)."""
    from tests.integration.test_vector_exports import service

    world = [[-180, -85], [180, -85], [180, 85], [-180, 85], [-180, -85]]
    body = {
        "domain": "VECTOR",
        "ROI": {"type": "Polygon", "coordinates": [world]},
        "artifactCRS": "EPSG:3857",
    }
    prepared, _, _ = service(cloud).prepare(
        CreateExportTaskRequest.model_validate({**body, "parameters": {"formats": formats}})
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid.uuid4(), status=TaskStatus.PENDING, progress=0, request=prepared, createdAt=now,
        updatedAt=now, owner=owner,
    )  # fmt: skip
    bootstrap.task_repository(cloud.settings).create(task)
    return str(task.id)


def measured(step: Callable[[], Any]) -> dict[str, Any]:
    tracemalloc.start()  # Python's own allocations: precise, unlike RSS
    result = step()
    _, traced = tracemalloc.get_traced_memory()
    return {"traced": traced, "peak": peak_rss(), "result": result}


def child(step: str, task_id: str, count: int, out: str) -> None:
    """One step of one export in this process; prints its traced and RSS peaks."""
    from geoexport.pipeline import clip, package
    from geoexport.pipeline.vector import SelectLimits
    from geoexport.settings import Settings

    settings = Settings.from_environ(os.environ)
    tasks, store = bootstrap.task_repository(settings), bootstrap.exports_store(settings)
    if step == "clip":
        source = GeneratedFeatures(count)
        catalog = bootstrap.catalog_repository(settings)

        def select() -> int:
            calls, answer = 0, {"more": True}
            while answer["more"]:  # one page per call: the state machine's loop, in one process
                answer = clip.run(task_id, tasks, catalog, store, {}, source, None, SelectLimits(0, 5000))
                calls += 1
            return calls

        print(json.dumps(measured(select)))
    else:
        key = f"scratch/{task_id}/plan.json"

        def write() -> list[dict[str, Any]]:
            files: list[dict[str, Any]] = package.run(
                task_id, key, tasks, store, 2, {}, lambda: datetime.now(UTC), 1, 10 * 1024**3
            )["files"]
            return files

        print(json.dumps(measured(write)))


def run(settings: Any, step: str, task_id: str, count: int, out: Path) -> dict[str, Any]:
    code = (
        "from tests.integration.test_vector_memory import child; "
        f"child({step!r}, {task_id!r}, {count}, {str(out)!r})"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={
            **os.environ,
            **{k: str(v) for k, v in settings.model_dump(by_alias=True).items() if v is not None},
        },
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_vector_export_memory_does_not_grow_with_the_features(cloud: Cloud, tmp_path: Path) -> None:
    peaks = {}
    for count in (15_000, 90_000):
        task_id = new_task(cloud, f"memory-{uuid.uuid4().hex[:6]}", ["GPKG", "CSV"])
        clipped = run(cloud.settings, "clip", task_id, count, tmp_path)
        packaged = run(cloud.settings, "package", task_id, count, tmp_path)
        assert clipped["result"] == -(-count // 5000)  # one call per page of 5,000 (out of time at once)
        sizes = {entry["type"]: entry["size"] for entry in packaged["result"]}
        assert sizes["GPKG"] > count * 200 and sizes["CSV"] > count * 250, sizes  # every feature is there
        (key,) = [e["key"] for e in packaged["result"] if e["type"] == "METADATA"]
        assert bootstrap.exports_store(cloud.settings).get_json(key)["layers"] == {"points": count}
        peaks[count] = {"clip": clipped, "package": packaged}
    for step in ("clip", "package"):
        small, large = peaks[15_000][step], peaks[90_000][step]
        growth = large["traced"] - small["traced"]
        assert growth < 8 * MiB, f"{step}: the traced peak grew by {growth / MiB:.1f} MiB"
        rss = large["peak"] - small["peak"]
        assert rss < 24 * MiB, f"{step}: the peak RSS grew by {rss / MiB:.1f} MiB: {small} -> {large}"
        assert large["peak"] < 500 * MiB, large
