"""Package: render the planned tiles into a GeoPackage, write its metadata JSON, stage both in scratch."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

from shapely.geometry import shape

from geoexport.errors import UnprocessableRequest
from geoexport.geometry import grid
from geoexport.packaging.gpkg import GeoPackageTiles
from geoexport.packaging.metadata import build_metadata, sha256_file
from geoexport.pipeline.plan import ExportPlan, scratch_prefix
from geoexport.raster.render import Level, RenderStats, inspect_bands, render
from geoexport.raster.source import gdal_env, gdal_path

PACKAGE_PROGRESS = (10, 80)  # the share of the task's progress this step covers


class Store(Protocol):
    def get_json(self, key: str) -> Any: ...
    def put_file(self, key: str, path: Path, sha256_hex: str, content_type: str) -> None: ...


class Progress(Protocol):
    def report_progress(self, task_id: UUID | str, progress: int) -> bool: ...


def levels_of(plan: ExportPlan) -> list[Level]:
    return [
        Level(level.zoom, shape(level.region), grid.TileRange(level.zoom, *level.tiles))
        for level in plan.levels
    ]


def render_gpkg(
    plan: ExportPlan,
    source: str,
    target: Path,
    threads: int,
    gdal_options: dict[str, str],
    progress: Callable[[float], None] | None = None,
) -> RenderStats:
    """The whole clip+package work for one plan: warp each level straight into the GeoPackage."""
    with gdal_env(gdal_options):
        bands = inspect_bands(source, plan.sourceResolutionDeg)
    with (
        GeoPackageTiles(
            target,
            table="tiles",
            max_zoom=plan.maxZoom,
            content_bounds=tuple(plan.bounds),  # type: ignore[arg-type]
            identifier=plan.fileStem,
            description=plan.description[:500],
        ) as gpkg
    ):
        stats = render(source, bands, levels_of(plan), gpkg.add, threads, gdal_options, progress)
        if gpkg.count == 0:
            raise UnprocessableRequest("the ROI covers only nodata pixels of the source; nothing to export")
    return stats


def run(
    task_id: str,
    plan_key: str,
    tasks: Progress,
    scratch: Store,
    threads: int,
    gdal_options: dict[str, str],
    now: Callable[[], datetime],
) -> dict[str, Any]:
    plan = ExportPlan.model_validate(scratch.get_json(plan_key))
    low, high = PACKAGE_PROGRESS
    last = [0.0, float(low)]

    def on_progress(fraction: float) -> None:  # at most one write per second or per 10 %
        value = low + (high - low) * fraction
        if value - last[1] >= 10 or time.monotonic() - last[0] >= 1.0:
            last[0], last[1] = time.monotonic(), value
            tasks.report_progress(task_id, int(value))

    with tempfile.TemporaryDirectory(prefix="geoexport-") as workdir:
        gpkg_path = Path(workdir) / f"{plan.fileStem}.gpkg"
        stats = render_gpkg(plan, gdal_path(plan.sourceUri), gpkg_path, threads, gdal_options, on_progress)
        gpkg_sha = sha256_file(gpkg_path)
        gpkg_size = gpkg_path.stat().st_size
        metadata = build_metadata(
            plan=plan,
            file_name=gpkg_path.name,
            file_size=gpkg_size,
            sha256=gpkg_sha,
            tiles_per_zoom=stats.tiles_per_zoom,
            created_at=now(),
        )
        meta_path = Path(workdir) / f"{plan.fileStem}.json"
        meta_path.write_text(json.dumps(metadata, indent=2))
        files = []
        for kind, path, content_type in (
            ("GPKG", gpkg_path, "application/geopackage+sqlite3"),
            ("METADATA", meta_path, "application/json"),
        ):
            sha = gpkg_sha if kind == "GPKG" else sha256_file(path)
            key = f"{scratch_prefix(task_id)}{path.name}"
            scratch.put_file(key, path, sha, content_type)
            files.append(
                {"type": kind, "name": path.name, "key": key, "size": path.stat().st_size, "sha256": sha}
            )
    tasks.report_progress(task_id, high)
    return {"taskId": task_id, "files": files}
