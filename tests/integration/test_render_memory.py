"""Issue 14: the Package step's peak memory is bounded by its settings, not by the export's size. Each
export runs in its own process (its peak RSS is its own): a few tiles, then about 30 times as many; the
peak must not grow with them (it did by ~0.9 x the output: every encoded tile stayed in memory)."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

from tests.support import ROOT

SOURCE = ROOT / "infra" / "sample-data" / "RGB.byte.tif"
MiB = 2**20


def peak_rss() -> int:
    """This process's peak resident set (VmHWM: reset by exec, unlike ru_maxrss, which a child started
    from the big pytest process inherits)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc/self/status")


def child(zoom: int, out: str) -> None:
    """Plan and package the whole scene at ``zoom`` (every level 0..zoom); print tiles and peak RSS."""
    from geoexport.catalog.ingest import describe_record
    from geoexport.geometry import grid
    from geoexport.models import CreateExportTaskRequest, SourceLocation, TaskRecord, TaskStatus
    from geoexport.pipeline.clip import build_plan
    from geoexport.pipeline.package import render_gpkg

    record = describe_record(
        str(SOURCE), uuid4(), "memory", SourceLocation(bucket="local", key="x"), measure_costs=False
    )
    request = CreateExportTaskRequest.model_validate(
        {
            "catalogRecordID": str(record.id),
            "domain": "RASTER",
            "ROI": {
                "type": "FeatureCollection",
                "features": [
                    {
                        "type": "Feature",
                        "properties": {"maxResolutionDeg": grid.resolution(zoom)},
                        "geometry": record.footprint,
                    }
                ],
            },
        }
    )
    now = datetime.now(UTC)
    task = TaskRecord(
        id=uuid4(), status=TaskStatus.IN_PROGRESS, progress=0, request=request, createdAt=now, updatedAt=now
    )
    plan = build_plan(task, record)
    tracemalloc.start()  # Python's own allocations (numpy arrays, encoded tiles): precise, unlike RSS
    stats = render_gpkg(plan, str(SOURCE), Path(out), 2, {})
    _, traced = tracemalloc.get_traced_memory()
    peak = peak_rss()
    tiles = sum(stats.tiles_per_zoom.values())
    print(json.dumps({"tiles": tiles, "bytes": stats.tile_bytes, "peak": peak, "traced": traced}))


def run(zoom: int, out: Path) -> dict[str, int]:
    code = f"from tests.integration.test_render_memory import child; child({zoom}, {str(out)!r})"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=600
    )
    answer: dict[str, int] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_peak_memory_does_not_grow_with_the_export(tmp_path: Path) -> None:
    small = run(9, tmp_path / "small.gpkg")  # already full 4 x 4-tile blocks at its finest level
    large = run(11, tmp_path / "large.gpkg")
    assert large["tiles"] >= 10 * small["tiles"], (small, large)
    assert large["bytes"] >= 24 * MiB, large  # what the old renderer held at the end
    growth = large["traced"] - small["traced"]
    assert growth < 8 * MiB, f"the traced peak grew by {growth / MiB:.0f} MiB: {small} -> {large}"
    assert large["peak"] - small["peak"] < 16 * MiB, (small, large)  # the whole process (RSS)
    assert large["peak"] < 400 * MiB, large
